"""The offline rehearsal of PG&E's registration tests (spec 5.3-5.6), read from the request log.

Every API-host request is logged with the client it claimed, the client it proved, the certificate
it presented, the status it got and the mock's precise reason. Here those rows are sorted into the
steps of each required test, so a developer sees per step: passed, failed (with the request the mock
saw and exactly why) or not yet tried. Nothing is stored for the rehearsal itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from mock_custodian.clock import local_time
from mock_custodian.domain.milestones import API_CONNECTIVITY, APPLICATION_INFORMATION, OAUTH_TEST, REQUIRED_TESTS
from mock_custodian.domain.registration_certificates import certificate_state
from mock_custodian.store.models import RequestLog, ThirdParty, ThirdPartyCertificate
from mock_custodian.vocabulary import RESOURCE_PREFIX

RESOURCE = RESOURCE_PREFIX
TEST_TOKEN = "/datacustodian/test/oauth/v2/token"
PRODUCTION_TOKEN = "/datacustodian/oauth/v2/token"
TEST_AUTHORIZE = "/datacustodian/test/oauth/v2/authorize"
HARNESS_START = "/portal/oauth-test/start"
ATTEMPTS_SHOWN = 10
LOG_SCAN_LIMIT = 2000


def _grant_type(row: RequestLog) -> str | None:
    """grant_type wherever the client put it (even places PG&E does not read); 'code' implies the code grant."""
    params = row.parameters or {}
    for place in ("query", "form", "json", "unread"):
        values = params.get(place) or {}
        if values.get("grant_type"):
            return str(values["grant_type"])
    for place in ("query", "form", "json", "unread"):
        if "code" in (params.get(place) or {}):
            return "authorization_code"
    return None


def _is_token(row: RequestLog, path: str) -> bool:
    return row.surface == "api" and row.path.rstrip("/") == path


def _resource(row: RequestLog, name: str) -> bool:
    return row.surface == "api" and (row.path.rstrip("/") == f"{RESOURCE}/{name}"
                                     or row.path.startswith(f"{RESOURCE}/{name}/"))


@dataclass(frozen=True)
class Step:
    """One thing the third party must do; ``matches`` picks its requests from the log."""

    key: str
    title: str
    expect: str
    matches: Callable[[RequestLog], bool]
    optional: bool = False


STEPS: dict[str, tuple[Step, ...]] = {
    API_CONNECTIVITY: (
        Step("test_token", "Client access token from the test token endpoint",
             "POST /datacustodian/test/oauth/v2/token?grant_type=client_credentials with "
             "Authorization: Basic base64(client_id:client_secret) and your registered certificate (with its chain)",
             lambda r: _is_token(r, TEST_TOKEN) and _grant_type(r) not in ("authorization_code", "refresh_token")),
        Step("read_service_status", "ReadServiceStatus",
             "GET R/ReadServiceStatus with Authorization: Bearer {client access token}",
             lambda r: _resource(r, "ReadServiceStatus")),
        Step("download_sample_data", "DownloadSampleData (records the milestone)",
             "GET R/DownloadSampleData with Authorization: Bearer {client access token} over the registered "
             "certificate", lambda r: _resource(r, "DownloadSampleData")),
    ),
    OAUTH_TEST: (
        Step("start", "Start: PG&E sends the browser to your Third Party Portal URI",
             "Press Start in the portal's OAuth Test box; the browser gets a 302 to your Third Party Portal URI "
             "with scope=xxx&ThirdPartyID=PGE",
             lambda r: r.surface == "portal" and r.path == HARNESS_START),
        Step("authorize", "Your site sends the browser to the test authorize endpoint",
             "GET /datacustodian/test/oauth/v2/authorize?client_id={client_id}&redirect_uri={registered Redirect "
             "URI}&scope={scope from step 1}&response_type=code; the answer is a 302 to your Redirect URI with "
             "authorization_code", lambda r: r.surface == "api" and r.path.rstrip("/") == TEST_AUTHORIZE),
        Step("code_exchange", "Your server exchanges the code at the test token endpoint (records the milestone)",
             "POST /datacustodian/test/oauth/v2/token?grant_type=authorization_code&code={code}&redirect_uri="
             "{Redirect URI} with the Basic header and your certificate, within 600 s, once",
             lambda r: _is_token(r, TEST_TOKEN) and _grant_type(r) == "authorization_code"),
    ),
    APPLICATION_INFORMATION: (
        Step("find_id", "Find the ApplicationInformationID in R/Authorization",
             "GET R/Authorization with the client access token; one entry's resourceURI is "
             "R/ApplicationInformation/{id} (also shown in Manage Registration)",
             lambda r: r.surface == "api" and r.path.rstrip("/") == f"{RESOURCE}/Authorization", optional=True),
        Step("application_information", "ApplicationInformation (records the milestone)",
             "GET R/ApplicationInformation/{id} with Authorization: Bearer {registration_access_token} over the "
             "registered certificate", lambda r: _resource(r, "ApplicationInformation")),
    ),
}


def _certificate_note(row: RequestLog, mine: dict[str, ThirdPartyCertificate], now: float) -> str:
    if not row.certificate_sha256:
        return "no client certificate" if row.surface == "api" else "not asked (portal host)"
    cert = mine.get(row.certificate_sha256)
    if cert is None:
        return f"a certificate not registered to you (SHA-256 {row.certificate_sha256[:16]}...)"
    state = certificate_state(cert, row.at)
    label = {"active": "your registered certificate", "pending": "your replacement certificate (not active then)",
             "retired": "your previous certificate (replaced)"}[state]
    return f"{label} (SHA-256 {row.certificate_sha256[:16]}...)"


def _attempt(row: RequestLog, mine: dict[str, ThirdPartyCertificate], now: float, attributed: bool) -> dict[str, Any]:
    passed = row.status < 400
    attempt: dict[str, Any] = {
        "at": row.at,
        "at_local": local_time(row.at),
        "request": f"{row.method} {row.path}{'?' + row.query if row.query else ''}",
        "method": row.method,
        "path": row.path,
        "query": row.query,
        "parameters": row.parameters or {},
        "headers": row.headers or {},
        "certificate": _certificate_note(row, mine, now),
        "claimed_client_id": row.claimed_client_id,
        "authenticated_client_id": row.client_id,
        "status": row.status,
        "outcome": "passed" if passed else "failed",
        "error": row.error,
        "reason": row.reason,
    }
    if not attributed:
        attempt["note"] = ("this request named no client; it is shown because it reached the test authorize "
                           "endpoint after you pressed Start")
    return attempt


def _rows(db: Session, tp: ThirdParty, fingerprints: list[str]) -> list[RequestLog]:
    """This registration's requests: by proven or claimed client_id, else by its certificates."""
    unnamed = and_(RequestLog.client_id.is_(None), RequestLog.claimed_client_id.is_(None))
    conditions = [RequestLog.client_id == tp.client_id, RequestLog.claimed_client_id == tp.client_id]
    if fingerprints:
        conditions.append(and_(unnamed, RequestLog.certificate_sha256.in_(fingerprints)))
    last_start = db.execute(
        select(RequestLog.at).where(RequestLog.surface == "portal", RequestLog.path == HARNESS_START,
                                    RequestLog.client_id == tp.client_id).order_by(RequestLog.id.desc()).limit(1)
    ).scalar_one_or_none()
    if last_start is not None:
        conditions.append(and_(unnamed, RequestLog.path == TEST_AUTHORIZE, RequestLog.at >= last_start))
    query = (select(RequestLog).where(RequestLog.at >= tp.created_at).where(or_(*conditions))
             .where(or_(RequestLog.surface == "api", RequestLog.path == HARNESS_START))
             .order_by(RequestLog.id.desc()).limit(LOG_SCAN_LIMIT))
    return list(db.execute(query).scalars())


def rehearsal(db: Session, tp: ThirdParty, now: float) -> dict[str, Any]:
    """Per required test and step: passed / failed / not_tried, with the requests the mock saw and why."""
    certs = list(db.execute(select(ThirdPartyCertificate)
                            .where(ThirdPartyCertificate.third_party_id == tp.id)).scalars())
    mine = {c.fingerprint_sha256: c for c in certs}
    rows = _rows(db, tp, list(mine))
    used: set[int] = set()
    milestones = tp.milestones or {}
    required = REQUIRED_TESTS[tp.user_type]
    tests = []
    for test_name, steps in STEPS.items():
        step_views = []
        for step in steps:
            matched = [r for r in rows if step.matches(r)]
            used.update(r.id for r in matched)
            attempts = [_attempt(r, mine, now, attributed=bool(r.client_id or r.claimed_client_id
                                                                or r.certificate_sha256 in mine))
                        for r in matched[:ATTEMPTS_SHOWN]]
            passed = any(r.status < 400 for r in matched)
            failures = [a for a in attempts if a["outcome"] == "failed"]
            status = "passed" if passed else "failed" if matched else "not_tried"
            step_views.append({
                "key": step.key,
                "title": step.title,
                "expect": step.expect,
                "optional": step.optional,
                "status": status,
                "attempt_count": len(matched),
                "last_attempt": attempts[0] if attempts else None,
                "last_failure": failures[0] if failures else None,
                "attempts": attempts,
            })
        completed_at = milestones.get(test_name)
        if test_name not in required:
            test_status = "not_required"
        elif completed_at is not None:
            test_status = "completed"
        elif any(s["status"] != "not_tried" for s in step_views):
            test_status = "in_progress"
        else:
            test_status = "not_started"
        tests.append({
            "name": test_name,
            "milestone": f"{test_name}: Completed",
            "required": test_name in required,
            "status": test_status,
            "completed_at": completed_at,
            "completed_local": local_time(completed_at),
            "steps": step_views,
        })
    others = [_attempt(r, mine, now, attributed=True) for r in rows
              if r.id not in used and r.surface == "api"][:ATTEMPTS_SHOWN]
    return {
        "client_id": tp.client_id,
        "status": tp.status,
        "required_tests": list(required),
        "tests": tests,
        "other_requests": others,
    }
