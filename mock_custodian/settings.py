"""One Settings object: defaults, then ``MOCK_CUSTODIAN_*`` environment variables, then CLI flags.

Every PG&E quirk the simulator reproduces is a named field here with a faithful default, so a user
can switch it off on purpose. Each field carries a one-line ``metadata["doc"]``: the documentation's
configuration reference is generated from it (``settings_reference``), so it cannot go stale.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "MOCK_CUSTODIAN_"


@dataclass
class Settings:
    """Every field: ``field(default=..., metadata={"doc": "one line"})``; docs/configuration is generated from it."""

    # Where state lives.
    data_dir: Path = field(default=Path(".mock-custodian"), metadata={
        "doc": "State folder: database, development PKI, packages, runtime info (`server.json`)."})
    database_url: str | None = field(default=None, metadata={
        "doc": "Any SQLAlchemy URL (PostgreSQL for shared deployments; also `DATABASE_URL`); "
               "unset: SQLite `mock-custodian.db` in the data dir."})

    # Listeners: the api.pge.com role (client certificates) and the sharemydata.pge.com role (none).
    host: str = field(default="127.0.0.1", metadata={"doc": "Address both listeners bind to."})
    api_port: int = field(default=8443, metadata={
        "doc": "API listener (the api.pge.com role, client certificates); `0` picks a free port (see `server.json`)."})
    portal_port: int = field(default=8444, metadata={
        "doc": "Portal listener (the sharemydata.pge.com role, no client certificate); `0` picks a free port."})
    workers: int = field(default=2, metadata={"doc": "gunicorn worker processes."})
    threads: int = field(default=8, metadata={"doc": "Threads per gunicorn worker."})
    worker_timeout: int = field(default=60, metadata={
        "doc": "gunicorn's worker heartbeat timeout in seconds; the threaded worker keeps beating while a thread "
               "streams, so responses may take far longer."})
    san: list[str] = field(default_factory=list, metadata={
        "doc": "Extra server-certificate names (container service names, api.pge.com, ...)."})
    portal_host_names: list[str] = field(
        default_factory=lambda: ["sharemydata.pge.com", "sharemydataqa.pge.com"], metadata={
            "doc": "SNI names that make a connection on the API listener behave as the portal host (no "
                   "client-certificate request), so PG&E's host names can share one port."})

    # Public base URLs every absolute URL is built from; default: the URLs the server listens on.
    api_base_url: str | None = field(default=None, metadata={
        "doc": "Public base URL of the API host (e.g. `https://api.pge.com`); unset: the URL it listens on."})
    portal_base_url: str | None = field(default=None, metadata={
        "doc": "Public base URL of the portal host (e.g. `https://sharemydata.pge.com`); unset: the listening URL."})

    scenario: Path | None = field(default=None, metadata={
        "doc": "Scenario YAML loaded on first start and by reset; unset: the built-in demo."})

    # Mutual TLS (spec section 3).
    trusted_ca_bundle: Path | None = field(default=None, metadata={
        "doc": "Roots client certificates must chain to; unset: the dev PKI root."})
    allow_self_signed: bool = field(default=False, metadata={
        "doc": "Accept self-signed client certificates (PG&E refuses them)."})
    client_cert_header: str | None = field(default=None, metadata={
        "doc": "Header a trusted TLS-terminating proxy forwards the client certificate in (URL-escaped PEM); "
               "unset: off. Needs `client_cert_header_trusted_ips`."})
    client_cert_header_trusted_ips: list[str] = field(default_factory=list, metadata={
        "doc": "Addresses or networks of the proxy whose `client_cert_header` is believed (required with the "
               "header; from any other address only the TLS certificate counts)."})

    # OAuth lifetimes (spec 4.12) and token-response shape (spec 4.9, section 9).
    client_token_ttl: int = field(default=3600, metadata={
        "doc": "Client access token lifetime in seconds (PG&E also once said 300)."})
    access_token_ttl: int = field(default=3600, metadata={"doc": "Customer access token lifetime in seconds."})
    refresh_token_ttl: int = field(default=31536000, metadata={"doc": "Refresh token lifetime in seconds."})
    client_refresh_token_in_response: bool = field(default=True, metadata={
        "doc": "Include `refresh_token` in the client-credentials response."})
    client_token_scope: str = field(default="3", metadata={"doc": "`scope` of the client-credentials response."})
    token_format: str = field(default="json", metadata={
        "doc": "Token response format: `json`, or `xml` for PG&E's documented `<Response>` shape."})
    code_ttl: int = field(default=600, metadata={
        "doc": "Authorization-code lifetime in seconds (single use either way; spec 4.5)."})
    redirect_code_param: str = field(default="both", metadata={
        "doc": "Name of the code in the consent and test-harness redirects: `both` (PG&E's `authorization_code` "
               "plus RFC 6749's `code`, which production clients read), `authorization_code` (PG&E's documents) "
               "or `code`."})
    raw_scope_in_redirect: bool = field(default=False, metadata={
        "doc": "Put the scope string into the redirect unescaped, as PG&E's examples print it."})
    token_scope_prefix: bool = field(default=True, metadata={
        "doc": "Token responses' `scope` starts with a literal `scope=` (PG&E's examples; section 9 item 9)."})
    refresh_includes_customer_uri: bool = field(default=False, metadata={
        "doc": "Repeat `customerResourceURI` in the refresh response (PG&E's example omits it; section 9 item 10)."})
    resource_uri_style: str = field(default="plain", metadata={
        "doc": "`resourceURI` form: `plain` (`.../Subscription/{id}`) or `batch` (`.../Batch/Subscription/{id}`)."})
    scope_custodian_key: str = field(default="dataCustodianId", metadata={
        "doc": "Scope-string spelling of the custodian key: `dataCustodianId` or `DataCustodianID` "
               "(section 9 item 12)."})
    scope_block_duration_value: str = field(default="Daily", metadata={
        "doc": "Scope-string spelling of the block duration: `Daily` or `daily` (section 9 item 12)."})
    honor_auth_end_date_hints: bool = field(default=True, metadata={
        "doc": "Honour `MinAuthEndDate` / `PreferredAuthEndDate` in `/myAuthorization`'s scope (spec 4.2)."})
    end_date_edit: str = field(default="any", metadata={
        "doc": "Customer end-date edits: `any` (any future date or Indefinite) or `extend_only`."})
    allow_group_edit: bool = field(default=False, metadata={
        "doc": "Let the customer change data groups in place (PG&E's developer contract: cancel and re-create)."})
    authorize_aliases: bool = field(default=True, metadata={
        "doc": "Serve the alias entry points `/#MyAuthorization/` and `/myAuthorization/?clientId=...` (spec 4.2)."})

    # Rate limits (spec 6.7), counted by certificate owner and vendor (Tax ID): the per-second vendor
    # bucket on real time, the hourly and daily windows on the simulated clock.
    rate_limits_enabled: bool = field(default=True, metadata={
        "doc": "Enforce PG&E's rate limits (test servers started by the plugin turn them off)."})
    rate_limit_profile: str = field(default="production", metadata={"doc": (
        "`production`: token-endpoint calls skip the per-second vendor bucket (they still count per hour and "
        "day); `strict`: the documents' literal reading, every call counted, bucket depth 1.")})
    rate_limit_vendor_per_second: float = field(default=1.0, metadata={
        "doc": "Requests per second per vendor (every client_id under one Tax ID), a token bucket on real time."})
    rate_limit_vendor_burst: int = field(default=2, metadata={
        "doc": "Token-bucket depth for data calls in the `production` profile (`strict` uses 1)."})
    rate_limit_client_per_hour: int = field(default=2000, metadata={
        "doc": "Requests per rolling hour per client_id."})
    rate_limit_client_per_day: int = field(default=20000, metadata={"doc": "Requests per day per client_id."})
    rate_limit_day_reset_hour: int = field(default=17, metadata={
        "doc": "Local (Pacific) hour at which the daily count restarts."})

    # Data requests (spec 6.1, 7.1, 7.6, 7.13).
    default_window: str = field(default="T-1", metadata={
        "doc": "Window when no `published-*`/`updated-*` is given: `T-1` (the previous local day) or `T-2`."})
    strict_dates: bool = field(default=False, metadata={
        "doc": "Accept only Zulu date-times in windows (what PG&E's documentation promises)."})
    lenient_dates: bool = field(default=False, metadata={
        "doc": "Also accept numeric UTC offsets and fractional seconds in windows."})
    accept_unhyphenated_dates: bool = field(default=True, metadata={
        "doc": "Accept `publishedmin` / `publishedmax` as aliases (the hyphenated form wins)."})
    publish_time_local: str = field(default="06:00", metadata={
        "doc": "Local time (HH:MM) at which day D's interval data appears on D+1."})
    mv90_extra_delay_days: int = field(default=2, metadata={"doc": "MV90 meters publish this many days later."})
    dst_block_duration: str = field(default="actual", metadata={
        "doc": "IntervalBlock duration on DST-change days: `actual` (23 or 25 hours) or `86400`."})
    xml_style: str = field(default="pge", metadata={
        "doc": "XML serialisation: `pge` (ns0/ns1 prefixes, xsi:type, re-declarations) or `plain`."})

    service_status: int = field(default=1, metadata={
        "doc": "Simulated service status (spec 5.4): `1` available, `0` maintenance (data endpoints answer 503)."})

    # Asynchronous Batch requests and notifications (spec 6.4-6.6; jobs/).
    async_delay_s: float = field(default=15.0, metadata={
        "doc": "Simulated seconds between an asynchronous request's 202 and its package and notification "
               "(PG&E: typically 10-40 s; tests: 0)."})
    package_ttl_days: float = field(default=5.0, metadata={
        "doc": "A package is retrievable this many days after its notification (then 404)."})
    package_max_subscriptions: int = field(default=100, metadata={
        "doc": "A request over this many subscriptions is split into several packages."})
    cca_legacy_path: bool = field(default=True, metadata={
        "doc": "Serve the CCA's BulkRetailCustomerInfo path without `/resource/` (section 9 item 16)."})
    bulk_retrieval_token: str = field(default="cat", metadata={
        "doc": "Token class that retrieves Bulk packages: `cat`, or `either` (CAT or the third party's AT; "
               "section 9 item 11)."})
    notify_verify_tls: bool = field(default=True, metadata={
        "doc": "Verify the receiver's server certificate on notification POSTs; `false` only on purpose."})
    notify_trust_bundle: Path | None = field(default=None, metadata={
        "doc": "Roots the notification receiver's certificate must chain to; unset: the dev CA."})
    notify_client_cert: bool = field(default=True, metadata={
        "doc": "Present the data custodian's client certificate (`certs/data-custodian/`) on notification POSTs."})
    notify_timeout_s: float = field(default=10.0, metadata={
        "doc": "Seconds one notification POST may take; a timeout counts as a failed attempt."})
    notify_retry_minutes: list[float] = field(default_factory=lambda: [1.0, 5.0, 15.0], metadata={
        "doc": "Simulated minutes after each failed notification attempt before the next; after the last, `failed`."})
    notify_on_tp_revoke: bool = field(default=False, metadata={
        "doc": "Notify the third party of its own revocation (DELETE Authorization or portal); PG&E sends none."})
    daily_package_time: str = field(default="07:00", metadata={
        "doc": "Local (Pacific) time (HH:MM) of the daily packages for \"Notify me as data is ready (Daily)\"."})
    job_worker: bool = field(default=True, metadata={
        "doc": "Run the job worker (packages, notifications) next to the gunicorn arbiter; `false` when separate "
               "`mock-custodian worker` processes do it."})
    job_worker_processes: int = field(default=1, metadata={
        "doc": "Job worker processes `serve` keeps running: a large request's packages build in parallel."})
    notify_concurrency: int = field(default=8, metadata={
        "doc": "Notification POSTs a job worker sends at once (one at a time per destination)."})

    # Test-double control surface under /__sim/ (spec 1.4; not PG&E).
    control_token: str | None = field(default=None, metadata={
        "doc": "Token every control call presents (`X-Control-Token`); unset: a fresh one per start, printed and "
               "written to `server.json`."})
    control_api: bool = field(default=True, metadata={
        "doc": "Serve the control API; `false` leaves only `/__sim/health` (e.g. a public demo)."})
    request_log_max_rows: int = field(default=1_000_000, metadata={
        "doc": "Rows the request log keeps (the newest; older ones are dropped as requests arrive); 0 keeps all."})

    # Third Party Portal (spec 5.1-5.2).
    auto_accept: bool = field(default=True, metadata={
        "doc": "Accept a registration as soon as its e-mail link is used (PG&E: after a review); `false` waits "
               "for `mock-custodian third-party accept`."})
    review_delay: int = field(default=0, metadata={
        "doc": "Seconds between e-mail confirmation and automatic acceptance, to mimic PG&E's review."})
    cert_activation_delay: int = field(default=0, metadata={
        "doc": "Seconds before an uploaded replacement certificate takes over (spec 3.5; PG&E: \"several days\")."})
    client_auth_eku_policy: str = field(default="warn", metadata={
        "doc": "A certificate without the clientAuth extended key usage: `warn` (accept with a warning) or "
               "`refuse`."})
    harness_target: str = field(default="portal_uri", metadata={
        "doc": "OAuth Test Start redirects to `portal_uri` (Third Party Portal URI, falling back to the OAuth URL) "
               "or `oauth_url` (the legacy OAuth URL first)."})
    harness_thirdpartyid_value: str = field(default="PGE", metadata={
        "doc": "Value of `ThirdPartyID` in the OAuth Test Start redirect: `PGE` or `client_id`."})
    appinfo_auth: str = field(default="bearer_rat", metadata={
        "doc": "ApplicationInformation credential: `bearer_rat` or `bearer_rat_or_basic` (section 9 item 15)."})
    appinfo_issued_at_unit: str = field(default="ms", metadata={
        "doc": "Unit of `client_id_issued_at` in ApplicationInformation: `ms` or `s` (section 9 item 22)."})

    # Integration report (mock_custodian/domain/report.py): judgements that are PG&E's guesses, not its rules.
    report_notification_patience_s: float = field(default=5.0, metadata={
        "doc": "seconds a notification receiver may take to answer before the report calls it slow"})
    report_new_token_ratio: float = field(default=0.8, metadata={
        "doc": "distinct client access tokens per call above which the report warns of a token per call"})

    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir() / 'mock-custodian.db'}"

    def resolved_api_base_url(self) -> str:
        return (self.api_base_url or f"https://{_url_host(self.host)}:{self.api_port}").rstrip("/")

    def resolved_portal_base_url(self) -> str:
        return (self.portal_base_url or f"https://{_url_host(self.host)}:{self.portal_port}").rstrip("/")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, Path):
                out[key] = str(value)
        return out


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _coerce(kind: Any, raw: str, name: str) -> Any:
    text = str(kind)
    if "bool" in text:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: expected true/false, got {raw!r}")
    if "list" in text:
        return [item.strip() for item in raw.split(",") if item.strip()]
    if "Path" in text:
        return Path(raw)
    if "float" in text and "str" not in text:
        try:
            return float(raw)
        except ValueError as exc:
            raise ValueError(f"{name}: expected a number, got {raw!r}") from exc
    if "int" in text and "str" not in text:
        try:
            return int(raw)
        except ValueError as exc:
            raise ValueError(f"{name}: expected an integer, got {raw!r}") from exc
    return raw


def field_names() -> list[str]:
    return [f.name for f in fields(Settings)]


def load_settings(overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Defaults < environment < explicit overrides (CLI flags); ``None`` overrides are ignored."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        key = ENV_PREFIX + f.name.upper()
        if key in env:
            values[f.name] = _coerce(f.type, env[key], key)
    # Conventional names for the two most common ones.
    if "database_url" not in values and env.get("DATABASE_URL"):
        values["database_url"] = env["DATABASE_URL"]
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in field_names():
            raise ValueError(f"unknown setting {name!r}")
        values[name] = value
    return Settings(**values)
