"""The documentation site (issue 18): generated references cover every setting and control call, every
setting has a description, the pages are in the nav, the README stays a front page, and the Python
examples cannot be broken by REQUESTS_CA_BUNDLE."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import fields

import yaml
from support import ROOT

from mock_custodian.reference import (
    CONTROL_API_MARKER,
    SETTINGS_MARKER,
    control_api_document,
    control_api_reference,
    setting_docs,
    settings_reference,
)
from mock_custodian.settings import ENV_PREFIX, Settings

DOCS = ROOT / "docs"


def test_every_setting_has_a_one_line_description() -> None:
    docs = setting_docs()
    missing = [name for name, doc in docs.items() if not doc]
    assert missing == [], f"settings without metadata={{'doc': ...}}: {missing}"
    for name, doc in docs.items():
        assert "\n" not in doc and len(doc) <= 240, f"{name}: the description is one line"


def test_the_settings_reference_lists_every_field_with_type_default_and_variable() -> None:
    table = settings_reference()
    rows = {line.split("|")[1].strip().strip("`"): line for line in table.splitlines()[2:]}
    assert list(rows) == [f.name for f in fields(Settings)]
    assert f"`{ENV_PREFIX}XML_STYLE`" in rows["xml_style"] and "`pge`" in rows["xml_style"]
    assert "| `int` | `8443` |" in rows["api_port"]
    assert "| `list[float]` | `1,5,15` |" in rows["notify_retry_minutes"]
    assert "| unset |" in rows["control_token"] and "| `false` |" in rows["allow_self_signed"]
    assert "`DATABASE_URL`" in rows["database_url"]


def test_the_control_api_reference_covers_every_operation() -> None:
    document = control_api_document()
    text = control_api_reference(document)
    operations = [(method.upper(), path) for path, ops in document["paths"].items() for method in ops]
    assert len(operations) > 25
    for method, path in operations:
        assert f"### `{method} {path}`" in text
    assert "### `POST /__sim/customers`" in text and "### `POST /__sim/data-changes`" in text


def test_the_hook_fills_the_generated_pages() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["hooks"] == ["docs/hooks.py"] and config["theme"]["name"] == "material"
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    configuration = (DOCS / "configuration.md").read_text()
    assert SETTINGS_MARKER in configuration
    assert "| `async_delay_s` |" in hooks.on_page_markdown(configuration, page=None, config=None, files=None)
    reference = (DOCS / "control-api-reference.md").read_text()
    assert CONTROL_API_MARKER in reference
    assert "### `POST /__sim/clock/advance`" in hooks.on_page_markdown(reference)


def _nav_pages(entries: list) -> list[str]:
    pages = []
    for entry in entries:
        for value in entry.values():
            pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    nav = _nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    assert all((DOCS / page).is_file() for page in nav), [p for p in nav if not (DOCS / p).is_file()]
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(nav), "a page under docs/ is missing from the nav"


def test_the_docs_extra_pins_the_toolchain_and_ci_builds_strictly() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {r.split("==")[0] for r in extras["docs"]} == {"mkdocs", "mkdocs-material"}
    assert all("==" in r for r in extras["docs"])
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".[docs]" in ci and "mkdocs build --strict" in ci


def test_readme_is_a_front_page_with_the_two_commands_and_working_links() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "pip install . && mock-custodian serve" in readme
    assert "pip install -e '.[test]' && pytest" in readme
    for target in re.findall(r"\]\(((?:docs|mock_custodian)/[^)#]*)", readme):
        assert (ROOT / target).exists(), f"README links to a missing {target}"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[test]' && pytest" in ci, "the README's test command is what CI runs"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_python_examples_cannot_be_overridden_by_requests_ca_bundle() -> None:
    """requests lets REQUESTS_CA_BUNDLE override Session.verify: sessions set trust_env = False, and calls
    through the requests module pass verify= themselves."""
    blocks = [(page.name, block) for page in [ROOT / "README.md", *DOCS.glob("*.md")]
              for block in _python_blocks(page.read_text())]
    assert len(blocks) > 5
    for name, block in blocks:
        normalized = re.sub(r"\s+", " ", block)
        for session in re.findall(r"(\w+) = requests\.Session\(\)", block):
            assert f"{session}.trust_env = False" in block, f"{name}: {session} = requests.Session() without trust_env"
        for call in re.finditer(r"requests\.(get|post|put|patch|delete)\(", normalized):
            depth, end = 0, call.end() - 1
            for end in range(call.end() - 1, len(normalized)):
                depth += {"(": 1, ")": -1}.get(normalized[end], 0)
                if depth == 0:
                    break
            arguments = normalized[call.start():end]
            assert "verify=" in arguments, f"{name}: a requests call without verify=: {arguments[:120]}"
