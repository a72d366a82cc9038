"""ESPI resources under ``/GreenButtonConnect/espi/1_1/resource`` (spec 2.2, 6.8)."""

from __future__ import annotations

from flask import Blueprint, Response

from ..app import runtime
from ..store.tokens import CLIENT_ACCESS
from .auth import require_token

blueprint = Blueprint("resources", __name__, url_prefix="/GreenButtonConnect/espi/1_1/resource")

SERVICE_STATUS_TEMPLATE = (
    '<ServiceStatus xmlns="http://naesb.org/espi" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:schemaLocation="http://naesb.org/espi espiDerived.xsd"><currentStatus>{status}</currentStatus>'
    "</ServiceStatus>"
)


@blueprint.route("/ReadServiceStatus", methods=["GET"], strict_slashes=False)
def read_service_status() -> Response:
    """PG&E's connectivity-test probe: the ServiceStatus document with currentStatus 1 or 0."""
    require_token(CLIENT_ACCESS)
    body = SERVICE_STATUS_TEMPLATE.format(status=runtime().service_status())
    return Response(body, 200, content_type="application/xml;charset=UTF-8")
