"""PG&E's words as types: registration statuses and data groups, one spelling for every layer.

``StrEnum`` members compare equal to the strings stored in the database and written in scenario files,
so rows and YAML keep their plain values while code names each word once.
"""

from __future__ import annotations

from enum import StrEnum


class RegistrationStatus(StrEnum):
    """A Third Party Portal registration's lifecycle (spec 5.1-5.2)."""

    SUBMITTED = "submitted"  # waiting for the e-mail confirmation (5 days)
    IN_REVIEW = "in_review"
    ACCEPTED = "accepted"  # credentials issued; connectivity and OAuth tests due within 90 days
    APPROVED = "approved"  # may use the production endpoints
    ON_HOLD = "on_hold"
    EXPIRED = "expired"
    DISCARDED = "discarded"  # e-mail link not used in time
    TERMINATED = "terminated"


class DataGroup(StrEnum):
    """The data groups a customer authorizes and a registration requests (spec 4.5)."""

    BASIC = "Basic"
    ACCOUNT = "Account"
    BILLING = "Billing"
    USAGE = "Usage"
    PROGRAM_ENROLLMENT = "ProgramEnrollment"


# In PG&E's order, as plain strings for messages and stored lists.
DATA_GROUPS: tuple[str, ...] = tuple(group.value for group in DataGroup)

# Statuses whose deadlines can move a registration on by the clock alone (spec 5.2).
ADVANCING = (RegistrationStatus.SUBMITTED, RegistrationStatus.IN_REVIEW, RegistrationStatus.ACCEPTED)
# Statuses that hold a client_id and credentials (the certificate authenticates the client).
CREDENTIALED = (RegistrationStatus.ACCEPTED, RegistrationStatus.APPROVED, RegistrationStatus.ON_HOLD)
# A registration still in play: neither ended (expired, discarded, terminated).
LIVE = (*ADVANCING, RegistrationStatus.APPROVED, RegistrationStatus.ON_HOLD)

# Where every ESPI resource lives under the API host (spec 6.1).
RESOURCE_PREFIX = "/GreenButtonConnect/espi/1_1/resource"
# PG&E's token endpoints, production and the registration test's.
TOKEN_PATHS = ("/datacustodian/oauth/v2/token", "/datacustodian/test/oauth/v2/token")
