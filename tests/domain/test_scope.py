"""Scope strings of spec 4.13 (checklist 37-40, 65) and the request-side hints of spec 4.2, as pure functions."""

from __future__ import annotations

import pytest

from mock_custodian.domain.scope import (
    FB_ALWAYS,
    GrantedAgreement,
    ScopeSpelling,
    auth_end_date_hints,
    customer_scope,
    history_length_seconds,
    parse_scope,
    registration_scope,
    token_scope,
)

ELECTRIC_INTERVAL = GrantedAgreement("electric", True)
ELECTRIC_NON_INTERVAL = GrantedAgreement("electric", False)
GAS = GrantedAgreement("gas", True)
ALL_GROUPS = ["Basic", "Account", "Billing", "Usage", "ProgramEnrollment"]


def test_every_group_on_electric_and_gas_gives_pges_published_example() -> None:
    scope = customer_scope(ALL_GROUPS, [ELECTRIC_INTERVAL, GAS], 36, "00123")
    assert scope == (
        "FB=1_3_8_13_14_18_19_31_32_35_37_38_39_40_4_5_10_15_16_46_47;"
        "AdditionalScope=Usage_Billing_Basic_Account_ProgramEnrollment;IntervalDuration=900_3600;"
        "BlockDuration=Daily;HistoryLength=94608000;AccountCollection=2;BR=00123;dataCustodianId=PGE"
    )


def test_additional_scope_is_in_pges_order_whatever_the_choice_order() -> None:
    scope = parse_scope(customer_scope(["ProgramEnrollment", "Account", "Usage"], [ELECTRIC_INTERVAL], 24, "00101"))
    assert scope["AdditionalScope"] == "Usage_Account_ProgramEnrollment"


@pytest.mark.parametrize(
    ("groups", "sas", "expected"),
    [
        (["Usage"], [ELECTRIC_INTERVAL], FB_ALWAYS + "_4_5_15"),
        (["Usage"], [ELECTRIC_NON_INTERVAL], FB_ALWAYS + "_15"),  # no interval data: no 4_5
        (["Usage"], [GAS], FB_ALWAYS + "_10_15"),  # gas interval is not "electric interval"
        (["Billing"], [ELECTRIC_INTERVAL], FB_ALWAYS + "_15_16"),  # 4_5 needs Usage
        (["Billing"], [GAS], FB_ALWAYS + "_10_15_16"),
        (["Basic"], [ELECTRIC_INTERVAL, GAS], FB_ALWAYS + "_46_47"),  # no usage or billing: no 4_5, 10, 15
        (["Account"], [GAS], FB_ALWAYS + "_46_47"),
        (["ProgramEnrollment", "Usage"], [ELECTRIC_INTERVAL], FB_ALWAYS + "_4_5_15_46_47"),
    ],
)
def test_function_blocks_follow_the_composition_rule(groups: list[str], sas: list[GrantedAgreement],
                                                      expected: str) -> None:
    assert parse_scope(customer_scope(groups, sas, 36, "00101"))["FB"] == expected


def test_account_collection_counts_sas_and_br_is_the_client_id() -> None:
    scope = parse_scope(customer_scope(["Usage"], [ELECTRIC_INTERVAL, ELECTRIC_INTERVAL, GAS], 48, "00042"))
    assert scope["AccountCollection"] == "3"
    assert scope["BR"] == "00042"
    assert scope["HistoryLength"] == "126144000"


def test_history_length_in_seconds() -> None:
    assert [history_length_seconds(m) for m in (24, 36, 48)] == [63072000, 94608000, 126144000]


def test_keys_are_in_emitted_order_and_the_string_ends_with_the_custodian() -> None:
    scope = customer_scope(["Usage"], [ELECTRIC_INTERVAL], 36, "00101")
    keys = [field.split("=", 1)[0] for field in scope.split(";")]
    assert keys == ["FB", "AdditionalScope", "IntervalDuration", "BlockDuration", "HistoryLength",
                    "AccountCollection", "BR", "dataCustodianId"]
    assert scope.endswith(";dataCustodianId=PGE")
    assert "IntervalDuration=900_3600;BlockDuration=Daily" in scope
    assert " " not in scope


def test_spellings_are_switchable() -> None:
    scope = customer_scope(["Usage"], [ELECTRIC_INTERVAL], 36, "00101", ScopeSpelling("DataCustodianID", "daily"))
    assert "BlockDuration=daily" in scope
    assert scope.endswith("DataCustodianID=PGE")


def test_registration_scope_has_no_customer_choices() -> None:
    scope = registration_scope(["Basic", "Usage"], 24, "00101")
    assert scope == (f"FB={FB_ALWAYS}_4_5_10_15_46_47;IntervalDuration=900_3600;BlockDuration=Daily;"
                     "HistoryLength=63072000;BR=00101;dataCustodianId=PGE")
    assert "AdditionalScope" not in scope and "AccountCollection" not in scope


def test_token_scope_prefix() -> None:
    assert token_scope("FB=1", True) == "scope=FB=1"
    assert token_scope("FB=1", False) == "FB=1"


def test_receivers_tolerate_a_trailing_semicolon_unknown_keys_and_the_prefix() -> None:
    parsed = parse_scope("scope=FB=1_3;SubscriptionFrequency=Daily;BR=00101;")
    assert parsed == {"FB": "1_3", "SubscriptionFrequency": "Daily", "BR": "00101"}


def test_end_date_hints_parse_integers_and_ignore_everything_else() -> None:
    hints = auth_end_date_hints("FB=1_3;MinAuthEndDate=1790000000;PreferredAuthEndDate=-5;xxx")
    assert (hints.min_auth_end_date, hints.preferred_auth_end_date) == (1790000000, -5)
    assert auth_end_date_hints(None).min_auth_end_date is None
    assert auth_end_date_hints("xxx").preferred_auth_end_date is None


@pytest.mark.parametrize("bad", ["MinAuthEndDate=tomorrow", "MinAuthEndDate=1.5", "PreferredAuthEndDate=",
                                 "MinAuthEndDate=99999999999999999999", "PreferredAuthEndDate=１２"])
def test_end_date_hints_that_are_not_64_bit_integers_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        auth_end_date_hints(bad)
