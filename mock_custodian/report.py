"""Integration report: would this traffic pass at PG&E?

CI suites run the mock with rate limits off and a fast clock, so they never learn what production
would make of their traffic. This module reads what the server already records (request log, tokens,
notifications and their delivery attempts, packages) and evaluates named rules per third party over
a period, whatever the live settings are: the rules are PG&E's, not the mock's switches.

Severity: ``error`` = PG&E would refuse it (or the data would be lost); ``warning`` = risky, or relies on
something PG&E's documents do not promise. Heavy lifting is SQL aggregates; the only full scan is one
streamed pass (id order) for the per-second pacing model, Retry-After and back-off, which are sequential
by nature. Pacing uses the wall-clock time each request arrived (``real_at``): PG&E never sees the
simulated clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Integer, and_, cast, func, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from .clock import PACIFIC
from .store.models import Notification, Package, RequestLog, ThirdParty

ERROR, WARNING = "error", "warning"
SEVERITY_RANK = {WARNING: 1, ERROR: 2}

TOKEN_PATHS = ("/datacustodian/oauth/v2/token", "/datacustodian/test/oauth/v2/token")
RESOURCE_PREFIX = "/GreenButtonConnect/espi/1_1/resource/"

# PG&E's numbers (spec 6.7), fixed here on purpose: the report judges by PG&E, not by the mock's settings.
VENDOR_PER_SECOND = 1.0
PRODUCTION_DEPTH = 2  # data calls only; token-endpoint calls do not draw on the bucket (production evidence)
LITERAL_DEPTH = 1  # the documents' literal reading: 1 request/s, every call counted
CLIENT_PER_HOUR = 2000
CLIENT_PER_DAY = 20000
DAY_RESET_HOUR = 17  # Pacific
PACKAGE_TTL_S = 5 * 86400  # spec 6.6
MIN_BACKOFF_S = 1.0  # a retry sooner than this after a 5xx is "no back-off"
NEW_TOKEN_MIN_CALLS = 10  # below this many CAT calls, token reuse is not judged
MANY_FETCHES = 3  # more successful GETs of one package than this
BULK_POLLS = 3  # more Bulk calls without correlationID than this while daily notifications are on
SAME_DAY_REQUESTS = 5  # more identical data requests in one (simulated) day than this

ZULU = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
EPOCH = re.compile(r"^\d+$")
DATE_PARAMETERS = ("published-min", "published-max", "updated-min", "updated-max")
ALIASES = {name.replace("-", ""): name for name in DATE_PARAMETERS}
RESOURCE_PARAMETERS = {*DATE_PARAMETERS, "correlationID"}
TOKEN_PARAMETERS = {"grant_type", "code", "authorization_code", "redirect_uri", "refresh_token", "scope",
                    "client_id", "client_secret"}
REVOKED_REASONS = ("Access token has been revoked", "The authorization of this token has been revoked or has expired")


@dataclass(frozen=True)
class Rule:
    """One named check: what it looks for, how bad it is, and where the spec says so."""

    id: str
    severity: str
    section: str
    title: str
    explanation: str


RULES: tuple[Rule, ...] = (
    Rule("rate.vendor_per_second", ERROR, "6.7", "Over 1 request/s per vendor (production pacing)",
         "PG&E's production pacing (1 request/s per Tax ID, burst of 2 data calls, token calls free, wall-clock "
         "time) would have answered these calls 429."),
    Rule("rate.literal_per_second", WARNING, "6.7", "Over a literal 1 request/s (every call counted)",
         "These calls pass production pacing but not the documents' literal reading (1 request/s counting every "
         "call, no burst); space calls 1 s apart to be safe."),
    Rule("rate.client_per_hour", ERROR, "6.7", "Over 2,000 calls per hour per client_id",
         "PG&E allows 2,000 calls per rolling hour per client_id; these calls were over it."),
    Rule("rate.client_per_day", ERROR, "6.7", "Over 20,000 calls per day per client_id",
         "PG&E allows 20,000 calls per client_id per day (resetting at 17:00 Pacific); these calls were over it."),
    Rule("rate.retry_before_retry_after", ERROR, "6.7, 2.3", "Retried sooner than Retry-After",
         "The client called again before the Retry-After it was given had passed; PG&E refuses such calls."),
    Rule("rate.no_backoff_after_5xx", WARNING, "2.3", "No back-off after a 5xx or 503",
         "The client called again within 1 s of a 5xx/503 answer; back off (exponentially) before retrying."),
    Rule("token.new_client_token_per_call", WARNING, "4.9, 4.12", "A new client access token for nearly every call",
         "The client fetched a fresh client access token for nearly every call instead of reusing it for its "
         "hour; it works at PG&E but doubles the traffic and the rate-limit use."),
    Rule("token.customer_token_after_expiry", ERROR, "4.11, 4.12", "Customer access token used after expiry",
         "A customer access token was used after it expired instead of being refreshed first; PG&E answers 403."),
    Rule("token.refresh_token_reused", ERROR, "4.11", "Rotated-out refresh token presented again",
         "A refresh token that had already been exchanged (and so rotated out) was presented again; PG&E "
         "refuses it, and the client should keep the newest refresh token."),
    Rule("token.calls_after_revoked", ERROR, "8.3, 2.3", "Calls continued after a 403 on a revoked authorization",
         "The client kept using a token after PG&E said its authorization was revoked; stop calling for that "
         "subscription (and re-authorize the customer)."),
    Rule("notify.receiver_refused", ERROR, "6.5", "Notification answered non-2xx or not reachable",
         "The notification receiver answered a non-2xx status or could not be reached; PG&E retries a few times, "
         "then gives up."),
    Rule("notify.receiver_slow", WARNING, "6.5", "Notification receiver slower than PG&E's patience",
         "The notification receiver took longer than PG&E's patience to answer; reply 200 at once and fetch later."),
    Rule("notify.receiver_tls", ERROR, "3.7, 6.5", "TLS problem on the notification receiver",
         "PG&E could not complete TLS with the notification receiver (certificate name, chain or trust)."),
    Rule("package.never_fetched", WARNING, "6.4, 6.6", "Package notified but never fetched",
         "A package was notified but never retrieved; it expires 5 days after the notification."),
    Rule("package.fetched_after_expiry", ERROR, "6.6", "Package fetched after it expired",
         "A package was requested more than 5 days after its notification; PG&E no longer serves it."),
    Rule("package.fetched_many_times", WARNING, "6.4", "Package fetched many times",
         "The same package was retrieved more than 3 times; fetch it once and keep it."),
    Rule("bulk.polled_with_daily_notifications", WARNING, "6.5", "Bulk polled while daily notifications are on",
         "The registration asks for daily notifications yet polls Batch/Bulk without a correlationID; wait for "
         "the daily package instead."),
    Rule("data.same_day_requested_many_times", WARNING, "6.1, 6.7", "The same day's data requested many times",
         "The same data request was repeated more than 5 times in one day; PG&E watches traffic for abuse."),
    Rule("request.date_form", WARNING, "6.1", "Date form PG&E does not promise",
         "published-*/updated-* used a numeric offset, fractional seconds or another form; PG&E promises UTC "
         "'YYYY-MM-DDTHH:MM:SSZ' (integer epoch seconds also work in production)."),
    Rule("request.unhyphenated_alias", WARNING, "6.1, 9", "Unhyphenated date parameter",
         "publishedmin/publishedmax-style aliases are not in PG&E's documents; use published-min/published-max."),
    Rule("request.unknown_parameter", WARNING, "6.1, 6.8", "Unknown query parameter",
         "A query parameter PG&E does not document was sent; PG&E may ignore or refuse it."),
    Rule("tls.leaf_without_chain", WARNING, "3", "Client certificate sent without its chain",
         "The client presented its leaf certificate without the intermediate; PG&E expects the full chain "
         "(leaf first, then the intermediate)."),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}


@dataclass
class Example:
    """One occurrence a finding points at: a request-log id, or a notification / package reference."""

    at: float | None
    real_at: float | None = None
    request_id: int | None = None
    ref: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "ref": self.ref, "at": _iso(self.at), "real_at": _iso(self.real_at)}


@dataclass
class Finding:
    rule: Rule
    client_id: str | None
    count: int
    first: Example
    last: Example
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.id, "severity": self.rule.severity, "client_id": self.client_id, "count": self.count,
            "first": self.first.as_dict(), "last": self.last.as_dict(), "message": self.rule.explanation,
            "detail": self.detail, "section": self.rule.section, "title": self.rule.title,
        }


@dataclass
class ReportOptions:
    """The period and the two tunable judgements (settings ``report_*``)."""

    client_id: str | None = None
    since: float | None = None  # simulated-clock epoch; None = since the last reset (the whole log)
    since_id: int | None = None
    notification_patience_s: float = 5.0
    new_token_ratio: float = 0.8


@dataclass
class _Collector:
    """Accumulates occurrences per (rule, client) so a finding keeps first/last and a count."""

    found: dict[tuple[str, str | None], Finding] = field(default_factory=dict)

    def add(self, rule_id: str, client_id: str | None, example: Example, count: int = 1,
            last: Example | None = None, detail: str = "") -> None:
        key = (rule_id, client_id)
        existing = self.found.get(key)
        if existing is None:
            self.found[key] = Finding(RULES_BY_ID[rule_id], client_id, count, example, last or example, detail)
            return
        existing.count += count
        if _order(example) < _order(existing.first):
            existing.first = example
        if _order(last or example) > _order(existing.last):
            existing.last = last or example
        if detail and not existing.detail:
            existing.detail = detail


def _order(example: Example) -> tuple[float, int]:
    return (example.at if example.at is not None else 0.0, example.request_id or 0)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the query every rule starts from ----------------------------------------------------------------


def _who() -> ColumnElement:
    return func.coalesce(RequestLog.client_id, RequestLog.claimed_client_id)


def _real() -> ColumnElement:
    return func.coalesce(RequestLog.real_at, RequestLog.at)


def _period(options: ReportOptions) -> list[ColumnElement]:
    """API-host requests of the period (and client) the report covers."""
    where: list[ColumnElement] = [RequestLog.surface == "api"]
    if options.since is not None:
        where.append(RequestLog.at >= options.since)
    if options.since_id is not None:
        where.append(RequestLog.id > options.since_id)
    if options.client_id:
        where.append(_who() == options.client_id)
    return where


# --- rules ---------------------------------------------------------------------------------------------


def _pacing_pass(db: Session, options: ReportOptions, vendors: dict[str, str], out: _Collector) -> None:
    """One streamed pass in id order: two GCRA models per vendor, Retry-After deadlines, back-off after 5xx."""
    interval = 1.0 / VENDOR_PER_SECOND
    tat_production: dict[str, float] = {}
    tat_literal: dict[str, float] = {}
    retry_until: dict[str, float] = {}
    failed_at: dict[str, float] = {}
    query = (select(RequestLog.id, _who(), RequestLog.at, _real(), RequestLog.path, RequestLog.status,
                    RequestLog.retry_after)
             .where(*_period(options), _who().is_not(None)).order_by(RequestLog.id)
             .execution_options(yield_per=20000))
    for rid, who, at, real, path, status, retry_after in db.execute(query):
        vendor = vendors.get(who)
        if vendor is None:
            continue  # not a registered client_id: the certificate check refused it before any limit
        example = Example(at, real, rid)
        # The documents' literal reading: every call, depth 1.
        next_literal = max(tat_literal.get(vendor, 0.0), real) + interval
        literal_ok = next_literal - real <= interval * LITERAL_DEPTH
        if literal_ok:
            tat_literal[vendor] = next_literal
        production_ok = True
        if path not in TOKEN_PATHS:
            next_production = max(tat_production.get(vendor, 0.0), real) + interval
            production_ok = next_production - real <= interval * PRODUCTION_DEPTH
            if production_ok:
                tat_production[vendor] = next_production
        if not production_ok:
            out.add("rate.vendor_per_second", who, example)
        elif not literal_ok:
            out.add("rate.literal_per_second", who, example)
        # Retry-After and back-off: judged on the call that follows an answer.
        deadline = retry_until.get(who)
        if deadline is not None:
            if real < deadline:
                out.add("rate.retry_before_retry_after", who, example)
            else:
                del retry_until[who]
        failed = failed_at.pop(who, None)
        if failed is not None and real - failed < MIN_BACKOFF_S:
            out.add("rate.no_backoff_after_5xx", who, example)
        if retry_after is not None and status in (429, 503):
            retry_until[who] = real + retry_after
        elif status == 0 or status >= 500:
            failed_at[who] = real


def _client_limits(db: Session, options: ReportOptions, out: _Collector) -> None:
    """2,000/rolling hour and 20,000/day (17:00 Pacific) per client_id, from per-minute SQL counts."""
    minute = cast(func.floor(_real() / 60), Integer)
    rows = db.execute(
        select(_who(), minute, func.count(), func.min(RequestLog.id), func.max(RequestLog.id),
               func.min(_real()), func.max(_real()), func.min(RequestLog.at), func.max(RequestLog.at))
        .where(*_period(options), _who().is_not(None))
        .group_by(_who(), minute).order_by(_who(), minute)
    ).all()
    by_client: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_client[row[0]].append(row)
    for who, minutes in by_client.items():
        window: list[tuple[int, int]] = []  # (minute, admitted) within the last hour
        admitted_in_hour = 0
        days: dict[float, list[Any]] = defaultdict(list)
        for _, m, count, first_id, last_id, first_real, last_real, first_at, last_at in minutes:
            while window and window[0][0] <= m - 60:
                admitted_in_hour -= window.pop(0)[1]
            admitted = min(count, max(0, CLIENT_PER_HOUR - admitted_in_hour))
            window.append((m, admitted))
            admitted_in_hour += admitted
            if admitted < count:
                out.add("rate.client_per_hour", who, Example(first_at, first_real, first_id), count - admitted,
                        last=Example(last_at, last_real, last_id))
            days[_day_start(m * 60.0)].append((count, first_id, last_id, first_real, last_real, first_at, last_at))
        for parts in days.values():
            total = sum(p[0] for p in parts)
            if total > CLIENT_PER_DAY:
                # The calls over the limit are the day's last ones: point at the minute it was crossed.
                running, crossing = 0, parts[-1]
                for part in parts:
                    running += part[0]
                    if running > CLIENT_PER_DAY:
                        crossing = part
                        break
                out.add("rate.client_per_day", who, Example(crossing[5], crossing[3], crossing[1]),
                        total - CLIENT_PER_DAY, last=Example(parts[-1][6], parts[-1][4], parts[-1][2]))


def _day_start(epoch: float) -> float:
    local = dt.datetime.fromtimestamp(epoch, PACIFIC)
    reset = local.replace(hour=DAY_RESET_HOUR, minute=0, second=0, microsecond=0)
    if reset > local:
        day = local.date() - dt.timedelta(days=1)
        reset = dt.datetime(day.year, day.month, day.day, DAY_RESET_HOUR, tzinfo=PACIFIC)
    return reset.timestamp()


def _grouped(db: Session, options: ReportOptions, *where: ColumnElement) -> list[Any]:
    """(client, count, first id/at/real, last id/at/real) of the period's requests matching ``where``."""
    first_id, last_id = func.min(RequestLog.id), func.max(RequestLog.id)
    rows = db.execute(
        select(_who(), func.count(), first_id, last_id)
        .where(*_period(options), *where).group_by(_who())
    ).all()
    return _with_times(db, rows)


def _with_times(db: Session, rows: Iterable[Any]) -> list[Any]:
    rows = list(rows)
    ids = {r[2] for r in rows} | {r[3] for r in rows}
    times = {i: (at, real) for i, at, real in db.execute(
        select(RequestLog.id, RequestLog.at, _real()).where(RequestLog.id.in_(ids)))} if ids else {}
    return [(who, count, Example(*times[first], first), Example(*times[last], last))
            for who, count, first, last in rows]


def _token_rules(db: Session, options: ReportOptions, out: _Collector) -> None:
    # A new client access token for nearly every call: distinct CATs over calls made with a CAT.
    rows = db.execute(
        select(_who(), func.count(), func.count(func.distinct(RequestLog.token_fingerprint)),
               func.min(RequestLog.id), func.max(RequestLog.id))
        .where(*_period(options), RequestLog.token_kind == "client_access",
               RequestLog.path.not_in(TOKEN_PATHS))
        .group_by(_who())
    ).all()
    judged = [(who, calls, distinct, first, last) for who, calls, distinct, first, last in rows
              if calls >= NEW_TOKEN_MIN_CALLS and distinct / calls >= options.new_token_ratio]
    for (who, calls, distinct, _first, _last), (_, _, first_ex, last_ex) in zip(
            judged, _with_times(db, [(w, c, f, la) for w, c, _, f, la in judged]), strict=True):
        out.add("token.new_client_token_per_call", who, first_ex, distinct, last=last_ex,
                detail=f"{distinct} client access tokens for {calls} calls")
    for who, count, first, last in _grouped(db, options, RequestLog.token_kind == "access",
                                            RequestLog.status == 403, RequestLog.reason == "Access token expired"):
        out.add("token.customer_token_after_expiry", who, first, count, last=last)
    # A refresh token presented again after an earlier presentation of it succeeded (it was rotated out).
    earlier = RequestLog.__table__.alias("earlier")
    reused = select(literal(1)).where(
        earlier.c.token_fingerprint == RequestLog.token_fingerprint, earlier.c.id < RequestLog.id,
        earlier.c.status == 200, earlier.c.path.in_(TOKEN_PATHS)).exists()
    for who, count, first, last in _grouped(db, options, RequestLog.path.in_(TOKEN_PATHS),
                                            RequestLog.token_kind.in_(("refresh", "client_refresh")), reused):
        out.add("token.refresh_token_reused", who, first, count, last=last)
    # Calls with a token after PG&E answered 403 "revoked" to that same token.
    revoked = (select(RequestLog.token_fingerprint.label("fp"), func.min(RequestLog.id).label("first_id"))
               .where(*_period(options), RequestLog.status == 403, RequestLog.reason.in_(REVOKED_REASONS),
                      RequestLog.token_fingerprint.is_not(None))
               .group_by(RequestLog.token_fingerprint).subquery())
    rows = db.execute(
        select(_who(), func.count(), func.min(RequestLog.id), func.max(RequestLog.id))
        .join(revoked, and_(revoked.c.fp == RequestLog.token_fingerprint, RequestLog.id > revoked.c.first_id))
        .where(*_period(options)).group_by(_who())
    ).all()
    for who, count, first, last in _with_times(db, rows):
        out.add("token.calls_after_revoked", who, first, count, last=last)


def _notification_rules(db: Session, options: ReportOptions, clients: dict[int, str], out: _Collector) -> None:
    query = select(Notification)
    if options.since is not None:
        query = query.where(Notification.created_at >= options.since)
    for note in db.execute(query.order_by(Notification.id)).scalars():
        who = clients.get(note.third_party_id)
        if options.client_id and who != options.client_id:
            continue
        for number, attempt in enumerate(note.attempts or [], start=1):
            example = Example(attempt.get("at"), ref=f"notification {note.id} attempt {number}")
            status, error = attempt.get("status"), attempt.get("error") or ""
            elapsed = attempt.get("elapsed_s")
            if error.startswith("TLS error"):
                out.add("notify.receiver_tls", who, example, detail=error[:200])
            elif error.startswith("no answer within"):
                out.add("notify.receiver_slow", who, example, detail=error)
            elif status is None or not 200 <= status < 300:
                out.add("notify.receiver_refused", who, example, detail=error[:200])
            if elapsed is not None and elapsed > options.notification_patience_s and status is not None:
                out.add("notify.receiver_slow", who, example,
                        detail=f"answered after {elapsed:.1f} s (patience {options.notification_patience_s:g} s)")


def _package_rules(db: Session, options: ReportOptions, clients: dict[int, str], out: _Collector) -> None:
    fetches: dict[str, list[tuple[int, float, float, int, str]]] = defaultdict(list)
    rows = db.execute(
        select(RequestLog.id, RequestLog.at, _real(), RequestLog.status, RequestLog.query, _who())
        .where(*_period(options), RequestLog.method == "GET", RequestLog.query.like("%correlationID=%"))
        .order_by(RequestLog.id)
    )
    for rid, at, real, status, query, who in rows:
        correlation = dict(parse_qsl(query or "")).get("correlationID")
        if correlation:
            fetches[correlation].append((rid, at, real, status, who))
    query = select(Package).where(Package.notified_at.is_not(None))
    if options.since is not None:
        query = query.where(Package.notified_at >= options.since)
    packages = {p.correlation_id: p for p in db.execute(query).scalars()}
    for correlation, package in packages.items():
        who = clients.get(package.third_party_id)
        if options.client_id and who != options.client_id:
            continue
        got = fetches.get(correlation, [])
        served = [f for f in got if 200 <= f[3] < 300]
        if not served:
            out.add("package.never_fetched", who, Example(package.notified_at, ref=f"package {correlation}"))
        late = [f for f in got if f[1] > package.notified_at + PACKAGE_TTL_S]
        if late:
            out.add("package.fetched_after_expiry", late[0][4] or who, Example(late[0][1], late[0][2], late[0][0]),
                    len(late), last=Example(late[-1][1], late[-1][2], late[-1][0]))
        if len(served) > MANY_FETCHES:
            first_fetch = Example(served[0][1], served[0][2], served[0][0])
            out.add("package.fetched_many_times", served[0][4] or who, first_fetch, len(served),
                    last=Example(served[-1][1], served[-1][2], served[-1][0]),
                    detail=f"package {correlation} fetched {len(served)} times")


def _request_shape_rules(db: Session, options: ReportOptions, daily: set[str], out: _Collector) -> None:
    """Query-string rules, the same-day rule and Bulk polling, over SQL groups of identical requests."""
    day = cast(func.floor(RequestLog.at / 86400), Integer)
    rows = db.execute(
        select(_who(), RequestLog.path, RequestLog.query, day, func.count(), func.min(RequestLog.id),
               func.max(RequestLog.id),
               func.sum(cast(and_(RequestLog.status >= 200, RequestLog.status < 300), Integer)))
        .where(*_period(options), RequestLog.method == "GET", _who().is_not(None),
               or_(RequestLog.query != "", RequestLog.path.like(f"{RESOURCE_PREFIX}Batch/Bulk/%")))
        .group_by(_who(), RequestLog.path, RequestLog.query, day)
    ).all()
    examples = {r[0]: r for r in _with_times(db, [(i, 0, r[5], r[6]) for i, r in enumerate(rows)])}
    bulk_polls: dict[str, list[tuple[int, Example, Example]]] = defaultdict(list)
    for index, (who, path, query, _, count, _, _, served) in enumerate(rows):
        _, _, first, last = examples[index]
        resource = path.startswith(RESOURCE_PREFIX) or path.startswith("/GreenButtonConnect/espi/1_1/Batch/")
        params = parse_qsl(query or "", keep_blank_values=True)
        names = {name for name, _ in params}
        if resource and "correlationID" not in names and served and served > SAME_DAY_REQUESTS and (
                "/Batch/" in path or "/UsagePoint" in path):
            out.add("data.same_day_requested_many_times", who, first, served, last=last,
                    detail=f"GET {path}{'?' + query if query else ''} {served} times in a day")
        if who in daily and "/Batch/Bulk/" in path and "correlationID" not in names:
            bulk_polls[who].append((count, first, last))
        if not params:
            continue
        bad_dates = [f"{n}={v}" for n, v in params if (n in DATE_PARAMETERS or n in ALIASES)
                     and not (ZULU.match(v) or EPOCH.match(v))]
        if bad_dates:
            out.add("request.date_form", who, first, count, last=last, detail=", ".join(bad_dates)[:200])
        aliases = sorted(n for n in names if n in ALIASES)
        if aliases:
            out.add("request.unhyphenated_alias", who, first, count, last=last, detail=", ".join(aliases))
        known = RESOURCE_PARAMETERS if resource else TOKEN_PARAMETERS if path in TOKEN_PATHS else None
        unknown = sorted(n for n in names if known is not None and n not in known and n not in ALIASES)
        if unknown:
            out.add("request.unknown_parameter", who, first, count, last=last, detail=", ".join(unknown)[:200])
    for who, polls in bulk_polls.items():
        total = sum(p[0] for p in polls)
        if total > BULK_POLLS:
            first = min((p[1] for p in polls), key=_order)
            last = max((p[2] for p in polls), key=_order)
            out.add("bulk.polled_with_daily_notifications", who, first, total, last=last)


def _tls_rules(db: Session, options: ReportOptions, out: _Collector) -> None:
    for who, count, first, last in _grouped(db, options, RequestLog.chain_length == 1):
        out.add("tls.leaf_without_chain", who, first, count, last=last)


# --- the report ------------------------------------------------------------------------------------------


def build_report(db: Session, options: ReportOptions, now: float) -> dict[str, Any]:
    """Every rule over the period; findings sorted errors first, then by client and rule."""
    third_parties = db.execute(select(ThirdParty.id, ThirdParty.client_id, ThirdParty.tax_id,
                                      ThirdParty.notify_daily)).all()
    clients = {tp_id: client_id for tp_id, client_id, _, _ in third_parties}
    vendors = {client_id: tax_id for _, client_id, tax_id, _ in third_parties}
    daily = {client_id for _, client_id, _, notify_daily in third_parties if notify_daily}
    out = _Collector()
    _pacing_pass(db, options, vendors, out)
    _client_limits(db, options, out)
    _token_rules(db, options, out)
    _notification_rules(db, options, clients, out)
    _package_rules(db, options, clients, out)
    _request_shape_rules(db, options, daily, out)
    _tls_rules(db, options, out)
    findings = sorted(out.found.values(), key=lambda f: (-SEVERITY_RANK[f.rule.severity], f.client_id or "",
                                                          [r.id for r in RULES].index(f.rule.id)))
    requests = db.execute(select(func.count(), func.min(RequestLog.at), func.max(RequestLog.at))
                          .where(*_period(options))).one()
    errors = sum(1 for f in findings if f.rule.severity == ERROR)
    return {
        "generated_at": _iso(now),
        "period": {"since": _iso(options.since), "since_id": options.since_id, "first_request_at": _iso(requests[1]),
                   "last_request_at": _iso(requests[2])},
        "client_id": options.client_id,
        "requests_examined": requests[0],
        "verdict": "fail" if errors else "pass",
        "errors": errors,
        "warnings": len(findings) - errors,
        "findings": [f.as_dict() for f in findings],
    }


def rules_table() -> list[dict[str, str]]:
    """The catalogue (id, severity, spec section, title, explanation), for docs and the console."""
    return [{"id": r.id, "severity": r.severity, "section": r.section, "title": r.title,
             "explanation": r.explanation} for r in RULES]


def exceeds(report: dict[str, Any], fail_on: str | None) -> bool:
    """Whether a report should fail a CI gate set at ``fail_on`` (error | warning | None)."""
    if fail_on is None:
        return False
    if fail_on == ERROR:
        return report["errors"] > 0
    return report["errors"] + report["warnings"] > 0


def format_text(report: dict[str, Any]) -> str:
    """A human-readable report for the terminal."""
    lines = [
        f"Integration report: would this pass at PG&E?  {report['verdict'].upper()}",
        f"{report['requests_examined']} API requests examined"
        + (f" for client {report['client_id']}" if report["client_id"] else "")
        + (f", {report['period']['first_request_at']} .. {report['period']['last_request_at']}"
           if report["period"]["first_request_at"] else ""),
        f"{report['errors']} error(s), {report['warnings']} warning(s)",
    ]
    for f in report["findings"]:
        first, last = f["first"], f["last"]

        def where(example: dict[str, Any]) -> str:
            ref = f"request {example['request_id']}" if example["request_id"] else example["ref"]
            return f"{ref} at {example['at']}"

        lines.append("")
        lines.append(f"{f['severity'].upper():7} {f['rule']}  client {f['client_id']}  x{f['count']}  "
                     f"(spec {f['section']})")
        lines.append(f"        {f['message']}")
        if f["detail"]:
            lines.append(f"        {f['detail']}")
        lines.append(f"        first: {where(first)}; last: {where(last)}")
    return "\n".join(lines)


def report_for(database: Any, settings: Any, now: float, *, client_id: str | None = None,
               since: float | None = None, since_id: int | None = None) -> dict[str, Any]:
    """The report as the CLI, the control API and the console ask for it (tunables from settings)."""
    options = ReportOptions(
        client_id=client_id or None, since=since, since_id=since_id,
        notification_patience_s=float(getattr(settings, "report_notification_patience_s", 5.0)),
        new_token_ratio=float(getattr(settings, "report_new_token_ratio", 0.8)),
    )
    with database.session() as db:
        return build_report(db, options, now)


def parse_since(text: str | None, now: float) -> float | None:
    """``since``: an instant (ISO 8601 with a zone, or epoch seconds), or a duration back from now (``2h``)."""
    from .errors import ControlError
    from .store import control

    if text is None or text.strip() == "":
        return None
    try:
        return control.parse_instant_value(text)
    except ControlError:
        pass
    try:
        return now - control.parse_duration(text)
    except ControlError:
        raise ControlError(f"since must be an instant (ISO 8601 with a zone, epoch seconds) or a duration back "
                           f"from now such as 2h (got {text!r})") from None
