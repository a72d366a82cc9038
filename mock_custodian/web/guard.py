"""Which host a request is for, and the API host's guard: the certificate check PG&E runs first (spec 2.3).

``create_app`` groups the blueprints under two host blueprints, ``api_host`` (api.pge.com) and ``portal_host``
(sharemydata.pge.com). A request on a listener whose host has no such route gets PG&E's
``No listener for endpoint`` 404; on the API listener only after the certificate check, as at PG&E.
The API host's own before-request hook is :func:`admit_api_request`: certificate, owners, rate limits,
due events and registration deadlines in one transaction (``domain/admission.py``). ``/__sim/`` (the
simulator's control API and console) belongs to neither host and is never guarded here.
"""

from __future__ import annotations

from flask import Response, g, request

from mock_custodian.domain.admission import admit, due_events
from mock_custodian.domain.registration_certificates import describe_unregistered_certificate
from mock_custodian.errors import InvalidCertificate, NoListener, RateLimited
from mock_custodian.vocabulary import TOKEN_PATHS
from mock_custodian.web.context import is_sim_request, peer_certificate, runtime, surface
from mock_custodian.web.faults import apply_fault

API_HOST = "api_host"
PORTAL_HOST = "portal_host"
# Paths on the API host that never need a client certificate (spec 3.1).
CERT_EXEMPT_PATHS = ("/datacustodian/test/oauth/v2/authorize",)
# PG&E's retired production authorize endpoint: browsers arrive without a certificate, so it is a 404.
RETIRED_AUTHORIZE = "/datacustodian/oauth/v2/authorize"


def pin_clock() -> None:
    """One clock read per request (see ``Clock.pin``); control requests, which move it, read it afresh.

    The request's own bookkeeping (clock, guard, bearer check, request log) shares one pooled
    connection until :func:`unpin_clock` (``Database.hold``): one pool checkout per request.
    """
    rt = runtime()
    rt.database.hold()
    if not is_sim_request():
        rt.clock.pin()


def unpin_clock(_exc: BaseException | None = None) -> None:
    rt = runtime()
    rt.clock.unpin()
    rt.database.release()


def _reaches_certificate_lookup() -> bool:
    """Whether :func:`admit_api_request` will look the certificate up (and apply due events with it)."""
    path = request.path
    if is_sim_request() or surface() == "portal" or path in CERT_EXEMPT_PATHS:
        return False
    return path.rstrip("/") != RETIRED_AUTHORIZE and peer_certificate().usable


def apply_due_events() -> None:
    """Scheduled account/SA events take effect once the simulated clock reaches them (spec 4.15)."""
    if _reaches_certificate_lookup():
        return  # the API guard applies them in its one transaction
    rt = runtime()
    due_events(rt.database, rt.clock.epoch(), rt.resource_base_url())


def route_to_host() -> Response | None:
    """A path of the other host, or no path at all, finds no listener (after the API's certificate check)."""
    if is_sim_request():
        return None
    host = request.blueprints[-1] if request.blueprints else None
    if surface() == "portal":
        if host != PORTAL_HOST:
            raise NoListener(request.path)
        return None
    if host == API_HOST:
        return None  # the API host's own guard runs next
    admit_api_request()
    if request.url_rule is not None:
        raise NoListener(request.path)  # a portal page asked for on the API listener
    return apply_fault()  # no route: a configured fault still fires, else PG&E's 404


def admit_api_request() -> None:
    """The certificate check, then rate limits charged to the certificate's registration and vendor."""
    path = request.path
    if path in CERT_EXEMPT_PATHS:
        return
    if path.rstrip("/") == RETIRED_AUTHORIZE:
        raise NoListener(path)  # spec checklist 9: 404 for any request, before the certificate check
    peer = peer_certificate()
    if not peer.usable:
        raise InvalidCertificate(peer.error or "certificate not verified")
    rt = runtime()
    strict = rt.settings.rate_limit_profile == "strict"
    admission = admit(
        rt.database, fingerprint=peer.fingerprint_sha256 or "", now=rt.clock.epoch(),
        real_now=rt.clock.real_epoch(), resource_base=rt.resource_base_url(), limits=rt.rate_limits,
        # production profile (default): token calls skip the per-second vendor bucket (see web/policies.py)
        vendor_bucket=strict or path.rstrip("/") not in TOKEN_PATHS,
    )
    if not admission.owners:
        with rt.database.session() as db:
            raise InvalidCertificate(describe_unregistered_certificate(
                db, peer.fingerprint_sha256 or "", peer.subject, rt.clock.epoch()))
    if admission.decision is not None and not admission.decision.allowed:
        raise RateLimited(admission.decision.retry_after, admission.decision.limit)
    g.certificate_owner_ids = admission.owners
    g.faults_armed = admission.faults_armed
    g.certificate_sha256 = peer.fingerprint_sha256


def security_headers(response: Response) -> Response:
    """No page may be framed (a framed consent Submit is clickjacking) and no body type-sniffed.

    ``frame-ancestors`` is the only CSP directive set: a broad policy would break the pages' inline
    styles and SVG.
    """
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if surface() == "portal" or is_sim_request():
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    return response
