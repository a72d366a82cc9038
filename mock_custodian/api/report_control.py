"""``GET /__sim/report``: the integration report as JSON (control token, like every ``/__sim/`` call)."""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from mock_custodian.domain.report import RULES, exceeds, parse_since, report_for, rules_table
from mock_custodian.errors import ControlError
from mock_custodian.web.context import runtime
from mock_custodian.web.http import int_arg, ordered_json

blueprint = Blueprint("report", __name__)


@blueprint.route("/report", methods=["GET"])
def report() -> ResponseReturnValue:
    """Would this traffic pass at PG&E? Filters ``client_id``, ``since``, ``since_id``; ``fail_on`` adds ``failed``."""
    rt = runtime()
    now = rt.clock.epoch()
    fail_on = request.args.get("fail_on") or None
    if fail_on not in (None, "error", "warning"):
        raise ControlError("fail_on must be error or warning")
    out = report_for(rt.database, rt.settings, now, client_id=request.args.get("client_id"),
                     since=parse_since(request.args.get("since"), now), since_id=int_arg("since_id"))
    if fail_on is not None:
        out["failed"] = exceeds(out, fail_on)
    return ordered_json(out)


@blueprint.route("/report/rules", methods=["GET"])
def report_rules() -> ResponseReturnValue:
    """The catalogue of rules the report evaluates."""
    return ordered_json(rules=rules_table(), count=len(RULES))
