"""Pure pieces of the registration tests: the Start redirect's switches and ApplicationInformation's units."""

from __future__ import annotations

import pytest

from mock_custodian.api.registration_resources import APPLICATION_STATUS, application_information_values
from mock_custodian.domain.harness import start_location
from mock_custodian.domain.registration import RegistrationConflict
from mock_custodian.domain.scope import ScopeSpelling
from mock_custodian.store.models import ThirdParty


def _tp(**values) -> ThirdParty:  # noqa: ANN003
    base = dict(client_id="00123", client_secret="s", registration_access_token="r",
                application_information_id="7000123", user_type="standard", status="accepted",
                legal_name="L", display_name="D", tax_id="123456789", description="d", phone="p",
                business_contact={"email": "b@x.example"}, portal_uri="https://tp.example/start?from=pge",
                scope_selection_uri="https://tp.example/oauth", redirect_uri="https://tp.example/cb",
                notification_uri="https://tp.example/n", data_groups=["Usage"], history_months=36,
                created_at=1_700_000_000.25, client_id_issued_at=1_700_000_100.5)
    base.update(values)
    return ThirdParty(**base)


def test_start_redirect_follows_harness_target_and_thirdpartyid_value() -> None:
    tp = _tp()
    assert start_location(tp, "portal_uri", "PGE") == "https://tp.example/start?from=pge&scope=xxx&ThirdPartyID=PGE"
    assert start_location(tp, "oauth_url", "client_id") == "https://tp.example/oauth?scope=xxx&ThirdPartyID=00123"
    # Each target falls back to the other when empty.
    assert start_location(_tp(portal_uri=None), "portal_uri", "PGE").startswith("https://tp.example/oauth?")
    assert start_location(_tp(scope_selection_uri=None), "oauth_url", "PGE").startswith("https://tp.example/start?")
    with pytest.raises(RegistrationConflict, match="Standard and Energy Efficiency Finance"):
        start_location(_tp(user_type="cca"), "portal_uri", "PGE")
    with pytest.raises(RegistrationConflict, match="once the registration is accepted"):
        start_location(_tp(status="in_review"), "portal_uri", "PGE")


def test_application_information_values_follow_the_settings() -> None:
    spelling = ScopeSpelling("DataCustodianID", "daily")
    values = application_information_values(_tp(), api_base_url="https://api.pge.com",
                                            portal_base_url="https://sharemydata.pge.com", issued_at_unit="s",
                                            spelling=spelling)
    assert values["client_id_issued_at"] == 1_700_000_100
    assert values["scope"].endswith(";BlockDuration=daily;HistoryLength=94608000;BR=00123;DataCustodianID=PGE")
    assert values["dataCustodianScopeSelectionScreenURI"] == "https://sharemydata.pge.com/myAuthorization/?clientId=00123"
    ms = application_information_values(_tp(), api_base_url="https://a", portal_base_url="https://p",
                                        issued_at_unit="ms", spelling=ScopeSpelling())
    assert ms["client_id_issued_at"] == 1_700_000_100_500
    assert [APPLICATION_STATUS[s] for s in ("accepted", "approved", "on_hold", "terminated")] == [1, 2, 3, 4]
