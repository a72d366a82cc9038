"""Helpers of the catalog rows (tests/app/test_catalog.py in-process, tests/e2e/test_catalog_notifications.py
for the rows whose proof is a delivered notification): tokens, API calls and the catalog's clock."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import requests
from lxml import etree

from mock_custodian import testing
from mock_custodian.clock import PACIFIC
from support import client_token
from support.customer_flow import token

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"
SUNNY = "00101"


def api(server: testing.RunningServer, client_id: str, path: str, bearer: str, **params: str) -> requests.Response:
    return requests.get(server.api_base_url + RESOURCE + path, params=params,
                        headers={"Authorization": f"Bearer {bearer}"}, cert=server.cert(client_id),
                        verify=server.ca_bundle, timeout=60)


def texts(xml: str, name: str) -> list[str]:
    """Text of every element with this local name."""
    root = etree.fromstring(xml.encode())
    return [e.text or "" for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == name]


def sas(server: testing.RunningServer, username: str) -> dict[str, dict[str, Any]]:
    customer = next(c for c in server.customers() if c["username"] == username)
    return {sa["key"]: sa for account in customer["accounts"] for sa in account["service_agreements"]}


def z(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_midnight(server: testing.RunningServer, days: int = 0) -> dt.datetime:
    today = server.clock.now().astimezone(PACIFIC).date() + dt.timedelta(days=days)
    return dt.datetime(today.year, today.month, today.day, tzinfo=PACIFIC)


def day_window(start: dt.datetime, days: int = 1) -> dict[str, str]:
    end = start + dt.timedelta(days=days)
    end = dt.datetime(end.year, end.month, end.day, tzinfo=PACIFIC)  # DST-safe local midnight
    return {"published-min": z(start), "published-max": z(end)}


def usage(server: testing.RunningServer, consent: dict[str, Any], usage_point: str, **params: str) -> requests.Response:
    return api(server, SUNNY, f"/Batch/Subscription/{consent['authorization_id']}/UsagePoint/{usage_point}",
               consent["token"]["access_token"], **params)


def fresh_token(server: testing.RunningServer, consent: dict[str, Any], client_id: str = SUNNY) -> str:
    """A new access token by refresh (the first one lives an hour; rows move the clock further)."""
    response = token(server, client_id, grant_type="refresh_token", refresh_token=consent["token"]["refresh_token"])
    assert response.status_code == 200, response.text
    consent["token"] = response.json()
    return consent["token"]["access_token"]


def advance_to(server: testing.RunningServer, moment: dt.datetime) -> None:
    server.control("POST", "/clock/set", json={"to": z(moment)})


def authorization_notices(server: testing.RunningServer, client_id: str, authorization_id: int,
                          count: int = 1) -> list[dict[str, Any]]:
    """The notifications naming this authorization, once ``count`` of them have been attempted."""
    for _ in range(150):
        server.release_jobs()
        notes = [n for n in server.notifications(client_id) if f"/Authorization/{authorization_id}<" in n["body"]]
        if len(notes) >= count and all(n["status"] != "pending" or n["attempts"] for n in notes):
            return notes
        time.sleep(0.2)
    raise AssertionError(f"no notification for authorization {authorization_id}: {server.notifications(client_id)}")


def usage_points(server: testing.RunningServer, consent: dict[str, Any]) -> set[str]:
    response = api(server, SUNNY, f"/Subscription/{consent['authorization_id']}/UsagePoint",
                   consent["token"]["access_token"])
    assert response.status_code == 200, response.text
    root = etree.fromstring(response.content)
    return {e.get("href").rsplit("/", 1)[1] for e in root.iter("{*}link")
            if e.get("rel") == "self" and "/UsagePoint/" in (e.get("href") or "")}


def authorization_status(server: testing.RunningServer, authorization_id: int, client_id: str = SUNNY) -> str:
    response = api(server, client_id, f"/Authorization/{authorization_id}", client_token(server, client_id))
    assert response.status_code == 200, response.text
    return texts(response.text, "status")[0]


def usage_points_status(server: testing.RunningServer, consent: dict[str, Any]) -> int:
    return api(server, SUNNY, f"/Subscription/{consent['authorization_id']}/UsagePoint",
               consent["token"]["access_token"]).status_code
