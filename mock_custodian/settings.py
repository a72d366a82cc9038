"""One Settings object: defaults, then ``MOCK_CUSTODIAN_*`` environment variables, then CLI flags.

Every PG&E quirk the simulator reproduces is a named field here with a faithful default, so a user
can switch it off on purpose and the README can list it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "MOCK_CUSTODIAN_"


@dataclass
class Settings:
    # Where state lives.
    data_dir: Path = Path(".mock-custodian")
    database_url: str | None = None  # default: sqlite:///<data_dir>/mock-custodian.db

    # Listeners: the api.pge.com role (client certificates) and the sharemydata.pge.com role (none).
    host: str = "127.0.0.1"
    api_port: int = 8443
    portal_port: int = 8444
    workers: int = 2
    threads: int = 8
    # gunicorn's worker heartbeat timeout; the threaded worker keeps beating while a thread streams,
    # so responses may take far longer than this.
    worker_timeout: int = 60
    # Extra names for the server certificate (container service names, api.pge.com ...).
    san: list[str] = field(default_factory=list)
    # SNI names that make a connection on the API listener behave as the portal host
    # (no client-certificate request): for setups that map PG&E's host names to one port.
    portal_host_names: list[str] = field(
        default_factory=lambda: ["sharemydata.pge.com", "sharemydataqa.pge.com"]
    )

    # Public base URLs every absolute URL is built from; default: the URLs the server listens on.
    api_base_url: str | None = None
    portal_base_url: str | None = None

    # Scenario loaded on first start (and by reset); default: the built-in demo.
    scenario: Path | None = None

    # Mutual TLS (spec section 3).
    trusted_ca_bundle: Path | None = None  # default: the dev PKI root
    allow_self_signed: bool = False
    # Accept the client certificate from a trusted reverse proxy's header (off unless a name is set).
    client_cert_header: str | None = None
    client_cert_header_trusted_ips: list[str] = field(default_factory=lambda: ["127.0.0.1", "::1"])

    # OAuth lifetimes (spec 4.12) and token-response shape (spec 4.9, section 9).
    client_token_ttl: int = 3600
    access_token_ttl: int = 3600
    refresh_token_ttl: int = 31536000
    client_refresh_token_in_response: bool = True
    client_token_scope: str = "3"
    token_format: str = "json"  # json | xml
    # Authorization-code lifetime (spec 4.5): 600 s, single use.
    code_ttl: int = 600
    # Customer authorization (spec 4, section 9). Name of the code parameter in the success redirect:
    # authorization_code (PG&E) | both (adds RFC 6749's code) | code.
    redirect_code_param: str = "authorization_code"
    # Put the scope string into the redirect unescaped, as PG&E's examples print it.
    raw_scope_in_redirect: bool = False
    # Token responses carry the scope value with a literal "scope=" prefix (section 9 item 9).
    token_scope_prefix: bool = True
    # The refresh response repeats customerResourceURI (section 9 item 10; PG&E's example omits it).
    refresh_includes_customer_uri: bool = False
    # resourceURI form: plain (.../Subscription/{id}) | batch (.../Batch/Subscription/{id}).
    resource_uri_style: str = "plain"
    # Scope-string spellings (section 9 item 12): dataCustodianId | DataCustodianID; Daily | daily.
    scope_custodian_key: str = "dataCustodianId"
    scope_block_duration_value: str = "Daily"
    # Honour MinAuthEndDate / PreferredAuthEndDate in /myAuthorization's scope parameter (spec 4.2).
    honor_auth_end_date_hints: bool = True
    # Customer end-date edits: any (any future date or Indefinite) | extend_only.
    end_date_edit: str = "any"
    # Let the customer change data groups in place (PG&E's developer contract: cancel and re-create).
    allow_group_edit: bool = False
    # Serve the alias entry points /#MyAuthorization/ and /myAuthorization/?clientId=... (spec 4.2).
    authorize_aliases: bool = True

    # Rate limits (spec 6.7), counted on the simulated clock by certificate owner and vendor (Tax ID).
    rate_limits_enabled: bool = True
    rate_limit_vendor_per_second: float = 1.0
    rate_limit_vendor_burst: int = 2  # token-bucket depth: a token call and a data call may come together
    rate_limit_client_per_hour: int = 2000
    rate_limit_client_per_day: int = 20000
    rate_limit_day_reset_hour: int = 17  # local (Pacific) hour at which the daily count restarts

    # Data requests (spec 6.1, 7.1, 7.6, 7.13).
    default_window: str = "T-1"  # T-1 | T-2: the window when no published-*/updated-* is given
    strict_dates: bool = False  # Zulu only (what PG&E's documentation promises)
    lenient_dates: bool = False  # also numeric offsets and fractional seconds
    accept_unhyphenated_dates: bool = True  # publishedmin / publishedmax aliases
    publish_time_local: str = "06:00"  # day D's interval data appears at this local time on D+1
    mv90_extra_delay_days: int = 2  # MV90 meters publish this many days later
    dst_block_duration: str = "actual"  # actual | 86400: IntervalBlock duration on DST-change days
    xml_style: str = "pge"  # pge (ns0/ns1 prefixes, xsi:type, re-declarations) | plain

    # Simulated service status (spec 5.4): 1 available, 0 maintenance.
    service_status: int = 1

    # Asynchronous Batch requests and notifications (spec 6.4-6.6; jobs/). Seconds of simulated time
    # between a 202 and the package being built and notified (PG&E: typically 10-40 s; tests: 0).
    async_delay_s: float = 15.0
    package_ttl_days: float = 5.0  # a package is retrievable this long after its notification
    package_max_subscriptions: int = 100  # a larger request is split into several packages
    # Serve the CCA's BulkRetailCustomerInfo path without /resource/ (section 9 item 16).
    cca_legacy_path: bool = True
    # Token class that retrieves Bulk packages (section 9 item 11): cat | either (CAT or the TP's AT).
    bulk_retrieval_token: str = "cat"
    # Outbound notification POSTs (spec 3.7): verify the receiver's certificate against this bundle
    # (default: the dev CA); false turns verification off, on purpose only. Present the data
    # custodian's client certificate (certs/data-custodian/).
    notify_verify_tls: bool = True
    notify_trust_bundle: Path | None = None
    notify_client_cert: bool = True
    notify_timeout_s: float = 10.0  # per POST; a timeout counts as a failed attempt
    # Minutes of simulated time after each failed attempt before the next; after the last, "failed".
    notify_retry_minutes: list[float] = field(default_factory=lambda: [1.0, 5.0, 15.0])
    # Notify the third party of its own revocation (DELETE Authorization or portal); PG&E: none.
    notify_on_tp_revoke: bool = False
    # Local (Pacific) time at which daily packages are built for "Notify me as data is ready" (HH:MM).
    daily_package_time: str = "07:00"
    # Run the job worker (builds packages, sends notifications) as a process next to the gunicorn
    # arbiter; false when separate `mock-custodian worker` processes do it.
    job_worker: bool = True
    job_worker_processes: int = field(default=1, metadata={
        "doc": "job worker processes `serve` keeps running: a large request's packages build in parallel"})
    notify_concurrency: int = field(default=8, metadata={
        "doc": "notification POSTs a job worker sends at once (one at a time per destination)"})

    # Test-double control surface under /__sim/ (spec 1.4; not PG&E). The token every control call
    # presents (X-Control-Token); unset: a fresh one per start, printed and written to server.json.
    control_token: str | None = None
    # Serve the control API at all; false leaves only /__sim/health (an explicit opt-out, e.g. demos).
    control_api: bool = True

    # Third Party Portal (spec 5.1-5.2). Accept a registration as soon as its e-mail link is used
    # (PG&E: after a review); false leaves it In Review until `mock-custodian third-party accept`.
    auto_accept: bool = True
    # Seconds between e-mail confirmation and automatic acceptance, to mimic PG&E's review.
    review_delay: int = 0
    # Seconds before an uploaded replacement certificate takes over (spec 3.5; PG&E: "several days").
    cert_activation_delay: int = 0
    # A certificate without the clientAuth extended key usage (public CAs stopped issuing it in 2026):
    # warn (accept, with a warning) | refuse.
    client_auth_eku_policy: str = "warn"
    # OAuth Test harness Start (spec 5.5): redirect to portal_uri (Third Party Portal URI, falling back
    # to the OAuth URL) | oauth_url (the legacy OAuth URL, falling back to the portal URI);
    # ThirdPartyID value: PGE | client_id.
    harness_target: str = "portal_uri"
    harness_thirdpartyid_value: str = "PGE"
    # ApplicationInformation credential (section 9 item 15): bearer_rat | bearer_rat_or_basic.
    appinfo_auth: str = "bearer_rat"
    # Unit of client_id_issued_at in ApplicationInformation (section 9 item 22): ms | s.
    appinfo_issued_at_unit: str = "ms"

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
