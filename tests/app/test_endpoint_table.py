"""The documentation's endpoint table (docs/endpoints.md) and the server's API-host routes are the same set
(so the docs cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

from support import ROOT

from mock_custodian.app import create_app
from mock_custodian.settings import load_settings
from mock_custodian.web.guard import API_HOST, CERT_EXEMPT_PATHS

ENDPOINTS_PAGE = ROOT / "docs" / "endpoints.md"
R = "/GreenButtonConnect/espi/1_1/resource"


def _skeleton(path: str) -> str:
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path).rstrip("/")


def documented() -> set[tuple[str, str]]:
    text = ENDPOINTS_PAGE.read_text()
    table = text.split("<!-- endpoints:start -->")[1].split("<!-- endpoints:end -->")[0]
    rows = set()
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[1].startswith("`"):
            continue
        path = cells[1].strip("`")
        path = R + path[1:] if path.startswith("R/") else path
        for method in cells[0].split(","):
            rows.add((method.strip(), _skeleton(path)))
    return rows


def served(tmp_path: Path) -> set[tuple[str, str]]:
    app = create_app(load_settings({"data_dir": tmp_path}, environ={}))
    rows = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] != API_HOST:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if rule.rule in CERT_EXEMPT_PATHS and method != "GET":
                continue  # the harness also takes its form POST; PG&E documents the GET
            rows.add((method, _skeleton(rule.rule)))
    return rows


def test_endpoints_page_lists_exactly_the_api_routes(tmp_path: Path) -> None:
    docs, routes = documented(), served(tmp_path)
    assert len(docs) > 20
    assert routes - docs == set(), "served but not in docs/endpoints.md"
    assert docs - routes == set(), "in docs/endpoints.md but not served"
