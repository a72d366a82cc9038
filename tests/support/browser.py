"""Playwright driving Debian's Chromium, the way every browser test here launches it.

One Chromium per test process (started by the first browser test, closed at the session's end): each
``chromium_page`` is a fresh browser context, as isolated as a new browser (its own cookies, storage
and cache), without paying for a Playwright driver and a Chromium launch per test.
"""

from __future__ import annotations

import atexit
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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


_SHARED: dict[str, Any] = {}


def _browser() -> Any:
    if "browser" not in _SHARED or not _SHARED["browser"].is_connected():
        close_shared_browser()
        from playwright.sync_api import sync_playwright

        _SHARED["playwright"] = sync_playwright().start()
        _SHARED["browser"] = _SHARED["playwright"].chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                                  headless=True)
    return _SHARED["browser"]


def close_shared_browser() -> None:
    """Close this process's Chromium and Playwright driver, if a browser test started them."""
    browser, driver = _SHARED.pop("browser", None), _SHARED.pop("playwright", None)
    try:
        if browser is not None and browser.is_connected():
            browser.close()
    finally:
        if driver is not None:
            driver.stop()


atexit.register(close_shared_browser)


@contextmanager
def chromium_page(ignore_https_errors: bool = False) -> Iterator:
    """A fresh page in its own browser context; skips (with the reason) where Chromium is not installed."""
    if not shutil.which("chromium") and not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    context = _browser().new_context(ignore_https_errors=ignore_https_errors)
    try:
        yield context.new_page()
    finally:
        context.close()
