"""A small PG&E Share My Data client, written the way a third party writes one: plain ``requests``.

It knows nothing of mock-custodian. Point ``api_base_url`` at ``https://api.pge.com`` and it talks to
PG&E; point it at the simulator and the same code runs in CI. What it does on PG&E's behalf:

- mutual TLS on every call (certificate chain + key), HTTP Basic at the token endpoint;
- the client access token (client_credentials) for ReadServiceStatus and Bulk, cached;
- customer tokens from the consent code, refreshed with rotation;
- PG&E's 403 signal: on 403 fetch a new token and retry once;
- retries with backoff on 429 (honouring Retry-After), 5xx, and dropped or cut connections.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"
TOKEN = "/datacustodian/oauth/v2/token"
RETRY_STATUSES = {429, 500, 502, 503, 504}
ATOM = "{http://www.w3.org/2005/Atom}"
ESPI = "{http://naesb.org/espi}"


@dataclass
class Credentials:
    client_id: str
    client_secret: str
    certificate_chain: str  # leaf + intermediate, PEM
    key: str
    ca_bundle: str
    redirect_uri: str | None = None


@dataclass
class CustomerGrant:
    """What the authorization_code exchange returned; the refresh token rotates on every refresh."""

    access_token: str
    refresh_token: str
    resource_uri: str
    authorization_uri: str
    scope: str

    @property
    def subscription_id(self) -> str:
        return self.resource_uri.rstrip("/").rsplit("/", 1)[-1]


class PGEError(RuntimeError):
    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"{response.request.method} {response.url} -> {response.status_code}: {response.text[:300]}")
        self.response = response


class ShareMyData:
    def __init__(self, api_base_url: str, credentials: Credentials, *, max_attempts: int = 4,
                 backoff_s: float = 0.05, max_delay_s: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base = api_base_url.rstrip("/")
        self.credentials = credentials
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_delay_s = max_delay_s
        self.sleep = sleep
        self.session = requests.Session()
        self._client_token: str | None = None

    # --- transport ------------------------------------------------------------------------------
    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One logical call: retried on 429 / 5xx / broken connections, never on other answers."""
        kwargs.setdefault("timeout", 30)
        kwargs["cert"] = (self.credentials.certificate_chain, self.credentials.key)
        kwargs["verify"] = self.credentials.ca_bundle
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.session.request(method, url, **kwargs)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                if attempt == self.max_attempts:
                    raise
                self.sleep(min(self.backoff_s * 2 ** (attempt - 1), self.max_delay_s))
                continue
            if response.status_code not in RETRY_STATUSES or attempt == self.max_attempts:
                return response
            retry_after = response.headers.get("Retry-After")
            delay = float(retry_after) if retry_after and retry_after.isdigit() else self.backoff_s * 2 ** (attempt - 1)
            self.sleep(min(delay, self.max_delay_s))
        raise AssertionError("unreachable")

    def _token_request(self, params: dict[str, str]) -> dict[str, Any]:
        response = self._send("POST", self.base + TOKEN, params=params,
                              auth=(self.credentials.client_id, self.credentials.client_secret))
        if response.status_code != 200:
            raise PGEError(response)
        return response.json()

    # --- client access token ----------------------------------------------------------------------
    def client_access_token(self, fresh: bool = False) -> str:
        if fresh or self._client_token is None:
            self._client_token = self._token_request({"grant_type": "client_credentials"})["client_access_token"]
        return self._client_token

    def _with_client_token(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        response = self._send(method, url, headers={"Authorization": f"Bearer {self.client_access_token()}"},
                              **kwargs)
        if response.status_code == 403:  # PG&E: fetch a new token and retry once
            token = self.client_access_token(fresh=True)
            response = self._send(method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        return response

    def read_service_status(self) -> int:
        response = self._with_client_token("GET", self.base + RESOURCE + "/ReadServiceStatus")
        if response.status_code != 200:
            raise PGEError(response)
        return int(ET.fromstring(response.content).findtext(f"{ESPI}currentStatus"))

    # --- customer tokens -----------------------------------------------------------------------------
    def exchange_code(self, code: str) -> CustomerGrant:
        body = self._token_request({"grant_type": "authorization_code", "code": code,
                                    "redirect_uri": self.credentials.redirect_uri or ""})
        return CustomerGrant(body["access_token"], body["refresh_token"], body["resourceURI"],
                             body["authorizationURI"], body["scope"])

    def refresh(self, grant: CustomerGrant) -> CustomerGrant:
        body = self._token_request({"grant_type": "refresh_token", "refresh_token": grant.refresh_token})
        grant.access_token, grant.refresh_token = body["access_token"], body["refresh_token"]
        return grant

    def _with_customer_token(self, grant: CustomerGrant, url: str, headers: dict[str, str] | None = None,
                             **kwargs: Any) -> requests.Response:
        response = self._send("GET", url, headers={"Authorization": f"Bearer {grant.access_token}", **(headers or {})},
                              **kwargs)
        if response.status_code == 403:  # PG&E: refresh and retry once
            self.refresh(grant)
            response = self._send("GET", url, headers={"Authorization": f"Bearer {grant.access_token}",
                                                       **(headers or {})}, **kwargs)
        return response

    # --- data -------------------------------------------------------------------------------------
    def usage_points(self, grant: CustomerGrant) -> list[str]:
        """UsagePoint ids of the subscription (one per authorized service agreement)."""
        response = self._with_customer_token(grant, f"{grant.resource_uri}/UsagePoint")
        if response.status_code != 200:
            raise PGEError(response)
        feed = ET.fromstring(response.content)
        return [link.get("href").rstrip("/").rsplit("/", 1)[-1]
                for entry in feed.iter(f"{ATOM}entry") for link in entry.iter(f"{ATOM}link")
                if link.get("rel") == "self"]

    def batch_usage(self, grant: CustomerGrant, usage_point_id: str, start: str, end: str) -> bytes:
        """Synchronous usage for one UsagePoint: IntervalBlocks and UsageSummaries (an Atom feed)."""
        url = f"{self.base}{RESOURCE}/Batch/Subscription/{grant.subscription_id}/UsagePoint/{usage_point_id}"
        response = self._with_customer_token(grant, url, params={"published-min": start, "published-max": end})
        if response.status_code != 200:
            raise PGEError(response)
        return response.content

    def request_subscription_batch(self, grant: CustomerGrant, start: str, end: str,
                                   x_transaction: str | None = None) -> int:
        """Ask for every UsagePoint's usage asynchronously: 202 now, a notification later."""
        url = f"{self.base}{RESOURCE}/Batch/Subscription/{grant.subscription_id}"
        headers = {"X-Transaction": x_transaction} if x_transaction else {}
        response = self._with_customer_token(grant, url, params={"published-min": start, "published-max": end},
                                             headers=headers)
        if response.status_code not in (202, 204):
            raise PGEError(response)
        return response.status_code

    def retrieve(self, grant: CustomerGrant, url: str) -> bytes:
        """GET a package URL from a notification's BatchList."""
        response = self._with_customer_token(grant, url)
        if response.status_code != 200:
            raise PGEError(response)
        return response.content


def batch_list_urls(body: str | bytes) -> list[str]:
    """The resources of a notification's BatchList."""
    return [node.text or "" for node in ET.fromstring(body).iter(f"{ESPI}resources")]


def interval_readings(feed: bytes) -> int:
    return sum(1 for _ in ET.fromstring(feed).iter(f"{ESPI}IntervalReading"))
