"""Browser pages of ``sharemydata.pge.com`` (customer Share My Data pages, Third Party Portal)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from mock_custodian.web.context import runtime

blueprint = Blueprint("portal", __name__)


@blueprint.route("/", methods=["GET"])
def home() -> ResponseReturnValue:
    """The Share My Data landing page; it routes ``#MyAuthorization/?...`` client-side (spec 4.2)."""
    from mock_custodian.portal.console_model import entrance

    rt = runtime()
    with rt.database.session() as db:
        demo = entrance(db)
    return render_template("home.html", api_base_url=rt.api_base_url(), portal_base_url=rt.portal_base_url(),
                           authorize_aliases=rt.settings.authorize_aliases, console=rt.settings.control_api, **demo)
