"""Asynchronous Batch resources (spec 2.2 rows 30-36, 38-39; 6.3-6.6): 202 and a job, or 204; retrieval.

``GET Batch/Subscription/{S}`` (customer access token), ``Batch/Bulk/{BulkID}``,
``Batch/BulkRetailCustomerInfo/{BulkID}`` (also the CCA path without ``/resource/``) and
``Batch/BulkRetailDRPrgInfo/{BulkID}`` (client access token). Without ``correlationID`` the request
is validated and recorded (``store.packages.accept``), answered 202 with an empty body, and the job
worker builds the package and POSTs the BatchList. With ``?correlationID=`` the same path streams
the frozen package. Checks run in PG&E's order: certificate and rate limit (app guard), credential
presence, validity and class, ownership, data group, parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from flask import Blueprint, Response, request

from mock_custodian.api.auth import AT, CAT, Bearer, require_bearer, require_own_authorization
from mock_custodian.domain.packages import (
    CCA_LEGACY_PREFIX,
    KINDS,
    RESOURCE_PREFIX,
    accept,
    check_groups,
    find_package,
)
from mock_custodian.domain.windows import DataWindow, WindowError, parse_window
from mock_custodian.errors import BadRequest, Forbidden, MethodNotPermitted, NoListener, NotFound, ServiceUnavailable
from mock_custodian.redaction import redacted_query
from mock_custodian.store.models import Authorization, ThirdParty
from mock_custodian.vocabulary import RegistrationStatus
from mock_custodian.web.context import runtime
from mock_custodian.web.policies import build_options

blueprint = Blueprint("batch_async", __name__)

ATOM = "application/atom+xml;charset=UTF-8"
READ_CHUNK = 65536


def _route(rule: str):  # noqa: ANN202
    """GET only (other methods get PG&E's 405); a trailing slash is tolerated (spec 2.3)."""
    return blueprint.route(rule, methods=["GET"], strict_slashes=False)


def _service_up() -> None:
    if runtime().service_status() == 0:
        raise ServiceUnavailable()


def _x_transaction() -> str | None:
    return request.headers.get("X-Transaction")


def _empty(status: int) -> Response:
    """202 or 204: no body, ``Content-Length: 0`` and no content type (spec 6.3)."""
    response = Response(b"", status)
    del response.headers["Content-Type"]
    response.headers["Content-Length"] = "0"
    return response


def _window(snapshot: bool) -> DataWindow | None:
    """Spec 6.1: the usage window (T-1 by default); snapshots ignore dates but still refuse malformed ones."""
    rt = runtime()
    s = rt.settings
    try:
        window = parse_window(request.args, rt.clock.epoch(), default_window=s.default_window, strict=s.strict_dates,
                              lenient=s.lenient_dates, accept_unhyphenated=s.accept_unhyphenated_dates,
                              use_published=not snapshot)
    except WindowError as exc:
        raise BadRequest(str(exc)) from None
    return None if snapshot else window


def _bulk_caller(bulk_id: str) -> Bearer:
    """A Bulk call: the right token class, BulkID equal to the caller's client_id, an Approved registration."""
    retrieval = "correlationID" in request.args
    classes = (CAT, AT) if retrieval and runtime().settings.bulk_retrieval_token == "either" else (CAT,)
    bearer = require_bearer(*classes)
    _service_up()
    if bulk_id != bearer.client_id:
        raise Forbidden("The BulkID in the path is not the calling client's")
    if bearer.status != RegistrationStatus.APPROVED:
        raise Forbidden("Bulk data is served only to an Approved registration")
    return bearer


def _retrieve(third_party_id: int, resource: str, resource_id: str) -> Response:
    """Stream the frozen package a correlationID names: the same bytes on every fetch (spec 6.4)."""
    rt = runtime()
    with rt.database.session() as db:
        found = find_package(db, correlation_id=request.args.get("correlationID", ""),
                             third_party_id=third_party_id, resource=resource, resource_id=resource_id,
                             now=rt.clock.epoch(), ttl_days=rt.settings.package_ttl_days)
    path = package_directory() / found.file
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise NotFound() from None

    def chunks(source=handle) -> Iterator[bytes]:  # noqa: ANN001
        with source:
            while block := source.read(READ_CHUNK):
                yield block

    response = Response(chunks(), 200, content_type=ATOM)
    response.headers["Content-Length"] = str(found.size)
    if found.x_transaction is not None:
        response.headers["X-Transaction"] = found.x_transaction
    return response


def _accept(tp_id: int, kind: str, window: DataWindow | None, authorization_id: int | None = None) -> Response:
    """Record the request (202) or answer 204 when it would hold no data and no notification follows."""
    if request.method == "HEAD":  # a HEAD must not start a job and a notification
        raise MethodNotPermitted("HEAD")
    rt = runtime()
    s = rt.settings
    path = request.path.rstrip("/")
    with rt.database.session() as db:
        tp = db.get(ThirdParty, tp_id)
        authorization = db.get(Authorization, authorization_id) if authorization_id is not None else None
        query = redacted_query(request.query_string.decode("latin-1"))
        accepted = accept(db, tp=tp, kind=kind, request_path=path, query=query,
                          x_transaction=_x_transaction(), window=window, now=rt.clock.epoch(),
                          delay_s=s.async_delay_s, max_subscriptions=s.package_max_subscriptions,
                          options=build_options(s), authorization=authorization)
    return _empty(202 if accepted is not None else 204)


@_route(f"{RESOURCE_PREFIX}/Batch/Subscription/<subscription_id>")
def batch_subscription(subscription_id: str) -> Response:
    """Every UsagePoint of one subscription for the window (spec 6.8); customer access token only."""
    bearer = require_bearer(AT)
    _service_up()
    own = require_own_authorization(bearer, subscription_id)
    if "correlationID" in request.args:
        return _retrieve(bearer.third_party_id, "Subscription", str(own.id))
    check_groups(bearer.third_party, "subscription", own)
    return _accept(bearer.third_party_id, "subscription", _window(snapshot=False), own.id)


def _bulk(kind: str, bulk_id: str) -> Response:
    bearer = _bulk_caller(bulk_id)
    resource, feed, _ = KINDS[kind]
    if "correlationID" in request.args:
        return _retrieve(bearer.third_party_id, resource, bulk_id)
    check_groups(bearer.third_party, kind)
    return _accept(bearer.third_party_id, kind, _window(snapshot=feed != "usage"))


@_route(f"{RESOURCE_PREFIX}/Batch/Bulk/<bulk_id>")
def batch_bulk(bulk_id: str) -> Response:
    """Every active subscription of the caller granting Usage or Billing (a CCA: its territory)."""
    return _bulk("bulk", bulk_id)


@_route(f"{RESOURCE_PREFIX}/Batch/BulkRetailCustomerInfo/<bulk_id>")
def batch_bulk_retail_customer_info(bulk_id: str) -> Response:
    """A snapshot of customer data of every subscription granting Basic, Account or ProgramEnrollment."""
    return _bulk("customer_info", bulk_id)


@_route(f"{CCA_LEGACY_PREFIX}/Batch/BulkRetailCustomerInfo/<bulk_id>")
def batch_bulk_retail_customer_info_cca(bulk_id: str) -> Response:
    """The CCA's ad hoc form without ``/resource/`` (section 9 item 16); its notification URL keeps the form."""
    if not runtime().settings.cca_legacy_path:
        raise NoListener(request.path)
    return _bulk("customer_info", bulk_id)


@_route(f"{RESOURCE_PREFIX}/Batch/BulkRetailDRPrgInfo/<bulk_id>")
def batch_bulk_retail_dr_program_info(bulk_id: str) -> Response:
    """Demand-response enrolments of every subscription granting ProgramEnrollment."""
    return _bulk("dr", bulk_id)


def package_directory() -> Path:
    """Where package files live (``<data_dir>/packages``), shared with the job worker."""
    return runtime().settings.resolved_data_dir() / "packages"
