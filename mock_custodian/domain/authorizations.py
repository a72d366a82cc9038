"""Customer authorizations: consent, re-authorization, cancellation, edits and revocation (spec 4.14, 4.15, 8).

Status and expiry are a pure function of the row and "now" (:func:`authorization_status`), so a
cancellation that takes effect at the next Pacific midnight needs no job: moving the clock past
midnight is enough. Every change the third party must hear about goes through
:func:`notify_authorization_change`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mock_custodian.clock import PACIFIC
from mock_custodian.domain.events import schedule_consent_events
from mock_custodian.errors import Forbidden, NotFound
from mock_custodian.espi.admin import batch_list_xml
from mock_custodian.store.db import next_id
from mock_custodian.store.hashed import display_prefix, token_key
from mock_custodian.store.models import (
    Authorization,
    AuthorizationCode,
    Customer,
    Notification,
    OutboxEmail,
    ServiceAgreement,
    ThirdParty,
    Token,
)

AUTHORIZATION_ID_START = 4095250  # the same counter world.py seeds; IDs are never reused
INDEFINITE_END = 253402300799  # 9999-12-31T23:59:59Z: PG&E's "indefinite" (spec 8.3)
ACTIVE, INACTIVE = 1, 0
# Kinds a customer holds and can manage; "bulk", "registration" and "cca" are system entries.
CUSTOMER_KINDS = ("customer", "paper")
# Groups a self-access user grants itself when its registration lists none (spec 4.7).
SELF_ACCESS_GROUPS = ("Basic", "Account", "Billing", "Usage")

# Why an authorization ended early (Authorization.revoked_reason).
CANCELLED = "cancelled"  # by the customer; effective at the next local midnight
REPLACED = "replaced"  # by a re-authorization
REVOKED_BY_THIRD_PARTY = "revoked_by_third_party"
TERMINATED = "terminated"  # the registration ended (store.registration.terminate uses the same word)


class ConsentInvalid(ValueError):
    """A customer's submission broke a rule of spec 4.4 / 4.15; ``errors`` maps form field to message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


# --- time ------------------------------------------------------------------------------------


def local_date(epoch: float) -> dt.date:
    """The America/Los_Angeles calendar date of an instant."""
    return dt.datetime.fromtimestamp(epoch, PACIFIC).date()


def local_midnight(day: dt.date) -> float:
    """The instant local midnight starts ``day`` (DST-aware)."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=PACIFIC).timestamp()


def end_of_local_day(day: dt.date) -> float:
    """A fixed-period authorization ends at the local midnight that closes its chosen end date."""
    return local_midnight(day + dt.timedelta(days=1))


def next_local_midnight(now: float) -> float:
    """A customer cancellation takes effect here: access continues for the rest of the local day."""
    return end_of_local_day(local_date(now))


# --- status (spec 8.3) -----------------------------------------------------------------------


def effective_end(authorization: Authorization) -> float | None:
    """When access ends: the earlier of a revocation and the authorized end; None while indefinite."""
    ends = [t for t in (authorization.revoked_at, authorization.ends_at) if t is not None]
    return min(ends) if ends else None


def authorization_status(authorization: Authorization, now: float) -> int:
    """``1`` while the authorization is in force at ``now``, else ``0`` (revoked, cancelled, expired)."""
    end = effective_end(authorization)
    return ACTIVE if end is None or now < end else INACTIVE


def expires_at(authorization: Authorization) -> int:
    """The Authorization resource's ``expires_at`` and the end of ``authorizedPeriod``."""
    end = effective_end(authorization)
    return INDEFINITE_END if end is None else int(end)


def is_live(authorization: Authorization, now: float) -> bool:
    return authorization_status(authorization, now) == ACTIVE


# --- notifications and e-mail ----------------------------------------------------------------


def notify_authorization_change(db: Session, authorization: Authorization, now: float, resource_base: str) -> None:
    """Queue the BatchList POST of spec 6.5 naming ``R/Authorization/{id}`` (delivery is the job worker's).

    Authorization notifications go out whatever the "Notify me" setting; a registration without a
    Notification URI has nowhere to send them.
    """
    tp = authorization.third_party or db.get(ThirdParty, authorization.third_party_id)
    if tp is None or not tp.notification_uri:
        return
    db.add(
        Notification(
            third_party_id=tp.id,
            uri=tp.notification_uri,
            body=batch_list_xml([f"{resource_base}/Authorization/{authorization.id}"]).decode(),
            status="pending",
            created_at=now,
            next_attempt_at=now,
            attempts=[],
        )
    )


def _email(db: Session, to: str | None, subject: str, body: str, now: float) -> None:
    if to:
        db.add(OutboxEmail(to=to, subject=subject, body=body, sent_at=now))


def _describe(authorization: Authorization) -> str:
    end = effective_end(authorization)
    until = "with no end date" if end is None else f"until {local_date(end - 1).isoformat()} (Pacific time)"
    sas = ", ".join(sa.sa_number for sa in authorization.service_agreements)
    return (f"Authorization {authorization.id} for {authorization.third_party.display_name}\n"
            f"Data shared: {', '.join(authorization.data_groups)}\n"
            f"Service agreements: {sas}\n"
            f"Duration: {until}\n")


# --- what a customer may share -----------------------------------------------------------------


def eligible_service_agreements(
    db: Session, customer_id: int, now: float, guest_account_id: int | None = None
) -> list[ServiceAgreement]:
    """Active electric and gas SAs on the accounts linked to the login (a guest: its one account)."""
    customer = db.get(Customer, customer_id)
    if customer is None:
        return []
    out = []
    for account in customer.accounts:
        if not account.linked or (guest_account_id is not None and account.id != guest_account_id):
            continue
        for sa in account.service_agreements:
            if sa.status != "Active" or sa.commodity not in ("electric", "gas"):
                continue
            if sa.service_end is not None and sa.service_end <= now:
                continue
            out.append(sa)
    return out


def live_customer_authorizations(db: Session, customer_id: int, now: float) -> list[Authorization]:
    """The customer's current authorizations (status 1), newest first, for "My authorizations"."""
    rows = db.execute(
        select(Authorization)
        .where(Authorization.customer_id == customer_id, Authorization.kind.in_(CUSTOMER_KINDS))
        .order_by(Authorization.id.desc())
    ).scalars()
    return [a for a in rows if is_live(a, now)]


def live_authorizations_for(db: Session, third_party_id: int, customer_id: int, now: float) -> list[Authorization]:
    """The customer's authorizations with this third party still in force (at most one, spec 4.14)."""
    rows = db.execute(
        select(Authorization).where(
            Authorization.third_party_id == third_party_id,
            Authorization.customer_id == customer_id,
            Authorization.kind.in_(CUSTOMER_KINDS),
        )
    ).scalars()
    return [a for a in rows if is_live(a, now)]


def customer_authorization(db: Session, customer_id: int, authorization_id: int, now: float) -> Authorization:
    """One of the customer's live authorizations, or NotFound (another customer's looks the same)."""
    authorization = db.get(Authorization, authorization_id)
    if (
        authorization is None
        or authorization.customer_id != customer_id
        or authorization.kind not in CUSTOMER_KINDS
        or not is_live(authorization, now)
    ):
        raise NotFound()
    return authorization


# --- creating (consent, self-access) ----------------------------------------------------------


@dataclass(frozen=True)
class Duration:
    """The consent page's choice: Indefinite (``end_date`` None) or a calendar end date."""

    end_date: dt.date | None = None

    def ends_at(self) -> float | None:
        return None if self.end_date is None else end_of_local_day(self.end_date)


def check_duration(duration: Duration, now: float, min_auth_end_date: int | None = None) -> dict[str, str]:
    """Spec 4.4: an end date must lie in the future and not before ``MinAuthEndDate``."""
    errors: dict[str, str] = {}
    if duration.end_date is None:
        return errors
    if duration.end_date <= local_date(now):
        errors["end_date"] = "The end date must be in the future."
    elif min_auth_end_date is not None and duration.end_date < local_date(min_auth_end_date):
        errors["end_date"] = (f"The end date cannot be earlier than "
                              f"{local_date(min_auth_end_date).isoformat()}, as the company requires.")
    return errors


def consented_groups(tp: ThirdParty, data_groups: Iterable[str]) -> list[str]:
    """The groups a submission grants: as chosen; a self-access user without registered groups gets its own."""
    if tp.user_type == "self_access" and not tp.data_groups:
        return list(SELF_ACCESS_GROUPS)
    return list(dict.fromkeys(data_groups))


def consent_errors(
    db: Session,
    *,
    tp: ThirdParty,
    customer_id: int,
    data_groups: Sequence[str],
    service_agreement_ids: Sequence[int],
    duration: Duration | None,
    now: float,
    guest_account_id: int | None = None,
    min_auth_end_date: int | None = None,
) -> dict[str, str]:
    """Spec 4.4's rules for a submission, one message per offending field (empty when it may proceed).

    ``duration`` None means the page could not read one (its own message says why).
    """
    errors: dict[str, str] = {}
    offered = set(tp.data_groups or []) or (set(SELF_ACCESS_GROUPS) if tp.user_type == "self_access" else set())
    if not data_groups:
        errors["data_groups"] = "Select at least one type of information to share."
    elif not set(data_groups) <= offered:
        errors["data_groups"] = "Only the information this company asked for can be shared."
    eligible = {sa.id for sa in eligible_service_agreements(db, customer_id, now, guest_account_id)}
    if not service_agreement_ids:
        errors["service_agreements"] = "Select at least one service agreement."
    elif not set(service_agreement_ids) <= eligible:
        errors["service_agreements"] = "Only your active service agreements can be shared."
    if duration is not None:
        errors.update(check_duration(duration, now, min_auth_end_date))
    return errors


@dataclass
class NewAuthorization:
    """What Submit produced: the authorization, the code for the redirect (if any), what it replaced."""

    authorization: Authorization
    code: str | None
    replaced: list[Authorization] = field(default_factory=list)


def create_customer_authorization(
    db: Session,
    *,
    tp: ThirdParty,
    customer_id: int,
    data_groups: Iterable[str],
    service_agreement_ids: Iterable[int],
    duration: Duration,
    now: float,
    resource_base: str,
    guest_account_id: int | None = None,
    confirmation_email: str | None = None,
    redirect_uri: str | None = None,
    min_auth_end_date: int | None = None,
) -> NewAuthorization:
    """Submit on the consent page (spec 4.4): validate, create, replace any live one (4.14), issue a code.

    ``redirect_uri`` None means no code (the self-access flow, spec 4.7). Raises ConsentInvalid with
    one message per offending field; nothing is written then.
    """
    groups = consented_groups(tp, data_groups)
    wanted_sas = list(dict.fromkeys(int(i) for i in service_agreement_ids))
    errors = consent_errors(db, tp=tp, customer_id=customer_id, data_groups=groups, service_agreement_ids=wanted_sas,
                            duration=duration, now=now, guest_account_id=guest_account_id,
                            min_auth_end_date=min_auth_end_date)
    if errors:
        raise ConsentInvalid(errors)
    eligible = {sa.id: sa for sa in eligible_service_agreements(db, customer_id, now, guest_account_id)}

    authorization = Authorization(
        id=next_id(db, "authorization_id", AUTHORIZATION_ID_START),
        third_party_id=tp.id,
        customer_id=customer_id,
        kind="customer",
        data_groups=groups,
        history_months=tp.history_months,
        created_at=now,
        ends_at=duration.ends_at(),
        updated_at=now,
    )
    authorization.service_agreements = [eligible[i] for i in sorted(wanted_sas, key=lambda i: eligible[i].id)]
    authorization.third_party = tp
    db.add(authorization)
    db.flush()

    replaced = [old for old in live_authorizations_for(db, tp.id, customer_id, now) if old.id != authorization.id]
    for old in replaced:
        _end_now(db, old, now, REPLACED)
        old.replaced_by = authorization.id
        notify_authorization_change(db, old, now, resource_base)

    code = None
    if redirect_uri is not None:
        code = str(uuid.uuid4())
        db.add(AuthorizationCode(code=token_key(code), prefix=display_prefix(code), third_party_id=tp.id,
                                 authorization_id=authorization.id,
                                 redirect_uri=redirect_uri, endpoint="production", issued_at=now))
    schedule_consent_events(db, authorization, now)  # the scenario's ``after_consent`` timeline entries
    customer = db.get(Customer, customer_id)
    _email(db, confirmation_email or (customer.email if customer else None),
           f"Share My Data: you authorized {tp.display_name}",
           "Thank you. You have authorized a company to receive your PG&E data.\n\n" + _describe(authorization)
           + "\nYou can change or cancel this authorization at any time on your Share My Data page.\n", now)
    return NewAuthorization(authorization, code, replaced)


# --- ending and editing ------------------------------------------------------------------------


def _end_now(db: Session, authorization: Authorization, now: float, reason: str) -> None:
    authorization.revoked_at = now
    authorization.revoked_reason = reason
    authorization.updated_at = now
    revoke_tokens(db, authorization.id, now)


def revoke_tokens(db: Session, authorization_id: int, now: float) -> None:
    """Every access and refresh token of the authorization stops working at once."""
    db.execute(
        update(Token)
        .where(Token.authorization_id == authorization_id, Token.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def cancel_by_customer(db: Session, customer_id: int, authorization_id: int, now: float,
                       resource_base: str) -> Authorization:
    """The X on "My authorizations": access ends at the next Pacific midnight; the TP is told now."""
    authorization = customer_authorization(db, customer_id, authorization_id, now)
    _cancel(db, authorization, now, resource_base)
    return authorization


def _cancel(db: Session, authorization: Authorization, now: float, resource_base: str) -> None:
    if authorization.revoked_reason == CANCELLED:
        return  # already cancelled and waiting for midnight: nothing new to tell anyone
    midnight = next_local_midnight(now)
    authorization.ends_at = midnight if authorization.ends_at is None else min(authorization.ends_at, midnight)
    authorization.revoked_reason = CANCELLED
    authorization.updated_at = now
    notify_authorization_change(db, authorization, now, resource_base)
    customer = authorization.customer
    _email(db, customer.email if customer else None,
           f"Share My Data: your authorization for {authorization.third_party.display_name} is cancelled",
           "You cancelled an authorization. The company keeps access until midnight tonight (Pacific time).\n\n"
           + _describe(authorization), now)


@dataclass(frozen=True)
class EditOutcome:
    changed: bool
    cancelled: bool


def edit_by_customer(
    db: Session,
    customer_id: int,
    authorization_id: int,
    *,
    keep_service_agreement_ids: Iterable[int],
    duration: Duration,
    now: float,
    resource_base: str,
    data_groups: Sequence[str] | None = None,
    end_date_edit: str = "any",
    allow_group_edit: bool = False,
) -> EditOutcome:
    """The pencil (spec 4.15): remove SAs and change the end date, in place, with one notification.

    Adding SAs, or changing data groups unless ``allow_group_edit``, needs a new authorization.
    Removing every SA counts as a cancellation.
    """
    authorization = customer_authorization(db, customer_id, authorization_id, now)
    errors: dict[str, str] = {}
    if authorization.revoked_reason == CANCELLED:
        raise ConsentInvalid({"authorization": "This authorization is already cancelled."})
    current = {sa.id: sa for sa in authorization.service_agreements}
    keep = list(dict.fromkeys(int(i) for i in keep_service_agreement_ids))
    if not set(keep) <= set(current):
        errors["service_agreements"] = ("Service agreements can only be removed here; to add one, "
                                        "cancel this authorization and create a new one.")
    new_groups = list(authorization.data_groups)
    if data_groups is not None and set(data_groups) != set(authorization.data_groups):
        if not allow_group_edit:
            errors["data_groups"] = ("The information shared cannot be changed here; cancel this "
                                     "authorization and create a new one.")
        elif not data_groups:
            errors["data_groups"] = "Select at least one type of information to share."
        elif not set(data_groups) <= set(authorization.third_party.data_groups or []):
            errors["data_groups"] = "Only the information this company asked for can be shared."
        else:
            new_groups = [g for g in authorization.data_groups if g in data_groups] + [
                g for g in data_groups if g not in authorization.data_groups]
    new_end = duration.ends_at()
    if new_end != authorization.ends_at:
        errors.update(check_duration(duration, now))
        old_end = INDEFINITE_END if authorization.ends_at is None else authorization.ends_at
        if end_date_edit == "extend_only" and (INDEFINITE_END if new_end is None else new_end) < old_end:
            errors.setdefault("end_date", "The end date can only be extended.")
    if errors:
        raise ConsentInvalid(errors)
    if not keep:
        _cancel(db, authorization, now, resource_base)
        return EditOutcome(changed=True, cancelled=True)
    changed = False
    if set(keep) != set(current):
        authorization.service_agreements = [current[i] for i in current if i in keep]
        changed = True
    if new_end != authorization.ends_at:
        authorization.ends_at = new_end
        changed = True
    if new_groups != list(authorization.data_groups):
        authorization.data_groups = new_groups
        changed = True
    if changed:
        authorization.updated_at = now
        notify_authorization_change(db, authorization, now, resource_base)
    return EditOutcome(changed=changed, cancelled=False)


def remove_service_agreement(db: Session, service_agreement_id: int, now: float, resource_base: str) -> list[int]:
    """An SA closed (move-out, change of company) or its account unlinked: it leaves every live
    authorization, each of which is notified; one left without SAs is cancelled. Returns their IDs."""
    affected = []
    rows = db.execute(select(Authorization).where(Authorization.kind.in_(CUSTOMER_KINDS))).scalars()
    for authorization in rows:
        if not is_live(authorization, now):
            continue
        remaining = [sa for sa in authorization.service_agreements if sa.id != service_agreement_id]
        if len(remaining) == len(authorization.service_agreements):
            continue
        affected.append(authorization.id)
        if not remaining:
            _cancel(db, authorization, now, resource_base)
            continue
        authorization.service_agreements = remaining
        authorization.updated_at = now
        notify_authorization_change(db, authorization, now, resource_base)
    return affected


def revoke_by_third_party(db: Session, tp: ThirdParty, authorization_id: int | str, now: float,
                          resource_base: str, notify: bool = False) -> Authorization:
    """``DELETE R/Authorization/{id}`` and the portal's revoke (spec 8.4): immediate and irreversible.

    Unknown ID: 404. Another client's, or a bulk/registration entry: 403. Already inactive: no change.
    The customer is e-mailed; the TP is notified only when ``notify`` (``notify_on_tp_revoke``).
    """
    try:
        key = int(str(authorization_id))
    except ValueError:
        raise NotFound() from None
    authorization = db.get(Authorization, key)
    if authorization is None:
        raise NotFound()
    if authorization.third_party_id != tp.id:
        raise Forbidden("The authorization belongs to another client")
    if authorization.kind not in CUSTOMER_KINDS:
        raise Forbidden("Only a customer authorization can be revoked", "insufficient_scope")
    if not is_live(authorization, now):
        return authorization
    _end_now(db, authorization, now, REVOKED_BY_THIRD_PARTY)
    if notify:
        notify_authorization_change(db, authorization, now, resource_base)
    customer = authorization.customer
    _email(db, customer.email if customer else None,
           f"Share My Data: {tp.display_name} ended its access to your data",
           f"{tp.display_name} has revoked your authorization. It no longer receives your PG&E data.\n\n"
           + _describe(authorization), now)
    return authorization


def revoke_all_for_third_party(db: Session, tp: ThirdParty, now: float) -> list[int]:
    """Registration terminated (spec 5.2): every authorization ends now and every token dies."""
    ended = []
    for authorization in db.execute(select(Authorization).where(Authorization.third_party_id == tp.id)).scalars():
        if is_live(authorization, now):
            _end_now(db, authorization, now, TERMINATED)
            ended.append(authorization.id)
    db.execute(update(Token).where(Token.third_party_id == tp.id, Token.revoked_at.is_(None)).values(revoked_at=now))
    return ended
