"""A stand-in third-party application for compose.yaml: reaches the mock by PG&E's host names.

Standard library only (runs in a bare python image). It fetches its credentials from the control
API, then does what a real client does first: a client access token over mutual TLS with its chain,
and ReadServiceStatus. Exit status 0 when PG&E (the mock) answered as PG&E would.

Environment: PGE_API (default https://api.pge.com:8443), PGE_PORTAL (https://sharemydata.pge.com:8444),
PGE_CA (the CA bundle, default /mock/certs/ca.pem: the mock's data volume, mounted read-only),
MOCK_CONTROL_TOKEN, CLIENT_ID (default 00101, the demo's Sunny Solar).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
import urllib.request
from urllib.parse import urlencode

API = os.environ.get("PGE_API", "https://api.pge.com:8443")
PORTAL = os.environ.get("PGE_PORTAL", "https://sharemydata.pge.com:8444")
CA = os.environ.get("PGE_CA", "/mock/certs/ca.pem")
CLIENT_ID = os.environ.get("CLIENT_ID", "00101")
RESOURCE = "/GreenButtonConnect/espi/1_1/resource"


def call(url: str, context: ssl.SSLContext, method: str = "GET", headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        return response.read()


def main() -> int:
    plain = ssl.create_default_context(cafile=CA)  # verifies the server's name: api.pge.com is on its certificate
    control = {"X-Control-Token": os.environ["MOCK_CONTROL_TOKEN"]}
    creds = json.loads(call(f"{PORTAL}/__sim/credentials?inline=pem", plain, headers=control))
    tp = next(t for t in creds["third_parties"] if t["client_id"] == CLIENT_ID)
    # Mutual TLS: the client certificate with its intermediate, and its key (written where only we read them).
    folder = os.environ.get("TMPDIR", "/tmp")
    chain, key = os.path.join(folder, "chain.pem"), os.path.join(folder, "key.pem")
    with open(chain, "w") as out:
        out.write(tp["certificate_chain_pem"])
    with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(tp["key_pem"])
    mutual = ssl.create_default_context(cafile=CA)
    mutual.load_cert_chain(chain, key)
    basic = base64.b64encode(f"{tp['client_id']}:{tp['client_secret']}".encode()).decode()
    token = json.loads(call(f"{API}/datacustodian/oauth/v2/token?" + urlencode({"grant_type": "client_credentials"}),
                            mutual, "POST", {"Authorization": f"Basic {basic}"}))["client_access_token"]
    status = call(f"{API}{RESOURCE}/ReadServiceStatus", mutual, headers={"Authorization": f"Bearer {token}"})
    print(status.decode())
    return 0 if b"<currentStatus>1</currentStatus>" in status else 1


if __name__ == "__main__":
    sys.exit(main())
