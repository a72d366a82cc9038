"""Reference pages generated from the code itself, so the documentation cannot go stale.

- ``settings_reference()``: every ``Settings`` field with its type, default, environment variable and the
  one-line ``metadata["doc"]`` written next to it in ``settings.py``.
- ``control_api_reference()``: every ``/__sim/`` operation of the control API's OpenAPI document
  (``api/openapi.py``), including routes other modules add to the control blueprint.

The MkDocs hook ``docs/hooks.py`` replaces the markers ``<!-- generated:settings -->`` and
``<!-- generated:control-api -->`` with these at build time.
"""

from __future__ import annotations

import json
import re
import tempfile
import typing
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any

from mock_custodian.settings import ENV_PREFIX, Settings

SETTINGS_MARKER = "<!-- generated:settings -->"
CONTROL_API_MARKER = "<!-- generated:control-api -->"


def _type_name(f: Field) -> str:
    hints = typing.get_type_hints(Settings)
    text = str(hints[f.name]).replace("typing.", "").replace("pathlib.", "").replace("<class '", "")
    text = text.replace("'>", "").replace("NoneType", "None")
    return text


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _format_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return f"`{','.join(_number(v) for v in value)}`" if value else "empty"
    if isinstance(value, float):
        return f"`{_number(value)}`"
    return f"`{value}`"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting_docs() -> dict[str, str]:
    """Field name -> its one-line description ('' when missing: a test fails on that)."""
    return {f.name: str(f.metadata.get("doc", "")).strip() for f in fields(Settings)}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_reference() -> str:
    """A Markdown table of every setting, in the order ``settings.py`` declares them."""
    rows = ["| setting | type | default | environment variable | meaning |", "| --- | --- | --- | --- | --- |"]
    for f in fields(Settings):
        env = f"`{ENV_PREFIX}{f.name.upper()}`" + ("<br>`DATABASE_URL`" if f.name == "database_url" else "")
        rows.append(f"| `{f.name}` | `{_cell(_type_name(f))}` | {_cell(_format_default(_default(f)))} | {env} | "
                    f"{_cell(str(f.metadata.get('doc', '')))} |")
    return "\n".join(rows) + "\n"


def control_api_document() -> dict[str, Any]:
    """The OpenAPI document the server serves at ``/__sim/openapi.json``, built from a throwaway app's routes."""
    from mock_custodian.api.control import blueprint
    from mock_custodian.api.openapi import openapi_document
    from mock_custodian.app import create_app
    from mock_custodian.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="mock-custodian-docs-") as data_dir:
        app = create_app(load_settings({"data_dir": Path(data_dir)}, environ={}))
        routes = [(rule.rule, rule.endpoint, set(rule.methods or ()), app.view_functions.get(rule.endpoint))
                  for rule in app.url_map.iter_rules() if rule.endpoint.startswith(f"{blueprint.name}.")]
        return openapi_document("https://127.0.0.1:8444", routes)


def _schema_text(schema: dict[str, Any], components: dict[str, Any]) -> str:
    """A compact JSON rendering of a schema, with ``$ref`` resolved one level (names stay readable)."""
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[1]
        return f"`{name}`: `{json.dumps(_brief(components.get(name, {})))}`"
    return f"`{json.dumps(_brief(schema))}`"


def _brief(schema: dict[str, Any]) -> Any:
    """Properties as name -> type, enough to write a request; full detail stays in /__sim/openapi.json."""
    if schema.get("type") == "object" and "properties" in schema:
        return {name: _brief(sub) for name, sub in schema["properties"].items()}
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[1]
    if "enum" in schema:
        return " | ".join(map(str, schema["enum"]))
    if "oneOf" in schema:
        return " | ".join(str(_brief(s)) for s in schema["oneOf"])
    if schema.get("type") == "array":
        return [_brief(schema.get("items", {}))]
    kind = schema.get("type", "any")
    return "/".join(kind) if isinstance(kind, list) else kind


def _anchor(method: str, path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")


def control_api_reference(document: dict[str, Any] | None = None) -> str:
    """Every operation: method and path, summary, description, token, parameters, body and responses."""
    doc = document or control_api_document()
    components = doc.get("components", {}).get("schemas", {})
    out: list[str] = []
    for path in sorted(doc["paths"]):
        for method, op in doc["paths"][path].items():
            verb = method.upper()
            out.append(f"### `{verb} {path}` {{#{_anchor(verb, path)}}}\n")
            out.append(op.get("summary", "").rstrip(".") + ".")
            if op.get("description"):
                out.append("\n" + op["description"])
            token = "none" if op.get("security") == [] else "`X-Control-Token`"
            out.append(f"\n- **Token**: {token}")
            for param in op.get("parameters", []):
                out.append(f"- **{param['in']}** `{param['name']}`: {param.get('description', '')}")
            body = op.get("requestBody")
            if body:
                for content_type, media in body.get("content", {}).items():
                    required = "" if body.get("required", True) else " (optional)"
                    out.append(f"- **body**{required} `{content_type}`: "
                               f"{_schema_text(media.get('schema', {}), components)}")
            codes = ", ".join(f"`{code}` {resp.get('description', '')}".rstrip()
                              for code, resp in op.get("responses", {}).items())
            out.append(f"- **Responses**: {codes}")
            out.append("")
    return "\n".join(out)


def expand(markdown: str) -> str:
    """Replace the generated-content markers in a page (what the MkDocs hook does)."""
    if SETTINGS_MARKER in markdown:
        markdown = markdown.replace(SETTINGS_MARKER, settings_reference())
    if CONTROL_API_MARKER in markdown:
        markdown = markdown.replace(CONTROL_API_MARKER, control_api_reference())
    return markdown
