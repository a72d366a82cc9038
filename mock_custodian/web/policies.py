"""Settings turned into the plain policies the domain takes: built once per app (or per CLI command).

The domain never reads ``Settings``; these functions are the one place each policy is derived from it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from mock_custodian.domain.certificate_checks import TrustAnchors
from mock_custodian.domain.grants import TokenLifetimes
from mock_custodian.domain.packages import BuildOptions
from mock_custodian.domain.ratelimit import RateLimits
from mock_custodian.domain.registration_form import PortalPolicy
from mock_custodian.domain.scope import ScopeSpelling
from mock_custodian.pki import DevPKI
from mock_custodian.settings import Settings


def scope_spelling(settings: Settings) -> ScopeSpelling:
    """How scope strings are spelled (``scope_custodian_key``, ``scope_block_duration_value``)."""
    return ScopeSpelling(settings.scope_custodian_key, settings.scope_block_duration_value)


def token_lifetimes(settings: Settings) -> TokenLifetimes:
    return TokenLifetimes(settings.code_ttl, settings.access_token_ttl, settings.refresh_token_ttl)


def build_options(settings: Settings) -> BuildOptions:
    """How async packages are built: base URL, XML style, DST block duration, publication times."""
    return BuildOptions(settings.resolved_api_base_url(), settings.xml_style, settings.dst_block_duration,
                        settings.publish_time_local, int(settings.mv90_extra_delay_days))


def rate_limits(settings: Settings) -> RateLimits:
    """The limits a request is counted against (spec 6.7).

    ``rate_limit_profile`` production (default) lets token calls skip the per-second vendor bucket, as a
    production client's token-then-data pattern passes at PG&E; strict is the documents' literal
    reading, every call at ``rate_limit_vendor_per_second`` with a depth of 1.
    """
    strict = settings.rate_limit_profile == "strict"
    return RateLimits(
        vendor_per_second=settings.rate_limit_vendor_per_second,
        vendor_burst=1 if strict else settings.rate_limit_vendor_burst,
        client_per_hour=settings.rate_limit_client_per_hour,
        client_per_day=settings.rate_limit_client_per_day,
        day_reset_hour_local=settings.rate_limit_day_reset_hour,
    )


@lru_cache(maxsize=4)
def _anchors(trusted_ca_bundle: str | None, certs_dir: str, _mtime: float) -> TrustAnchors:
    """Parsed trust anchors, re-read when the bundle file changes (the mtime is part of the key)."""
    return TrustAnchors.for_settings(Path(trusted_ca_bundle) if trusted_ca_bundle else None, DevPKI(Path(certs_dir)))


def portal_policy(settings: Settings, pki: DevPKI, portal_base_url: str) -> PortalPolicy:
    """The Third Party Portal's registration rules as configured."""
    bundle = Path(settings.trusted_ca_bundle) if settings.trusted_ca_bundle else pki.ca_bundle
    mtime = bundle.stat().st_mtime if bundle.exists() else 0.0
    return PortalPolicy(
        anchors=_anchors(str(settings.trusted_ca_bundle) if settings.trusted_ca_bundle else None,
                         str(pki.directory), mtime),
        allow_self_signed=settings.allow_self_signed,
        client_auth_eku_policy=settings.client_auth_eku_policy,
        auto_accept=settings.auto_accept,
        review_delay=settings.review_delay,
        cert_activation_delay=settings.cert_activation_delay,
        portal_base_url=portal_base_url,
    )
