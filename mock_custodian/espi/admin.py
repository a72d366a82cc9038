"""Non-usage resources: ApplicationInformation (§5.6), Authorization (§8.1), ServiceStatus (§5.4), BatchList (§6.5)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mock_custodian.espi.atom import ESPI_NS, XSI_NS, entry, text
from mock_custodian.espi.usage import Time

PGE_AUTHORIZATION_SERVER = "https://api.pge.com"
PGE_AUTHORIZE_ENDPOINT = "https://sharemydata.pge.com/myAuthorization"
PGE_TOKEN_ENDPOINT = "https://api.pge.com/datacustodian/oauth/v2/token"
INDEFINITE_END = 253402300799  # 9999-12-31T23:59:59Z, PG&E's "indefinite"

#: The 31 ApplicationInformation elements in PG&E's order (``grant_types`` repeats three times).
APPLICATION_INFORMATION_ELEMENTS: tuple[str, ...] = (
    "dataCustodianId", "dataCustodianApplicationStatus", "thirdPartyApplicationDescription",
    "thirdPartyApplicationType", "thirdPartyPhone", "authorizationServerUri", "thirdPartyNotifyUri",
    "authorizationServerAuthorizationEndpoint", "authorizationServerTokenEndpoint", "dataCustodianBulkRequestURI",
    "dataCustodianResourceEndpoint", "thirdPartyScopeSelectionScreenURI", "thirdPartyUserPortalScreenURI",
    "client_secret", "client_name", "redirect_uri", "client_id", "software_id", "software_version",
    "client_id_issued_at", "client_secret_expires_at", "contacts", "token_endpoint_auth_method", "scope",
    "grant_types", "grant_types", "grant_types", "response_types", "registration_client_uri",
    "registration_access_token", "dataCustodianScopeSelectionScreenURI",
)

#: Values PG&E's platform always returns (§5.6 elements 1, 4, 6, 8, 9, 18, 19, 21, 23, 25-28).
APPLICATION_INFORMATION_DEFAULTS: dict[str, Any] = {
    "dataCustodianId": "PGE",
    "thirdPartyApplicationType": 1,
    "authorizationServerUri": PGE_AUTHORIZATION_SERVER,
    "authorizationServerAuthorizationEndpoint": PGE_AUTHORIZE_ENDPOINT,
    "authorizationServerTokenEndpoint": PGE_TOKEN_ENDPOINT,
    "software_id": "NA",
    "software_version": "NA",
    "client_secret_expires_at": 0,
    "token_endpoint_auth_method": "client_secret_basic",
    "grant_types": ("authorization_code", "client_credentials", "refresh_token"),
    "response_types": "code",
}


def application_information_content(info: Mapping[str, Any], *, application_information_id: str,
                                    resource_base: str) -> str:
    """``<ApplicationInformation xmlns="http://naesb.org/espi">`` with the 31 elements of §5.6, in order.

    ``info`` maps element names to values (the registration); PG&E's constant values,
    ``dataCustodianBulkRequestURI``, ``dataCustodianResourceEndpoint``,
    ``registration_client_uri`` and ``dataCustodianScopeSelectionScreenURI`` are
    filled in when absent. A missing required element raises ``ValueError``.
    """
    values: dict[str, Any] = dict(APPLICATION_INFORMATION_DEFAULTS)
    client_id = info.get("client_id")
    values["dataCustodianResourceEndpoint"] = resource_base
    values["registration_client_uri"] = f"{resource_base}/ApplicationInformation/{application_information_id}"
    if client_id is not None:
        values["dataCustodianBulkRequestURI"] = f"{resource_base}/Batch/Bulk/{client_id}"
        values["dataCustodianScopeSelectionScreenURI"] = f"{PGE_AUTHORIZE_ENDPOINT}/?clientId={client_id}"
    values.update(info)
    parts = [f'<ApplicationInformation xmlns="{ESPI_NS}">']
    grant_index = 0
    for name in APPLICATION_INFORMATION_ELEMENTS:
        if name not in values or values[name] is None:
            raise ValueError(f"{name}: missing ApplicationInformation value")
        value = values[name]
        if name == "grant_types":
            value = list(value)[grant_index]
            grant_index += 1
        elif name == "contacts" and not isinstance(value, str):
            parts.extend(f"<contacts>{text(v)}</contacts>" for v in value)
            continue
        parts.append(f"<{name}>{text(value)}</{name}>")
    parts.append("</ApplicationInformation>")
    return "".join(parts)


def application_information_entry(info: Mapping[str, Any], *, application_information_id: str,
                                  resource_base: str, published: Time, updated: Time, root: bool = True,
                                  style: str = "pge") -> bytes:
    """The ApplicationInformation entry; its title is ``client_name``."""
    return entry(
        self_href=f"{resource_base}/ApplicationInformation/{application_information_id}",
        up_href=f"{resource_base}/ApplicationInformation", title=str(info.get("client_name", "")),
        content=application_information_content(info, application_information_id=application_information_id,
                                                resource_base=resource_base),
        published=published, updated=updated, root=root, style=style,
    )


@dataclass(frozen=True)
class AuthorizationValues:
    """The content of one Authorization (§8.1); all instants are epoch seconds."""

    authorization_id: str
    authorized_start: int
    authorized_end: int  # INDEFINITE_END for indefinite
    published_start: int
    status: int
    scope: str
    resource_uri: str
    expires_at: int | None = None  # defaults to authorized_end
    customer_resource_uri: str | None = None
    published_end: int | None = None  # defaults to authorized_end


UINT32_MAX = 4294967295


def authorization_content(a: AuthorizationValues, authorization_uri: str, *, clamp_durations: bool = True) -> str:
    """Authorization elements in §8.1 order; every date in epoch seconds.

    ESPI types ``duration`` as UInt32, so an indefinite period (ending 9999-12-31)
    cannot validate; with ``clamp_durations`` (default) durations are capped at
    2**32-1 s (~136 years) while ``expires_at`` keeps PG&E's 253402300799.
    """
    published_end = a.authorized_end if a.published_end is None else a.published_end
    expires = a.authorized_end if a.expires_at is None else a.expires_at
    authorized_duration = a.authorized_end - a.authorized_start
    published_duration = published_end - a.published_start
    if clamp_durations:
        authorized_duration = min(authorized_duration, UINT32_MAX)
        published_duration = min(published_duration, UINT32_MAX)
    parts = [
        f'<ns0:Authorization xmlns:ns0="{ESPI_NS}">'
        f"<ns0:authorizedPeriod><ns0:duration>{authorized_duration:d}</ns0:duration>"
        f"<ns0:start>{a.authorized_start:d}</ns0:start></ns0:authorizedPeriod>"
        f"<ns0:publishedPeriod><ns0:duration>{published_duration:d}</ns0:duration>"
        f"<ns0:start>{a.published_start:d}</ns0:start></ns0:publishedPeriod>"
        f"<ns0:status>{a.status:d}</ns0:status><ns0:expires_at>{expires:d}</ns0:expires_at>"
        f"<ns0:scope>{text(a.scope)}</ns0:scope><ns0:token_type>Bearer</ns0:token_type>"
        f"<ns0:resourceURI>{text(a.resource_uri)}</ns0:resourceURI>"
        f"<ns0:authorizationURI>{text(authorization_uri)}</ns0:authorizationURI>"
    ]
    if a.customer_resource_uri:
        parts.append(f"<ns0:customerResourceURI>{text(a.customer_resource_uri)}</ns0:customerResourceURI>")
    parts.append("</ns0:Authorization>")
    return "".join(parts)


def authorization_entry(a: AuthorizationValues, *, resource_base: str, published: Time, updated: Time,
                        root: bool = False, style: str = "pge", clamp_durations: bool = True) -> bytes:
    """An Authorization entry: up ``R/Authorization``, self ``R/Authorization/{id}``, no title."""
    self_href = f"{resource_base}/Authorization/{a.authorization_id}"
    return entry(self_href=self_href, up_href=f"{resource_base}/Authorization", title=None,
                 content=authorization_content(a, self_href, clamp_durations=clamp_durations),
                 published=published, updated=updated, root=root, style=style)


def service_status_xml(current_status: int = 1) -> bytes:
    """ReadServiceStatus body exactly as §5.4 shows it (served as application/xml)."""
    return (f'<ServiceStatus xmlns="{ESPI_NS}" xmlns:xsi="{XSI_NS}" '
            f'xsi:schemaLocation="{ESPI_NS} espiDerived.xsd"><currentStatus>{current_status:d}</currentStatus>'
            "</ServiceStatus>").encode()


def batch_list_xml(resources: Iterable[str]) -> bytes:
    """Notification body (§6.5): one ``resources`` per package URL, ``&`` escaped."""
    body = "".join(f"<ns0:resources>{text(url)}</ns0:resources>" for url in resources)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ns0:BatchList xmlns:ns0="{ESPI_NS}">{body}'
            "</ns0:BatchList>").encode()


__all__ = [
    "APPLICATION_INFORMATION_DEFAULTS",
    "APPLICATION_INFORMATION_ELEMENTS",
    "INDEFINITE_END",
    "UINT32_MAX",
    "AuthorizationValues",
    "application_information_content",
    "application_information_entry",
    "authorization_content",
    "authorization_entry",
    "batch_list_xml",
    "service_status_xml",
]
