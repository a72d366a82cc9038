"""The job worker's settings, read once and checked, so a typo fails at start rather than at 07:00."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mock_custodian.domain.packages import BuildOptions
from mock_custodian.pki import DevPKI
from mock_custodian.settings import Settings

HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class WorkerConfig:
    """Everything the worker needs besides the database: paths, delivery rules, schedule."""

    packages_dir: Path
    api_base_url: str
    notify_timeout_s: float
    retry_minutes: tuple[float, ...]
    verify: bool | str  # requests' verify: False, or the trust bundle path
    client_cert: tuple[str, str] | None  # (chain, key) of the data custodian
    daily_hour: int
    daily_minute: int
    package_ttl_days: float
    max_subscriptions: int
    build_options: BuildOptions  # how daily packages are written (batch jobs carry their own)

    @classmethod
    def from_settings(cls, settings: Settings, api_base_url: str | None = None) -> WorkerConfig:
        """Check and convert; raises ValueError naming the setting at fault."""
        data_dir = settings.resolved_data_dir()
        pki = DevPKI(data_dir / "certs")
        try:
            retry = tuple(float(x) for x in settings.notify_retry_minutes)
        except (TypeError, ValueError):
            raise ValueError(f"notify_retry_minutes must be numbers of minutes, e.g. 1,5,15 (got "
                             f"{settings.notify_retry_minutes!r})") from None
        if any(x < 0 for x in retry):
            raise ValueError("notify_retry_minutes must not be negative")
        match = HHMM.match(str(settings.daily_package_time).strip())
        if not match:
            raise ValueError(f"daily_package_time must be HH:MM local time (got {settings.daily_package_time!r})")
        if settings.notify_timeout_s <= 0:
            raise ValueError("notify_timeout_s must be positive")
        if settings.package_ttl_days <= 0:
            raise ValueError("package_ttl_days must be positive")
        if settings.package_max_subscriptions < 1:
            raise ValueError("package_max_subscriptions must be at least 1")
        if settings.bulk_retrieval_token not in ("cat", "either"):
            raise ValueError(f"bulk_retrieval_token must be cat or either (got {settings.bulk_retrieval_token!r})")
        verify: bool | str = False
        if settings.notify_verify_tls:
            bundle = Path(settings.notify_trust_bundle) if settings.notify_trust_bundle else pki.ca_bundle
            if settings.notify_trust_bundle and not bundle.is_file():
                raise ValueError(f"notify_trust_bundle {bundle} is not a file of PEM certificates")
            verify = str(bundle)
        client_cert = None
        if settings.notify_client_cert:
            files = pki.data_custodian_files()
            client_cert = (str(files.chain), str(files.key))
        return cls(
            packages_dir=data_dir / "packages",
            api_base_url=(api_base_url or settings.resolved_api_base_url()).rstrip("/"),
            notify_timeout_s=float(settings.notify_timeout_s),
            retry_minutes=retry,
            verify=verify,
            client_cert=client_cert,
            daily_hour=int(match.group(1)),
            daily_minute=int(match.group(2)),
            package_ttl_days=float(settings.package_ttl_days),
            max_subscriptions=int(settings.package_max_subscriptions),
            build_options=BuildOptions(
                (api_base_url or settings.resolved_api_base_url()).rstrip("/"), settings.xml_style,
                settings.dst_block_duration, settings.publish_time_local, int(settings.mv90_extra_delay_days)),
        )
