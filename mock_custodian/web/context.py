"""The request context every handler reaches: the runtime, the listener (surface), the peer certificate.

A leaf of the web layer: it imports no blueprint, so blueprints import it instead of ``app.py``, and
``app.py`` alone knows which blueprints exist. The runtime is built once per app by ``create_app``;
everything derived from settings (scope spelling, rate limits, the portal's registration rules) is
built with it, not per request.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from flask import current_app, g, request
from werkzeug.routing import IntegerConverter

from mock_custodian import tls
from mock_custodian.clock import Clock
from mock_custodian.domain.grants import TokenLifetimes
from mock_custodian.domain.ratelimit import RateLimits
from mock_custodian.domain.registration_form import PortalPolicy
from mock_custodian.domain.scope import ScopeSpelling
from mock_custodian.pki import DevPKI
from mock_custodian.settings import Settings
from mock_custodian.store.db import MAX_ROW_ID, Database
from mock_custodian.vocabulary import RESOURCE_PREFIX
from mock_custodian.web import policies

EXTENSION = "mock_custodian"
# The simulator's own scaffolding (control API, console): served on both listeners, never PG&E's.
SIM_PREFIX = "/__sim/"


@dataclass
class Runtime:
    """Everything a request handler may reach: settings, database, clock, PKI and the policies derived once."""

    settings: Settings
    database: Database
    clock: Clock
    pki: DevPKI
    scope_spelling: ScopeSpelling
    rate_limits: RateLimits | None  # None: rate limits off
    token_lifetimes: TokenLifetimes

    @classmethod
    def build(cls, settings: Settings, database: Database, pki: DevPKI) -> Runtime:
        return cls(settings, database, database.clock(), pki, policies.scope_spelling(settings),
                   policies.rate_limits(settings) if settings.rate_limits_enabled else None,
                   policies.token_lifetimes(settings))

    def api_base_url(self) -> str:
        return self.settings.resolved_api_base_url()

    def portal_base_url(self) -> str:
        return self.settings.resolved_portal_base_url()

    def resource_base_url(self) -> str:
        return f"{self.api_base_url()}{RESOURCE_PREFIX}"

    def portal_policy(self) -> PortalPolicy:
        """The registration rules as configured (trust anchors re-read when their bundle file changes)."""
        return policies.portal_policy(self.settings, self.pki, self.portal_base_url())

    def service_status(self) -> int:
        row = self.database.read_row("SELECT value FROM sim_meta WHERE key = 'service_status'")
        return int(row[0]) if row is not None else self.settings.service_status


@dataclass(frozen=True, slots=True)
class Arrival:
    """What every hook asks of a request, noted once as it arrives (:class:`SurfaceMiddleware`)."""

    runtime: Runtime
    surface: str
    sim: bool


# Set for the duration of the app's call by the middleware. The hooks ask for the runtime, the surface
# and whether the request is the simulator's own about twenty times a request: one context-variable
# read each instead of a resolution of Flask's request and app proxies (issue 17). Outside the call (a
# streamed body's later chunks, a test's request context) the proxies answer.
_ARRIVAL: ContextVar[Arrival | None] = ContextVar("mock_custodian_arrival", default=None)


def runtime() -> Runtime:
    arrival = _ARRIVAL.get()
    return arrival.runtime if arrival is not None else current_app.extensions[EXTENSION]


def surface() -> str:
    """Which listener the request arrived on: ``api`` (api.pge.com) or ``portal`` (sharemydata.pge.com)."""
    arrival = _ARRIVAL.get()
    return arrival.surface if arrival is not None else request.environ.get(tls.SURFACE_KEY, "api")


def peer_certificate() -> tls.PeerCertificate:
    """The client certificate of this request: from TLS, or from a trusted proxy's header.

    From a trusted proxy address the header is authoritative (the proxy's own TLS certificate, if it
    presents one upstream, is ignored; no header means no certificate); from any other address the
    header is ignored and only the TLS certificate counts.
    """
    settings = runtime().settings
    if settings.client_cert_header and tls.address_trusted(
        request.remote_addr, settings.client_cert_header_trusted_ips
    ):
        header = request.headers.get(settings.client_cert_header)
        return tls.certificate_from_proxy_header(header) if header else tls.NO_CERTIFICATE
    return request.environ.get(tls.ENVIRON_KEY, tls.NO_CERTIFICATE)


def certificate_belongs_to(third_party_id: int) -> bool:
    """Whether the request's verified certificate is registered to this third party (spec 3.4)."""
    return third_party_id in g.certificate_owner_ids


def is_sim_request() -> bool:
    arrival = _ARRIVAL.get()
    return arrival.sim if arrival is not None else request.path.startswith(SIM_PREFIX)


class SurfaceMiddleware:
    """Copies what the TLS layer learned (surface, client certificate) into the WSGI environ, and notes
    the request's :class:`Arrival` while the app handles it."""

    def __init__(self, app: Any, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    def __call__(self, environ: dict, start_response: Any) -> Any:
        sock = environ.get("gunicorn.socket")
        surface = environ[tls.SURFACE_KEY] = getattr(sock, "surface", "api")
        environ[tls.ENVIRON_KEY] = getattr(sock, "peer_certificate", tls.NO_CERTIFICATE)
        environ["wsgi.url_scheme"] = "https"
        # As werkzeug's request.path makes it ("/" + PATH_INFO without its leading slashes); the prefix is
        # ASCII, so PATH_INFO's latin-1 text tells the same as the UTF-8 path.
        sim = ("/" + environ.get("PATH_INFO", "").lstrip("/")).startswith(SIM_PREFIX)
        token = _ARRIVAL.set(Arrival(self.runtime, surface, sim))
        try:
            return self.app(environ, start_response)
        finally:
            _ARRIVAL.reset(token)


class StoredIntConverter(IntegerConverter):
    """``<int:...>`` path segments only match what a database INTEGER holds; larger ones name no row (404)."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(url_map, *args, **kwargs)
