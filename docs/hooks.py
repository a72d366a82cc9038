"""MkDocs hook: fill the generated-reference markers from the code (``mock_custodian.reference``).

The configuration reference comes from the ``Settings`` fields' own metadata and the control API
reference from its OpenAPI document, so neither can drift from what the server does.
"""

from __future__ import annotations

from typing import Any

from mock_custodian.reference import expand


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace ``<!-- generated:settings -->`` and ``<!-- generated:control-api -->`` in any page."""
    return expand(markdown)
