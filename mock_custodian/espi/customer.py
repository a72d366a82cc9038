"""The customer feed of §7.12 in ``http://naesb.org/espi/customer``, gated by the granted data groups.

Element names follow retailcustomer.xsd, which the output must validate against:
the customer's name and the account number sit in the schema's ``name``
element (the spec's suggested ``customerName``/``accountId`` do not exist in
the schema), and the billing address in ``contactInfo/postalAddress``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from mock_custodian.espi.atom import CUSTOMER_FEED_TITLE, CUSTOMER_NS, coalesce, entry, feed_head, path_segment, text
from mock_custodian.espi.usage import Time

GROUPS = ("Usage", "Billing", "Basic", "Account", "ProgramEnrollment")


@dataclass(frozen=True)
class Address:
    street: str
    city: str
    zip_code: str
    state: str = "CA"


@dataclass(frozen=True)
class MeterInfo:
    serial_number: str
    meter_type: str = "SmartMeter"
    interval_length: int | None = 3600


@dataclass(frozen=True)
class DemandResponseEnrollment:
    """One DR program of an SA; dates are epoch seconds or None."""

    program_name: str
    enrollment_status: str = "enrolled"  # enrolled / unenrolled / enrolledPending
    enrollment_date: int | None = None
    de_enrollment_date: int | None = None
    term_date_without_financial: int | None = None
    term_date_regardless_financial: int | None = None


@dataclass(frozen=True)
class AgreementInfo:
    """One SA as the customer feed shows it.

    ``agreement_id`` identifies the CustomerAgreement entry and what hangs under it (meters, DR programs);
    ``usage_point_id`` names the agreement in the path of its ServiceLocation when the address is shared.
    """

    usage_point_id: str
    sa_number: str
    customer_class: str
    sign_date: int
    premise_number: str
    service_address: Address
    status: str = "Active"
    meters: Sequence[MeterInfo] = ()
    dr_programs: Sequence[DemandResponseEnrollment] = ()
    agreement_id: str = ""  # default: a stable 10-digit key derived from the SA number

    @property
    def agreement_key(self) -> str:
        if self.agreement_id and self.agreement_id != self.usage_point_id:
            return self.agreement_id
        digest = hashlib.blake2b(f"agreement|{self.sa_number}".encode(), digest_size=8).digest()
        key = f"{int.from_bytes(digest, 'big') % 10**10:010d}"
        return key if key != self.usage_point_id else key[::-1]


@dataclass(frozen=True)
class AccountInfo:
    account_number: str
    agreements: Sequence[AgreementInfo]
    billing_address: Address | None = None


@dataclass(frozen=True)
class CustomerInfo:
    customer_number: str
    name: str
    accounts: Sequence[AccountInfo]


@dataclass(frozen=True)
class CustomerFeedItem:
    """One authorization's customer data: its RetailCustomerID, the customer and the granted groups."""

    retail_customer_id: str
    customer: CustomerInfo
    groups: Collection[str] = field(default_factory=lambda: ("Basic", "Account", "ProgramEnrollment"))


def masked_sa(sa_number: str) -> str:
    """``******`` followed by the last four digits (§1.3)."""
    return "******" + sa_number[-4:]


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def account_surrogate(retail_customer_id: str, account_number: str) -> str:
    """A stable opaque 10-digit id used in place of an account number that was not shared."""
    digest = hashlib.blake2b(f"{retail_customer_id}|{account_number}".encode(), digest_size=8).digest()
    return f"{int.from_bytes(digest, 'big') % 10**10:010d}"


def _address(tag: str, a: Address) -> str:
    return (f"<ns0:{tag}><ns0:streetDetail><ns0:addressGeneral>{text(a.street)}</ns0:addressGeneral></ns0:streetDetail>"
            f"<ns0:townDetail><ns0:code>{text(a.zip_code)}</ns0:code><ns0:name>{text(a.city)}</ns0:name>"
            f"<ns0:stateOrProvince>{text(a.state)}</ns0:stateOrProvince></ns0:townDetail></ns0:{tag}>")


def _content(tag: str, inner: str) -> str:
    return f'<ns0:{tag} xmlns:ns0="{CUSTOMER_NS}">{inner}</ns0:{tag}>'


def customer_entries(item: CustomerFeedItem, *, resource_base: str, published: Time, updated: Time,
                     dr_only: bool = False, style: str = "pge") -> Iterator[bytes]:
    """Entries for one authorization, in order Customer, CustomerAccount, then per SA: CustomerAgreement,
    ServiceLocation, Meter(s), DemandResponseProgram(s). ``dr_only`` keeps DR entries only (RetailDRPrgInfo).

    The shape production clients rely on (spec 7.12, issue 20): they take each entry's first link naming
    ``CustomerAgreement/<digits>`` and, when the digits are a UsagePoint id of the subscription, read
    ``content/ServiceLocation/mainAddress/streetDetail/addressGeneral`` without checking it exists. So the
    UsagePoint id follows ``CustomerAgreement/`` only in the links of a ServiceLocation entry that carries
    its address (Basic granted); the CustomerAgreement entry, its meters and DR programs, and an
    address-less ServiceLocation use the agreement key instead.
    """
    g = set(item.groups)
    basic, account, enrollment = "Basic" in g, "Account" in g, "ProgramEnrollment" in g
    c = item.customer

    def make(self_href: str, up: str, content: str, related: Sequence[str] = ()) -> bytes:
        return entry(self_href=self_href, up_href=up, content=content, related=related, published=published,
                     updated=updated, style=style)

    customers = f"{resource_base}/RetailCustomer/{item.retail_customer_id}/Customer"
    customer_href = f"{customers}/{path_segment(_b64(c.customer_number))}"
    if not dr_only:
        yield make(customer_href, customers, _content("Customer", f"<ns0:name>{text(c.name[:64])}</ns0:name>"
                                                      if basic else ""))
    for acct in c.accounts:
        accounts = f"{customer_href}/CustomerAccount"
        acct_id = acct.account_number if account else account_surrogate(item.retail_customer_id, acct.account_number)
        acct_href = f"{accounts}/{path_segment(acct_id)}"
        if not dr_only:
            inner = f"<ns0:name>{text(acct.account_number)}</ns0:name>" if account else ""
            if enrollment and acct.billing_address is not None:
                inner += f"<ns0:contactInfo>{_address('postalAddress', acct.billing_address)}</ns0:contactInfo>"
            yield make(acct_href, accounts, _content("CustomerAccount", inner))
        for agr in acct.agreements:
            agreements = f"{acct_href}/CustomerAgreement"
            agr_href = f"{agreements}/{agr.agreement_key}"
            if not dr_only:
                inner = (f"<ns0:name>{text(agr.sa_number if account else masked_sa(agr.sa_number))}</ns0:name>"
                         f"<ns0:type>{text(agr.customer_class)}</ns0:type>")
                if enrollment:
                    inner += f"<ns0:status><ns0:value>{text(agr.status)}</ns0:value></ns0:status>"
                if account:
                    inner += f"<ns0:signDate>{agr.sign_date:d}</ns0:signDate>"
                yield make(agr_href, agreements, _content("CustomerAgreement", inner))
                location_id = path_segment(_b64(agr.premise_number))
                located_under = f"{agreements}/{agr.usage_point_id}" if basic else agr_href
                locations = f"{located_under}/ServiceLocation"
                devices = f"{agr_href}/ServiceLocation/{location_id}/EndDevice"
                yield make(f"{locations}/{location_id}", locations,
                           _content("ServiceLocation", _address("mainAddress", agr.service_address) if basic else ""),
                           related=(devices,))
                if enrollment:
                    for meter in agr.meters:
                        inner = (f"<ns0:type>{text(meter.meter_type)}</ns0:type>"
                                 f"<ns0:serialNumber>{text(meter.serial_number)}</ns0:serialNumber>")
                        if meter.interval_length is not None:
                            inner += f"<ns0:intervalLength>{meter.interval_length:d}</ns0:intervalLength>"
                        yield make(f"{devices}/{path_segment(_b64(meter.serial_number))}", devices,
                                   _content("Meter", inner))
            if enrollment:
                programs = f"{agr_href}/DemandResponseProgram"
                for n, dr in enumerate(agr.dr_programs, start=1):
                    yield make(f"{programs}/{n}", programs, _content("DemandResponseProgram", _dr_inner(dr)))


_DR_DATES = (
    ("enrollment_date", "CUST_DR_PROGRAM_ENROLLMENT_DATE"),
    ("de_enrollment_date", "CUST_DR_PROGRAM_DE_ENROLLMENT_DATE"),
    ("term_date_without_financial", "CUST_DR_PROGRAM_TERM_DATE_WITHOUT_FINANCIAL"),
    ("term_date_regardless_financial", "CUST_DR_PROGRAM_TERM_DATE_REGARDLESS_FINANCIAL"),
)


def _dr_inner(dr: DemandResponseEnrollment) -> str:
    parts = [f"<ns0:programName>{text(dr.program_name)}</ns0:programName>",
             f"<ns0:enrollmentStatus>{text(dr.enrollment_status)}</ns0:enrollmentStatus>"]
    for attr_name, description in _DR_DATES:
        value = getattr(dr, attr_name)
        if value is not None:
            parts.append(f"<ns0:programDate><ns0:programDate>{value:d}</ns0:programDate>"
                         f"<ns0:programDateDescription>{description}</ns0:programDateDescription></ns0:programDate>")
    return "".join(parts)


def customer_feed(
    items: Iterable[CustomerFeedItem],
    *,
    resource_base: str,
    self_href: str,
    now: Time,
    feed_id: str | None = None,
    dr_only: bool = False,
    style: str = "pge",
    chunk_size: int = 65536,
) -> Iterator[bytes]:
    """``Green Button Customer Feed`` for one (Batch/RetailCustomer) or many (BulkRetailCustomerInfo) authorizations."""

    def parts() -> Iterator[bytes]:
        yield feed_head(self_href=self_href, updated=now, title=CUSTOMER_FEED_TITLE, feed_id=feed_id)
        for item in items:
            yield from customer_entries(item, resource_base=resource_base, published=now, updated=now,
                                        dr_only=dr_only, style=style)
        yield b"</ns1:feed>"

    return coalesce(parts(), chunk_size)
