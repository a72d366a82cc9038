"""Notification POSTs (spec 6.5, 3.7): a BatchList over HTTPS to the registered Notification URI.

The data custodian presents its client certificate and verifies the receiver against the trust bundle.
Every attempt is recorded on the row (simulated time, HTTP status, error); a failed one is retried
after ``notify_retry_minutes`` of simulated time, and after the last retry the notification is marked
``failed``, never dropped. The packages it names stay retrievable either way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import update
from sqlalchemy.orm.exc import StaleDataError

from mock_custodian.domain.faults import claim_notification_fault
from mock_custodian.jobs.config import WorkerConfig
from mock_custodian.store.db import Database
from mock_custodian.store.models import Notification, Package, ThirdParty

log = logging.getLogger("mock_custodian.jobs")

CONTENT_TYPE = "application/xml; charset=UTF-8"
MAX_RESPONSE_BYTES = 65536
# In a scenario's notification_uri, stands for the running server's API base URL (e.g. its sink).
API_BASE_PLACEHOLDER = "{api_base_url}"


@dataclass(frozen=True)
class Attempt:
    """One POST's outcome: ``status`` is the HTTP status (None when no answer came), ``error`` why it failed."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Sender:
    """One HTTPS client per worker process: the data custodian's certificate, the trust bundle, no proxies."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy or CA bundle from the environment: the settings decide
        self.session.verify = config.verify
        self.session.cert = config.client_cert

    def post(self, uri: str, body: str, x_transaction: str | None) -> Attempt:
        """POST once; never raises for network trouble (it is an attempt's outcome)."""
        if not uri:
            return Attempt(None, "the registration has no Notification URI")
        if urlsplit(uri).scheme.lower() != "https":
            return Attempt(None, "the Notification URI must be https (spec 3.7)")
        # A fresh connection per POST: a pooled one the receiver already closed would fail an attempt.
        headers = {"Content-Type": CONTENT_TYPE, "Connection": "close"}
        if x_transaction is not None:
            headers["X-Transaction"] = x_transaction
        try:
            response = self.session.post(uri, data=body.encode("utf-8"), headers=headers,
                                         timeout=self.config.notify_timeout_s, allow_redirects=False, stream=True)
        except requests.exceptions.SSLError as exc:
            return Attempt(None, f"TLS error: {_reason(exc)}")
        except requests.exceptions.Timeout:
            return Attempt(None, f"no answer within {self.config.notify_timeout_s:g} s")
        except requests.exceptions.RequestException as exc:
            return Attempt(None, f"connection failed: {_reason(exc)}")
        except OSError as exc:  # e.g. the trust bundle or the client certificate file went missing
            return Attempt(None, f"could not send: {_reason(exc)}")
        try:
            for _ in response.iter_content(MAX_RESPONSE_BYTES):
                break
        except requests.exceptions.RequestException:
            pass
        finally:
            response.close()
        if 200 <= response.status_code < 300:
            return Attempt(response.status_code, None)
        return Attempt(response.status_code, f"HTTP {response.status_code} {response.reason or ''}".strip())

    def close(self) -> None:
        self.session.close()


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "..."


def lease_seconds(config: WorkerConfig, posts: int = 1) -> float:
    """Real seconds a delivery round may hold its notification: its POSTs' timeouts plus a margin."""
    return config.notify_timeout_s * posts + 30.0


def _rounds(attempts: list[dict[str, Any]]) -> int:
    """Delivery rounds so far (a duplicated-notification fault sends several copies in one round)."""
    return sum(1 for a in attempts if a.get("copy", 1) == 1)


def deliver(database: Database, note_id: int, owner: str, sender: Sender, config: WorkerConfig) -> str | None:
    """Make one due delivery round of a claimed notification; the status it ends in (None: lease lost, or
    the notification is gone)."""
    try:
        return _deliver_round(database, note_id, owner, sender, config)
    except StaleDataError:
        # Its row was deleted under this round: a reset or another world loaded meanwhile, which tests do
        # between cases. Nothing is left to deliver or to retry.
        log.info("notification %s went away during its delivery round (the world was reset)", note_id)
        return None


def _deliver_round(database: Database, note_id: int, owner: str, sender: Sender,
                   config: WorkerConfig) -> str | None:
    clock = database.clock()
    with database.session() as db:
        note = db.get(Notification, note_id)
        if note is None or note.lease_owner != owner or note.status != "pending":
            return None
        now = clock.epoch()
        tp = db.get(ThirdParty, note.third_party_id)
        uri = (tp.notification_uri if tp is not None and tp.notification_uri else None) or note.uri
        # A scenario may point at this server (its sink) whatever port it runs on.
        uri = uri.replace(API_BASE_PLACEHOLDER, config.api_base_url)
        if note.fault is None:  # asked once, before the first attempt (store.faults)
            fired = claim_notification_fault(db, client_id=tp.client_id if tp else "", uri=uri, now=now)
            note.fault = {"id": fired.id, "kind": fired.kind, "params": fired.params} if fired else {}
            kind = note.fault.get("kind")
            if kind == "notification_lost":
                note.status, note.lease_owner, note.lease_until = "lost", None, None
                return "lost"
            if kind == "notification_delayed":
                note.next_attempt_at = now + float(note.fault["params"].get("delay_s", 0))
                note.lease_owner = note.lease_until = None
                return "pending"
        copies = int(note.fault.get("params", {}).get("copies", 2)) \
            if note.fault.get("kind") == "notification_duplicated" and not note.attempts else 1
        note.lease_until = clock.real_epoch() + lease_seconds(config, copies)  # covers every POST of this round
        body, x_transaction, job_id = note.body, note.x_transaction, note.job_id
        rounds = _rounds(list(note.attempts or []))

    outcomes = []
    for copy in range(1, copies + 1):
        at, started = clock.epoch(), time.monotonic()
        attempt = sender.post(uri, body, x_transaction)
        # elapsed_s (real seconds) lets the integration report flag a receiver slower than PG&E's patience.
        outcomes.append({"at": at, "status": attempt.status, "error": attempt.error, "uri": uri, "copy": copy,
                         "elapsed_s": round(time.monotonic() - started, 3)})
        if not attempt.ok:
            log.info("notification %s to %s failed: %s", note_id, uri, attempt.error)
    delivered = any(o["status"] is not None and 200 <= o["status"] < 300 for o in outcomes)

    with database.session() as db:
        note = db.get(Notification, note_id)
        if note is None or note.lease_owner != owner:
            return None
        now = clock.epoch()
        note.attempts = [*(note.attempts or []), *outcomes]
        note.uri = uri
        if delivered:
            note.status, note.delivered_at = "delivered", now
        elif rounds < len(config.retry_minutes):
            note.next_attempt_at = now + config.retry_minutes[rounds] * 60
        else:
            note.status = "failed"
        note.lease_owner = note.lease_until = None
        if job_id is not None:  # the retrieval window starts with the first notification (spec 6.6)
            db.execute(update(Package).where(Package.job_id == job_id, Package.notified_at.is_(None))
                       .values(notified_at=outcomes[0]["at"]))
        return note.status

