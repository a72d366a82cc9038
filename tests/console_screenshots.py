"""Screenshots of the simulator console for docs/report-and-console.md (run by hand, not a test).

    PYTHONPATH=$PWD python tests/console_screenshots.py docs/images

Starts a real server, makes some traffic worth showing (a customer authorization, calls too fast for
PG&E, a leaf certificate without its chain, an async Bulk request notified to the sink, a fault), then
photographs the main pages in headless Chromium.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))
from support.browser import chromium_page  # noqa: E402

from mock_custodian import testing  # noqa: E402

R = "/GreenButtonConnect/espi/1_1/resource"
TP, SELF = "00101", "00102"
SHOTS = {"entrance": "/", "console-overview": "/__sim/console/", "console-world": "/__sim/console/world",
         "console-chart": "/__sim/console/world/harbor-store", "console-requests": "/__sim/console/requests",
         "console-jobs": "/__sim/console/jobs", "console-faults": "/__sim/console/faults",
         "console-report": "/__sim/console/report"}


def traffic(server: testing.RunningServer) -> None:
    def token(client: str) -> str:
        tp = server.third_party(client)
        answer = requests.post(f"{server.api_base_url}/datacustodian/oauth/v2/token",
                               data={"grant_type": "client_credentials"}, auth=(client, tp["client_secret"]),
                               cert=server.cert(client), verify=server.ca_bundle, timeout=10)
        return answer.json()["client_access_token"]

    def get(client: str, path: str, bearer: str, cert: tuple[str, str] | None = None, **params: str) -> None:
        requests.get(server.api_base_url + path, params=params, headers={"Authorization": f"Bearer {bearer}"},
                     cert=cert or server.cert(client), verify=server.ca_bundle, timeout=30)

    server.authorize("rivera", TP, via="control")
    server.authorize("harbor", TP, via="control")
    cat = token(TP)
    for _ in range(4):
        get(TP, f"{R}/ReadServiceStatus", cat)
    get(TP, f"{R}/Batch/Bulk/{TP}", cat, **{"published-min": "2026-05-01T00:00:00-07:00"})
    tp = server.third_party(TP)
    get(TP, f"{R}/ReadServiceStatus", cat, cert=(tp["certificate"], tp["key"]))
    server.use_sink(SELF)
    self_token = token(SELF)
    time.sleep(1.2)
    get(SELF, f"{R}/Batch/Bulk/{SELF}", self_token)
    server.release_jobs()
    for _ in range(40):
        if any(n["status"] == "delivered" for n in server.notifications(SELF)):
            break
        time.sleep(0.25)
    server.fault("http_error", path="*/Batch/Subscription/*", status=502, times=2)


def main(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    server = testing.start(Path(tempfile.mkdtemp(prefix="console-shots-")), workers=1,
                           settings={"rate_limits_enabled": False, "async_delay_s": 0})
    try:
        traffic(server)
        with chromium_page(ignore_https_errors=True) as page:
            page.set_viewport_size({"width": 1280, "height": 860})
            page.goto(f"{server.portal_base_url}/__sim/console/signin")
            page.fill("#control_token", server.control_token)
            page.click("button[type=submit]")
            page.wait_for_selector("h1")
            for name, path in SHOTS.items():
                page.goto(server.portal_base_url + path)
                page.wait_for_selector("h1")
                page.screenshot(path=str(target / f"{name}.png"), full_page=name != "console-requests")
                print(f"wrote {target / f'{name}.png'}")
    finally:
        server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images"))
