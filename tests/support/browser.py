"""Playwright driving Debian's Chromium, the way every browser test here launches it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]


@contextmanager
def chromium_page(ignore_https_errors: bool = False) -> Iterator:
    """A fresh page in headless Chromium; skips (with the reason) where Chromium is not installed."""
    if not shutil.which("chromium") and not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(ignore_https_errors=ignore_https_errors)
            page = context.new_page()
            yield page
        finally:
            browser.close()
