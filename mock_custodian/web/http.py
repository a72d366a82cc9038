"""Small HTTP helpers every blueprint shares: ordered JSON, PG&E's token XML, request bodies, no-store.

One place for each, so the control API, the token endpoint and the portal do not grow their own.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request
from lxml import etree

from mock_custodian.errors import ControlError

# The namespace of PG&E's documented XML token response (``token_format=xml``).
TOKEN_XML_NAMESPACE = "https://api.pge.com/datacustodian/oauth/v2/token"


def ordered_json(value: Any = None, **fields: Any) -> Response:
    """Compact JSON in the order the backend built it (Flask's ``jsonify`` would sort PG&E's key order away)."""
    payload = fields if value is None else value
    return Response(json.dumps(payload, indent=None, separators=(",", ":")), 200, mimetype="application/json")


def token_xml(payload: dict[str, object]) -> bytes:
    """A token response or token error in PG&E's documented XML shape."""
    root = etree.Element(f"{{{TOKEN_XML_NAMESPACE}}}Response", nsmap={None: TOKEN_XML_NAMESPACE})
    for key, value in payload.items():
        etree.SubElement(root, f"{{{TOKEN_XML_NAMESPACE}}}{key}").text = str(value)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def json_object_body(empty_ok: bool = True) -> dict[str, Any]:
    """The JSON object a control call sends (an empty body is ``{}`` when ``empty_ok``); else a 400."""
    if empty_ok and not request.get_data():
        return {}
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise ControlError("the request body must be a JSON object")
    return payload


def no_store(response: Response) -> Response:
    """Bearer values and errors about credentials are never cached (RFC 6749 5.1, as PG&E sends)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def int_arg(name: str) -> int | None:
    """An optional integer query parameter of a control call; anything else is a 400 naming it."""
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if not value.lstrip("-").isascii() or not value.lstrip("-").isdigit() or len(value) > 12:
        raise ControlError(f"{name} must be an integer of at most 12 digits (got {value[:40]!r})")
    return int(value)
