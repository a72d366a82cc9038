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
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from mock_custodian.domain.ratelimit import day_window_start
from mock_custodian.store.models import Notification, Package, RequestLog, ThirdParty, Token
from mock_custodian.vocabulary import RESOURCE_PREFIX, TOKEN_PATHS

ERROR, WARNING = "error", "warning"
SEVERITY_RANK = {WARNING: 1, ERROR: 2}

RESOURCE_PATH = RESOURCE_PREFIX + "/"

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


# --- the period every rule looks at ----------------------------------------------------------------------


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


class _Tally:
    """Occurrences per (rule, client) met in id order: a count, the first and the latest example."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str | None], list[Any]] = {}

    def add(self, rule_id: str, who: str | None, rid: int, at: float, real: float) -> None:
        entry = self.seen.get((rule_id, who))
        if entry is None:
            self.seen[(rule_id, who)] = [1, rid, at, real, rid, at, real]
        else:
            entry[0] += 1
            entry[4], entry[5], entry[6] = rid, at, real

    def flush(self, out: _Collector) -> None:
        for (rule_id, who), (count, rid0, at0, real0, rid1, at1, real1) in self.seen.items():
            out.add(rule_id, who, Example(at0, real0, rid0), count, last=Example(at1, real1, rid1))


@dataclass(frozen=True)
class _Shape:
    """What a query string says, worked out once per distinct (path, query)."""

    bad_dates: str
    aliases: str
    unknown: str
    correlation: str | None


def _shape(path: str, query: str) -> _Shape:
    params = parse_qsl(query, keep_blank_values=True)
    names = {name for name, _ in params}
    resource = path.startswith(RESOURCE_PATH) or path.startswith("/GreenButtonConnect/espi/1_1/Batch/")
    known = RESOURCE_PARAMETERS if resource else TOKEN_PARAMETERS if path in TOKEN_PATHS else None
    return _Shape(
        bad_dates=", ".join(f"{n}={v}" for n, v in params if (n in DATE_PARAMETERS or n in ALIASES)
                            and not (ZULU.match(v) or EPOCH.match(v)))[:200],
        aliases=", ".join(sorted(n for n in names if n in ALIASES)),
        unknown=", ".join(sorted(n for n in names if known is not None and n not in known and n not in ALIASES))[:200],
        correlation=dict(params).get("correlationID") or None,
    )


@dataclass
class _Counts:
    """Per-client counts the pass keeps: requests per wall-clock minute, and rows meeting a condition."""

    requests: int = 0
    first_at: float | None = None
    last_at: float | None = None
    minutes: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))  # [minute, n, first, last]
    conditional: dict[tuple[str, str], list[Any]] = field(default_factory=dict)  # (rule, who) -> n, first, last


# Conditions the pass reads as bits of one SQL expression.
CONDITIONS = ((1, "client_access_calls"), (2, "token.customer_token_after_expiry"), (4, "tls.leaf_without_chain"))


@dataclass
class _Pass:
    """What the streamed pass hands on to the rules that finish after it."""

    fetches: dict[str, list[tuple[int, float, float, int, str]]] = field(default_factory=lambda: defaultdict(list))
    same_day: dict[tuple[str, str, str, int], list[Any]] = field(default_factory=dict)
    bulk_polls: dict[str, list[Any]] = field(default_factory=dict)
    counts: _Counts = field(default_factory=lambda: _Counts())


def _streamed_pass(db: Session, options: ReportOptions, vendors: dict[str, str], daily: set[str],
                   out: _Collector) -> _Pass:
    """The one full scan, in id order, for the rules that are sequential by nature or read the query string.

    Two GCRA models per vendor (production pacing, the literal reading), Retry-After deadlines, back-off
    after 5xx, and, per distinct query string, date forms, aliases, unknown parameters; requests per
    client and wall-clock minute (hour and day limits), rows meeting the conditions SQL computed
    (``CONDITIONS``), repeated data requests, Bulk polling and package fetches are counted on the way.
    """
    interval = 1.0 / VENDOR_PER_SECOND
    production_tolerance, literal_tolerance = interval * PRODUCTION_DEPTH, interval * LITERAL_DEPTH
    tat_production: dict[str, float] = {}
    tat_literal: dict[str, float] = {}
    retry_until: dict[str, float] = {}
    failed_at: dict[str, float] = {}
    shapes: dict[tuple[str, str], _Shape] = {}
    tally, shaped = _Tally(), _Tally()
    result = _Pass()
    token_paths = frozenset(TOKEN_PATHS)
    flags = (case((and_(RequestLog.token_kind == "client_access", RequestLog.path.not_in(TOKEN_PATHS)), 1), else_=0)
             + case((and_(RequestLog.token_kind == "access", RequestLog.status == 403,
                          RequestLog.reason == "Access token expired"), 2), else_=0)
             + case((RequestLog.chain_length == 1, 4), else_=0))
    query = (select(RequestLog.id, _who(), RequestLog.at, _real(), RequestLog.method, RequestLog.path,
                    RequestLog.query, RequestLog.status, RequestLog.retry_after, flags)
             .where(*_period(options)).order_by(RequestLog.id))
    rows = db.connection().execution_options(yield_per=20000).execute(query)
    counts = result.counts
    current: dict[str, list[Any]] = {}  # who -> the minute bucket being filled
    for rid, who, at, real, method, path, text, status, retry_after, flag in rows:
        counts.requests += 1
        if counts.first_at is None or at < counts.first_at:
            counts.first_at = at
        if counts.last_at is None or at > counts.last_at:
            counts.last_at = at
        if who is None:
            continue
        minute = int(real // 60)
        bucket = current.get(who)
        if bucket is not None and bucket[0] == minute:
            bucket[1] += 1
            bucket[3] = rid
        else:
            bucket = current[who] = [minute, 1, rid, rid]
            counts.minutes[who].append(bucket)
        if flag:
            for bit, name in CONDITIONS:
                if flag & bit:
                    entry = counts.conditional.get((name, who))
                    if entry is None:
                        counts.conditional[(name, who)] = [1, rid, rid]
                    else:
                        entry[0] += 1
                        entry[2] = rid
        vendor = vendors.get(who)
        if vendor is None:
            continue  # not a registered client_id: the certificate check refused it before any limit
        # The documents' literal reading: every call, depth 1. Production: data calls only, depth 2.
        tat = tat_literal.get(vendor, 0.0)
        after = (tat if tat > real else real) + interval
        literal_ok = after - real <= literal_tolerance
        if literal_ok:
            tat_literal[vendor] = after
        if path in token_paths:
            production_ok = True
        else:
            tat = tat_production.get(vendor, 0.0)
            after = (tat if tat > real else real) + interval
            production_ok = after - real <= production_tolerance
            if production_ok:
                tat_production[vendor] = after
        if not production_ok:
            tally.add("rate.vendor_per_second", who, rid, at, real)
        elif not literal_ok:
            tally.add("rate.literal_per_second", who, rid, at, real)
        # Retry-After and back-off are judged on the call that follows an answer.
        if retry_until:
            deadline = retry_until.get(who)
            if deadline is not None:
                if real < deadline:
                    tally.add("rate.retry_before_retry_after", who, rid, at, real)
                else:
                    del retry_until[who]
        if failed_at:
            failed = failed_at.pop(who, None)
            if failed is not None and real - failed < MIN_BACKOFF_S:
                tally.add("rate.no_backoff_after_5xx", who, rid, at, real)
        if retry_after is not None and status in (429, 503):
            retry_until[who] = real + retry_after
        elif status == 0 or status >= 500:
            failed_at[who] = real
        if method != "GET":
            continue
        shape = None
        if text:
            shape = shapes.get((path, text))
            if shape is None:
                shape = shapes[(path, text)] = _shape(path, text)
            if shape.bad_dates:
                shaped.add(f"request.date_form\0{shape.bad_dates}", who, rid, at, real)
            if shape.aliases:
                shaped.add(f"request.unhyphenated_alias\0{shape.aliases}", who, rid, at, real)
            if shape.unknown:
                shaped.add(f"request.unknown_parameter\0{shape.unknown}", who, rid, at, real)
            if shape.correlation:
                result.fetches[shape.correlation].append((rid, at, real, status, who))
                continue
        if "/Batch/Bulk/" in path and who in daily:
            entry = result.bulk_polls.get(who)
            if entry is None:
                result.bulk_polls[who] = [1, rid, at, real, rid, at, real]
            else:
                entry[0] += 1
                entry[4:] = rid, at, real
        if 200 <= status < 300 and ("/Batch/" in path or "/UsagePoint" in path) and path.startswith(
                RESOURCE_PATH):
            key = (who, path, text, int(at // 86400))
            entry = result.same_day.get(key)
            if entry is None:
                result.same_day[key] = [1, rid, at, real, rid, at, real]
            else:
                entry[0] += 1
                entry[4:] = rid, at, real
    tally.flush(out)
    for (marked, who), (count, rid0, at0, real0, rid1, at1, real1) in shaped.seen.items():
        rule_id, _, detail = marked.partition("\0")
        out.add(rule_id, who, Example(at0, real0, rid0), count, last=Example(at1, real1, rid1), detail=detail)
    return result


def _finish_streamed(result: _Pass, out: _Collector) -> None:
    for (who, path, text, _), (count, rid0, at0, real0, rid1, at1, real1) in result.same_day.items():
        if count > SAME_DAY_REQUESTS:
            out.add("data.same_day_requested_many_times", who, Example(at0, real0, rid0), count,
                    last=Example(at1, real1, rid1), detail=f"GET {path}{'?' + text if text else ''} {count} times "
                    "in a day")
    for who, (count, rid0, at0, real0, rid1, at1, real1) in result.bulk_polls.items():
        if count > BULK_POLLS:
            out.add("bulk.polled_with_daily_notifications", who, Example(at0, real0, rid0), count,
                    last=Example(at1, real1, rid1))


def _examples(db: Session, ids: set[int]) -> dict[int, Example]:
    """Request-log ids as examples with their simulated and wall-clock times."""
    out: dict[int, Example] = {}
    wanted = sorted(i for i in ids if i is not None)
    for chunk in range(0, len(wanted), 500):
        for rid, at, real in db.execute(select(RequestLog.id, RequestLog.at, _real())
                                        .where(RequestLog.id.in_(wanted[chunk:chunk + 500]))):
            out[rid] = Example(at, real, rid)
    return out


def _client_limits(counts: _Counts, vendors: dict[str, str]) -> list[tuple[str, str, int, int, int]]:
    """2,000 per rolling hour and 20,000 per day (17:00 Pacific) per client_id: (rule, who, count, first, last)."""
    found = []
    for who, minutes in counts.minutes.items():
        if who not in vendors:
            continue
        minutes.sort(key=lambda bucket: bucket[0])
        window: list[tuple[int, int]] = []  # (minute, admitted) within the last hour
        admitted_in_hour = 0
        refused = [0, None, None]
        days: dict[float, list[Any]] = defaultdict(list)
        for m, count, first_id, last_id in minutes:
            while window and window[0][0] <= m - 60:
                admitted_in_hour -= window.pop(0)[1]
            admitted = min(count, max(0, CLIENT_PER_HOUR - admitted_in_hour))
            window.append((m, admitted))
            admitted_in_hour += admitted
            if admitted < count:
                refused[0] += count - admitted
                refused[1] = refused[1] or first_id
                refused[2] = last_id
            days[day_window_start(m * 60.0, DAY_RESET_HOUR)].append((count, first_id, last_id))
        if refused[0]:
            found.append(("rate.client_per_hour", who, refused[0], refused[1], refused[2]))
        for parts in days.values():
            total = sum(p[0] for p in parts)
            if total > CLIENT_PER_DAY:
                running, crossing = 0, parts[-1]
                for part in parts:  # the calls over the limit are the day's last: from the minute it was crossed
                    running += part[0]
                    if running > CLIENT_PER_DAY:
                        crossing = part
                        break
                found.append(("rate.client_per_day", who, total - CLIENT_PER_DAY, crossing[1], parts[-1][2]))
    return found


def _counted_rules(db: Session, options: ReportOptions, counts: _Counts, vendors: dict[str, str],
                   clients: dict[int, str], out: _Collector) -> None:
    """Rules answered by the grouped scan: hour/day limits, expired customer tokens, chains, token reuse."""
    pending = _client_limits(counts, vendors)
    for (name, who), (n, first, last) in counts.conditional.items():
        if name != "client_access_calls":
            pending.append((name, who, n, first, last))
    issued = _client_tokens_issued(db, options, counts, clients)
    reuse = []
    for (name, who), (calls, first, last) in counts.conditional.items():
        tokens = issued.get(who, 0)
        if name == "client_access_calls" and calls >= NEW_TOKEN_MIN_CALLS and tokens / calls >= options.new_token_ratio:
            reuse.append((who, tokens, calls, first, last))
    examples = _examples(db, {p[3] for p in pending} | {p[4] for p in pending} | {r[3] for r in reuse}
                         | {r[4] for r in reuse})
    for name, who, n, first, last in pending:
        out.add(name, who, examples[first], n, last=examples[last])
    for who, tokens, calls, first, last in reuse:
        out.add("token.new_client_token_per_call", who, examples[first], tokens, last=examples[last],
                detail=f"{tokens} client access tokens for {calls} calls")


def _client_tokens_issued(db: Session, options: ReportOptions, counts: _Counts,
                          clients: dict[int, str]) -> dict[str, int]:
    """Client access tokens issued per client over the period (the tokens table, simulated time)."""
    since = options.since
    if options.since_id is not None and counts.first_at is not None:
        since = max(since or counts.first_at, counts.first_at)
    query = select(Token.third_party_id, func.count()).where(Token.kind == "client_access")
    if since is not None:
        query = query.where(Token.issued_at >= since)
    return {clients.get(tp_id): n for tp_id, n in db.execute(query.group_by(Token.third_party_id))}


def _indexed_rules(db: Session, options: ReportOptions, out: _Collector) -> None:
    """Rules that start from a few refused answers (the status index): refresh reuse, calls after revocation."""
    earlier = RequestLog.__table__.alias("earlier")
    reused = select(literal(1)).where(
        earlier.c.token_fingerprint == RequestLog.token_fingerprint, earlier.c.id < RequestLog.id,
        earlier.c.status == 200, earlier.c.path.in_(TOKEN_PATHS)).exists()
    rows = db.execute(
        select(_who(), func.count(), func.min(RequestLog.id), func.max(RequestLog.id))
        .where(*_period(options), RequestLog.status == 400, RequestLog.path.in_(TOKEN_PATHS),
               RequestLog.token_kind.in_(("refresh", "client_refresh")), reused)
        .group_by(_who())
    ).all()
    revoked = (select(RequestLog.token_fingerprint.label("fp"), func.min(RequestLog.id).label("first_id"))
               .where(*_period(options), RequestLog.status == 403, RequestLog.reason.in_(REVOKED_REASONS),
                      RequestLog.token_fingerprint.is_not(None))
               .group_by(RequestLog.token_fingerprint).subquery())
    after = db.execute(
        select(_who(), func.count(), func.min(RequestLog.id), func.max(RequestLog.id))
        .join(revoked, and_(revoked.c.fp == RequestLog.token_fingerprint, RequestLog.id > revoked.c.first_id))
        .where(*_period(options)).group_by(_who())
    ).all()
    examples = _examples(db, {r[2] for r in [*rows, *after]} | {r[3] for r in [*rows, *after]})
    for name, found in (("token.refresh_token_reused", rows), ("token.calls_after_revoked", after)):
        for who, count, first, last in found:
            out.add(name, who, examples[first], count, last=examples[last])


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


def _package_rules(db: Session, options: ReportOptions, fetches: dict[str, list[Any]], clients: dict[int, str],
                   out: _Collector) -> None:
    query = select(Package).where(Package.notified_at.is_not(None))
    if options.since is not None:
        query = query.where(Package.notified_at >= options.since)
    for package in db.execute(query).scalars():
        who = clients.get(package.third_party_id)
        if options.client_id and who != options.client_id:
            continue
        correlation = package.correlation_id
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


# --- the report ------------------------------------------------------------------------------------------


def build_report(db: Session, options: ReportOptions, now: float) -> dict[str, Any]:
    """Every rule over the period; findings sorted errors first, then by client and rule."""
    third_parties = db.execute(select(ThirdParty.id, ThirdParty.client_id, ThirdParty.tax_id,
                                      ThirdParty.notify_daily)).all()
    clients = {tp_id: client_id for tp_id, client_id, _, _ in third_parties}
    vendors = {client_id: tax_id for _, client_id, tax_id, _ in third_parties}
    daily = {client_id for _, client_id, _, notify_daily in third_parties if notify_daily}
    out = _Collector()
    streamed = _streamed_pass(db, options, vendors, daily, out)
    _finish_streamed(streamed, out)
    counts = streamed.counts
    _counted_rules(db, options, counts, vendors, clients, out)
    _indexed_rules(db, options, out)
    _notification_rules(db, options, clients, out)
    _package_rules(db, options, streamed.fetches, clients, out)
    order = {rule.id: index for index, rule in enumerate(RULES)}
    findings = sorted(out.found.values(), key=lambda f: (-SEVERITY_RANK[f.rule.severity], f.client_id or "",
                                                          order[f.rule.id]))
    errors = sum(1 for f in findings if f.rule.severity == ERROR)
    return {
        "generated_at": _iso(now),
        "period": {"since": _iso(options.since), "since_id": options.since_id,
                   "first_request_at": _iso(counts.first_at), "last_request_at": _iso(counts.last_at)},
        "client_id": options.client_id,
        "requests_examined": counts.requests,
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
    from mock_custodian.domain import control
    from mock_custodian.errors import ControlError

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
