"""Validate Atom feeds and ESPI documents against the NAESB/Green Button Alliance schemas shipped here.

The schema is chosen from the document itself: anything using the customer namespace
(``http://naesb.org/espi/customer``: RetailCustomer feeds, DR program information) is checked against
``retailcustomer.xsd``; every other Atom feed or entry, and the bare ESPI documents (ApplicationInformation,
Authorization, BatchList, ServiceStatus, usage resources), against ``espiDerived.xsd``. A feed is validated
whole, so every ESPI element inside each entry's ``content`` is checked strictly. The schemas live in
``mock_custodian/espi/schemas`` and never reach the network (``xml.xsd`` is local too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lxml import etree

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
ATOM_NS = "http://www.w3.org/2005/Atom"
ESPI_NS = "http://naesb.org/espi"
CUSTOMER_NS = "http://naesb.org/espi/customer"
USAGE_SCHEMA = "espiDerived.xsd"
CUSTOMER_SCHEMA = "retailcustomer.xsd"
MAX_ERRORS = 50


@dataclass
class Outcome:
    """One document's verdict: which schema judged it, what kind of document it is, and each error's line."""

    ok: bool
    schema: str | None
    kind: str
    errors: list[tuple[int | None, str]] = field(default_factory=list)


@cache
def schema(name: str) -> etree.XMLSchema:
    """The compiled schema (cached: espiDerived.xsd takes a noticeable moment to compile)."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / name)))


def _namespace(tag: object) -> str | None:
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else None


def describe(root: etree._Element) -> str:
    """A short name for the document: 'Atom feed of UsagePoint, MeterReading', 'ESPI BatchList', ..."""
    local = etree.QName(root).localname
    namespace = _namespace(root.tag)
    if namespace == ATOM_NS and local in ("feed", "entry"):
        inner: list[str] = []
        for content in root.iter(f"{{{ATOM_NS}}}content"):
            for child in content:
                name = etree.QName(child).localname if isinstance(child.tag, str) else None
                if name and name not in inner:
                    inner.append(name)
        return f"Atom {local}" + (f" of {', '.join(inner)}" if inner else "")
    if namespace == CUSTOMER_NS:
        return f"ESPI customer {local}"
    return f"ESPI {local}"


def pick_schema(root: etree._Element) -> str | None:
    """The schema file for this document, or None when it is neither Atom nor ESPI."""
    namespaces = {_namespace(el.tag) for el in root.iter()}
    if CUSTOMER_NS in namespaces:
        return CUSTOMER_SCHEMA
    if _namespace(root.tag) in (ATOM_NS, ESPI_NS):
        return USAGE_SCHEMA
    return None


def validate_bytes(data: bytes) -> Outcome:
    """Validate one document; never raises for bad input (malformed XML is an error with its line)."""
    try:
        root = etree.fromstring(data, etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        return Outcome(False, None, "not well-formed XML", [(line, str(exc.msg))])
    kind = describe(root)
    name = pick_schema(root)
    if name is None:
        return Outcome(False, None, kind, [(root.sourceline, f"root element {root.tag} is neither an Atom feed/entry "
                                            f"nor an ESPI document ({ESPI_NS}, {CUSTOMER_NS})")])
    xsd = schema(name)
    if xsd.validate(etree.ElementTree(root)):
        return Outcome(True, name, kind)
    errors = [(e.line or None, e.message) for e in list(xsd.error_log)[:MAX_ERRORS]]
    return Outcome(False, name, kind, errors)


def validate_path(path: str | Path, stdin: object = None) -> Outcome:
    """Read FILE (or standard input for '-') and validate it; an unreadable file is an invalid outcome."""
    if str(path) == "-":
        import sys

        stream = stdin if stdin is not None else sys.stdin.buffer
        return validate_bytes(stream.read())  # type: ignore[attr-defined]
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return Outcome(False, None, "unreadable file", [(None, exc.strerror or str(exc))])
    return validate_bytes(data)


def format_outcome(name: str, outcome: Outcome) -> list[str]:
    """The lines ``mock-custodian validate`` prints for one file: a verdict, then ``FILE:LINE: message`` lines."""
    if outcome.ok:
        return [f"{name}: valid ({outcome.kind}, {outcome.schema})"]
    against = f" against {outcome.schema}" if outcome.schema else ""
    lines = [f"{name}: INVALID{against} ({outcome.kind})"]
    for line, message in outcome.errors:
        lines.append(f"{name}:{line}: {message}" if line else f"{name}: {message}")
    return lines
