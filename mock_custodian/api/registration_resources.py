"""The resources of the registration tests (spec 5.4, 5.6): ``DownloadSampleData`` and ``ApplicationInformation``.

Each records its milestone when it succeeds with the right credential over the registered certificate;
approval follows when the last required test passes (``store.milestones``).
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, g, request

from mock_custodian.api.auth import CAT, RAT, require_bearer
from mock_custodian.domain.milestones import API_CONNECTIVITY, record_milestone
from mock_custodian.domain.registration import read_application_information
from mock_custodian.domain.registry import authenticated_client
from mock_custodian.domain.scope import ScopeSpelling, registration_scope
from mock_custodian.errors import Forbidden, MissingToken
from mock_custodian.espi import UsagePointRequest, application_information_entry, usage_feed
from mock_custodian.oauth.token import basic_credentials
from mock_custodian.store.models import ThirdParty
from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.vocabulary import RESOURCE_PREFIX, RegistrationStatus
from mock_custodian.web.context import certificate_belongs_to, runtime

blueprint = Blueprint("registration_resources", __name__, url_prefix=RESOURCE_PREFIX)

ATOM = "application/atom+xml;charset=UTF-8"
# dataCustodianApplicationStatus (spec 5.6 element 2).
APPLICATION_STATUS = {RegistrationStatus.SUBMITTED: 1, RegistrationStatus.IN_REVIEW: 1, RegistrationStatus.ACCEPTED: 1,
                      RegistrationStatus.APPROVED: 2, RegistrationStatus.ON_HOLD: 3,
                      RegistrationStatus.TERMINATED: 4, RegistrationStatus.EXPIRED: 4, RegistrationStatus.DISCARDED: 4}

# The sample file: one local day of an hourly TOU electric meter, so the feed shows PG&E's full order
# (LocalTimeParameters, ReadingType, UsagePoint, MeterReading, IntervalBlock, ProgramIdMapping).
SAMPLE_SUBSCRIPTION_ID = "1000001"
SAMPLE_USAGE_POINT_ID = "5391320451"
SAMPLE_DAY_START = 1719817200  # 2024-07-01T00:00:00-07:00
SAMPLE_PUBLISHED = SAMPLE_DAY_START + 86400 + 14 * 3600


@lru_cache(maxsize=8)
def sample_feed(resource_base: str, style: str = "pge") -> bytes:
    """A fixed Atom usage feed built with the data engine's writers: byte-identical on every call."""
    sa = ServiceAgreementModel.from_dict({
        "usage_point_id": SAMPLE_USAGE_POINT_ID, "profile": "residential_hourly", "rate_schedule": "E-TOU-C",
        "seed": 20240701, "sa_start": SAMPLE_DAY_START - 365 * 86400,
    })
    request_ = UsagePointRequest(subscription_id=SAMPLE_SUBSCRIPTION_ID, sa=sa, start=SAMPLE_DAY_START,
                                 end=SAMPLE_DAY_START + 86400, include_usage_summaries=False)
    return b"".join(usage_feed(
        [request_], resource_base=resource_base, self_href=f"{resource_base}/DownloadSampleData",
        now=SAMPLE_PUBLISHED, feed_id=str(uuid.uuid5(uuid.NAMESPACE_URL, "mock-custodian:DownloadSampleData")),
        style=style,
    ))


@blueprint.route("/DownloadSampleData", methods=["GET"], strict_slashes=False)
def download_sample_data() -> Response:
    """PG&E's sample meter-reading file; the first success records ``API Connectivity Test: Completed``."""
    bearer = require_bearer(CAT)
    rt = runtime()
    with rt.database.session() as db:
        tp = db.get(ThirdParty, bearer.third_party_id)
        assert tp is not None
        record_milestone(db, tp, API_CONNECTIVITY, rt.clock.epoch())
    body = sample_feed(rt.resource_base_url(), getattr(rt.settings, "xml_style", "pge"))
    return Response(body, 200, content_type=ATOM)


@blueprint.route("/ApplicationInformation/<application_information_id>", methods=["GET"], strict_slashes=False)
def application_information(application_information_id: str) -> Response:
    """The registration as ApplicationInformation (spec 5.6): registration access token only by default."""
    rt = runtime()
    settings = rt.settings
    caller_id = _caller(settings.appinfo_auth)
    with rt.database.session() as db:
        tp = read_application_information(db, application_information_id, caller_id, rt.clock.epoch())
        values = application_information_values(
            tp, api_base_url=rt.api_base_url(), portal_base_url=rt.portal_base_url(),
            issued_at_unit=settings.appinfo_issued_at_unit,
            spelling=rt.scope_spelling,
        )
        published = tp.client_id_issued_at or tp.created_at
        updated = max(t for t in (tp.created_at, tp.accepted_at, tp.approved_at, tp.terminated_at, tp.expired_at)
                      if t is not None)
        body = application_information_entry(
            values, application_information_id=tp.application_information_id,
            resource_base=rt.resource_base_url(), published=published, updated=updated, root=True,
            style=getattr(settings, "xml_style", "pge"),
        )
    return Response(body, 200, content_type=ATOM)


def _caller(appinfo_auth: str) -> int:
    """The registration calling: by its registration access token, or (if allowed) its Basic credentials."""
    scheme = request.headers.get("Authorization", "").partition(" ")[0].lower()
    if scheme == "basic":
        if appinfo_auth == "bearer_rat_or_basic":
            return _basic_client()
        refusal = MissingToken()
        refusal.reason = ("a Basic header was sent; ApplicationInformation takes Authorization: Bearer "
                          "{registration_access_token} (PG&E's prose says 'basic', but the value it shows is a "
                          "Bearer registration access token)")
        raise refusal
    try:
        return require_bearer(RAT).third_party_id
    except Forbidden as exc:
        if exc.error == "insufficient_scope":
            exc.reason = (f"{exc.description}: ApplicationInformation takes the registration_access_token shown in "
                          "Manage Registration, not the client access token or a customer access token")
        raise


def _basic_client() -> int:
    """``appinfo_auth=bearer_rat_or_basic``: the client's Basic credentials over its own certificate."""
    client_id, client_secret = basic_credentials()
    rt = runtime()
    with rt.database.statements() as raw:
        client = authenticated_client(raw, client_id, client_secret)
    g.client_id = client.client_id
    if not certificate_belongs_to(client.id):
        raise Forbidden("The client certificate is not registered to this client")
    return client.id


def application_information_values(tp: ThirdParty, *, api_base_url: str, portal_base_url: str, issued_at_unit: str,
                                   spelling: ScopeSpelling) -> dict[str, Any]:
    """The registration-specific elements of spec 5.6; every URL from the configured base URLs."""
    resource_base = f"{api_base_url}{RESOURCE_PREFIX}"
    issued = tp.client_id_issued_at or tp.created_at
    return {
        "dataCustodianApplicationStatus": APPLICATION_STATUS.get(tp.status, 1),
        "thirdPartyApplicationDescription": tp.description or "",
        "thirdPartyPhone": tp.phone or "",
        "authorizationServerUri": api_base_url,
        "thirdPartyNotifyUri": tp.notification_uri or "",
        "authorizationServerAuthorizationEndpoint": f"{portal_base_url}/myAuthorization",
        "authorizationServerTokenEndpoint": f"{api_base_url}/datacustodian/oauth/v2/token",
        "dataCustodianBulkRequestURI": f"{resource_base}/Batch/Bulk/{tp.client_id}",
        "dataCustodianResourceEndpoint": resource_base,
        "thirdPartyScopeSelectionScreenURI": tp.scope_selection_uri or "",
        "thirdPartyUserPortalScreenURI": tp.portal_uri or "",
        "client_secret": tp.client_secret,
        "client_name": tp.display_name,
        "redirect_uri": tp.redirect_uri or "",
        "client_id": tp.client_id,
        "client_id_issued_at": int(issued * 1000) if issued_at_unit == "ms" else int(issued),
        "contacts": (tp.business_contact or {}).get("email") or "",
        "scope": registration_scope(tp.data_groups or [], tp.history_months, tp.client_id, spelling),
        "registration_access_token": tp.registration_access_token,
        "dataCustodianScopeSelectionScreenURI": f"{portal_base_url}/myAuthorization/?clientId={tp.client_id}",
    }
