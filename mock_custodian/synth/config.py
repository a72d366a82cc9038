"""The plain description of one service agreement's metering, as scenario files give it.

A scenario loader builds one :class:`ServiceAgreementModel` per SA with
:meth:`ServiceAgreementModel.from_dict`; everything the data engine computes
(interval values, blocks, bills) is a pure function of this object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from mock_custodian.synth.localtime import day_start
from mock_custodian.synth.rates import RATE_SCHEDULES
from mock_custodian.synth.shaped import ShapeSpec, parse_shape
from mock_custodian.synth.tou import TOU_CALENDARS
from mock_custodian.synth.weather import CLIMATE_ZONES

if TYPE_CHECKING:
    from mock_custodian.synth.recorded import Recording

PROFILE_NAMES = (
    "residential_hourly",
    "commercial_15min",
    "solar_net_metered",
    "ev_charging",
    "gas_daily",
    "non_interval",
)
#: Profiles made from the scenario's own numbers or files (issue 19): ``shaped`` needs a ``shape``,
#: ``recorded`` a recording; the built-in names above need nothing more.
OWN_DATA_PROFILES = ("shaped", "recorded")
ALL_PROFILES = PROFILE_NAMES + OWN_DATA_PROFILES
CUSTOMER_CLASSES = ("RES", "AGR", "COM/IND", "OTHER")
VOLTAGES = ("secondary", "primary")

#: Per-profile defaults for keys a scenario may leave out.
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "residential_hourly": dict(commodity="electric", scale=6000.0, interval_length=3600, rate_schedule="E-1"),
    "commercial_15min": dict(
        commodity="electric", scale=150_000.0, interval_length=900, rate_schedule="B-19", customer_class="COM/IND"
    ),
    "solar_net_metered": dict(
        commodity="electric", scale=7000.0, interval_length=900, rate_schedule="E-TOU-C", flow_directions=(1, 19)
    ),
    "ev_charging": dict(commodity="electric", scale=9000.0, interval_length=3600, rate_schedule="EV2-A"),
    "gas_daily": dict(commodity="gas", scale=400.0, interval_length=86400, rate_schedule="G-1"),
    "non_interval": dict(commodity="electric", scale=5000.0, interval_length=None, rate_schedule="E-1"),
    "shaped": dict(commodity="electric", scale=6000.0, interval_length=3600, rate_schedule="E-1"),
    "recorded": dict(commodity="electric", scale=6000.0, interval_length=3600, rate_schedule="E-1"),
}

DEFAULT_SA_START = 1577865600  # 2020-01-01T00:00:00-08:00
_READ_CYCLES = "ABCDEFGHJKLMNPQRSTVWXYZ"


def _epoch(value: Any) -> Any:
    """Accept an epoch, a date (local midnight), an aware datetime or an ISO string for ``sa_start``."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("sa_start: a datetime needs a time zone")
        return int(value.timestamp())
    if isinstance(value, date):
        return day_start(value)
    if isinstance(value, str):
        try:
            return _epoch(datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value
                          else date.fromisoformat(value))
        except ValueError:
            raise ValueError(f"sa_start: {value!r} is not an epoch, date or ISO timestamp") from None
    return value


@dataclass(frozen=True)
class ServiceAgreementModel:
    """Metering configuration of one SA (one UsagePoint). JSON-serialisable via :meth:`to_dict`."""

    usage_point_id: str
    profile: str = "residential_hourly"
    commodity: str = "electric"
    scale: float = 6000.0
    seed: int = 0
    interval_length: int | None = 3600
    meters: int = 1
    flow_directions: tuple[int, ...] = (1,)
    tou: bool = False
    tou_calendar: str = "standard"
    rate_schedule: str = "E-1"
    read_cycle: str = "A"
    voltage: str = "secondary"
    customer_class: str = "RES"
    mv90: bool = False
    climate_zone: int = 12
    sa_start: int = DEFAULT_SA_START
    #: solar only: annual PV production (kWh); default 85 % of scale
    pv_scale: float | None = None
    #: EV only: annual EV charging energy (kWh), part of scale; default 35 % of scale
    ev_scale: float | None = None
    #: shaped, or a built-in electric interval profile: the scenario's own 24-hour shapes (synth.shaped)
    shape: Any = None
    #: recorded only: content digest of the replayed readings (stored once in the database)
    recording: str | None = None
    #: recorded only: days outside the recording continue its pattern ("continue") or have no data ("none")
    recording_outside: str = "continue"
    #: recorded only: the decoded readings, attached by the store when the SA is served (not serialised)
    recorded: Recording | None = field(default=None, compare=False, repr=False)
    #: seed of the weather (temperatures, clouds); None: ``seed``. A generated population shares one, so
    #: neighbours see the same weather and the yearly normalisers are computed once per climate zone.
    weather_seed: int | None = None

    @property
    def weather(self) -> int:
        """The seed the weather functions use."""
        return self.seed if self.weather_seed is None else self.weather_seed

    # ----------------------------------------------------------------- derived
    @property
    def is_interval(self) -> bool:
        return self.interval_length is not None

    @property
    def uom(self) -> int:
        return 169 if self.commodity == "gas" else 72

    @property
    def reading_quality(self) -> int:
        """Quality of normal readings (§7.7): 14 for MV90 meters, else 17."""
        return 14 if self.mv90 else 17

    @property
    def espi_commodity(self) -> int:
        """ReadingType/UsageSummary commodity: 1 secondary, 2 primary voltage, 7 gas."""
        if self.commodity == "gas":
            return 7
        return 2 if self.voltage == "primary" else 1

    @property
    def billed_flow_direction(self) -> int:
        """Flow direction of the billed-total ReadingType (§7.4): 4 electric, 1 gas."""
        return 1 if self.commodity == "gas" else 4

    @property
    def effective_pv_scale(self) -> float:
        return self.pv_scale if self.pv_scale is not None else 0.85 * self.scale

    @property
    def effective_ev_scale(self) -> float:
        return self.ev_scale if self.ev_scale is not None else 0.35 * self.scale

    # ------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = False) -> ServiceAgreementModel:
        """Build and validate from a scenario mapping; unspecified keys get per-profile defaults.

        Unknown keys are ignored (a scenario SA carries customer data too) unless
        ``strict``. Raises ``ValueError`` naming the offending key.
        """
        if not isinstance(data, Mapping):
            raise ValueError("service agreement: expected a mapping")
        known = {f.name for f in fields(cls)}
        if strict:
            unknown = sorted(set(data) - known)
            if unknown:
                raise ValueError(f"{unknown[0]}: unknown service agreement key")
        if "usage_point_id" not in data:
            raise ValueError("usage_point_id: required")
        profile = data.get("profile", "residential_hourly")
        if profile not in ALL_PROFILES:
            raise ValueError(f"profile: {profile!r} is not one of {', '.join(ALL_PROFILES)}")
        values: dict[str, Any] = dict(PROFILE_DEFAULTS[profile])
        values.update({k: v for k, v in data.items() if k in known})
        values["profile"] = profile
        if "sa_start" in values:
            values["sa_start"] = _epoch(values["sa_start"])
        if "meters" in values and isinstance(values["meters"], list | tuple):
            values["meters"] = len(values["meters"])
        if "flow_directions" in values and isinstance(values["flow_directions"], list | int):
            fd = values["flow_directions"]
            values["flow_directions"] = tuple(fd) if isinstance(fd, list) else (fd,)
        if "tou" not in data:
            rate = RATE_SCHEDULES.get(values.get("rate_schedule", ""))
            values["tou"] = bool(rate and rate.tou and values.get("interval_length") is not None)
        if "read_cycle" not in data:
            up = str(values["usage_point_id"])
            values["read_cycle"] = _READ_CYCLES[int(up) % len(_READ_CYCLES)] if up.isdigit() else "A"
        if isinstance(values.get("shape"), Mapping):
            values["shape"] = parse_shape(values["shape"])
        if "customer_class" not in data and values.get("commodity") == "gas" and profile == "gas_daily":
            values["customer_class"] = "RES"
        sa = cls(**values)
        sa.validate()
        return sa

    def attached_recording(self) -> Recording:
        """A recorded SA's readings, which the store attaches when it serves the SA (never serialised)."""
        if self.recorded is None:
            raise ValueError(f"{self.usage_point_id}: recording {self.recording} is not attached to the SA model")
        return self.recorded

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready mapping that :meth:`from_dict` accepts back unchanged."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "recorded"}
        d["flow_directions"] = list(self.flow_directions)
        if self.shape is not None:
            d["shape"] = self.shape.to_dict()
        return d

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent field."""

        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"{name}: {why} (got {getattr(self, name)!r})")

        if not isinstance(self.usage_point_id, str) or not re.fullmatch(r"\d{10}", self.usage_point_id):
            raise bad("usage_point_id", "must be a 10-digit string")
        if self.profile not in ALL_PROFILES:
            raise bad("profile", f"must be one of {', '.join(ALL_PROFILES)}")
        if self.commodity not in ("electric", "gas"):
            raise bad("commodity", "must be 'electric' or 'gas'")
        if self.profile == "gas_daily" and self.commodity != "gas":
            raise bad("commodity", "gas_daily is a gas profile")
        if self.profile not in ("gas_daily", "non_interval", "recorded") and self.commodity != "electric":
            raise bad("commodity", f"{self.profile} is an electric profile")
        if isinstance(self.scale, bool) or not isinstance(self.scale, int | float) or not self.scale > 0:
            raise bad("scale", "must be a positive number (annual kWh, or therms for gas)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise bad("seed", "must be an integer")
        if self.weather_seed is not None and (isinstance(self.weather_seed, bool)
                                              or not isinstance(self.weather_seed, int)):
            raise bad("weather_seed", "must be an integer or null")
        expected_length = {
            "residential_hourly": (3600, 900),
            "commercial_15min": (900, 3600),
            "solar_net_metered": (900, 3600),
            "ev_charging": (3600, 900),
            "gas_daily": (86400,),
            "non_interval": (None,),
            "shaped": (3600, 900),
            "recorded": (300, 900, 1800, 3600, 86400),
        }[self.profile]
        if self.interval_length not in expected_length:
            allowed = " or ".join("null" if x is None else str(x) for x in expected_length)
            raise bad("interval_length", f"must be {allowed} for profile {self.profile}")
        if isinstance(self.meters, bool) or not isinstance(self.meters, int) or not 1 <= self.meters <= 99:
            raise bad("meters", "must be an integer from 1 to 99")
        fd = self.flow_directions
        if not isinstance(fd, tuple) or not fd or len(set(fd)) != len(fd) or any(f not in (1, 4, 19) for f in fd):
            raise bad("flow_directions", "must be a non-empty list drawn from 1, 19 and 4 without repeats")
        if self.commodity == "gas" and fd != (1,):
            raise bad("flow_directions", "gas meters read flow direction 1 only")
        if 19 in fd and self.profile not in ("solar_net_metered", "recorded"):
            raise bad("flow_directions", "received energy (19) needs the solar_net_metered profile")
        if self.tou not in (True, False):
            raise bad("tou", "must be true or false")
        if self.tou and (self.commodity == "gas" or not self.is_interval):
            raise bad("tou", "TOU codes apply to interval-metered electric SAs only")
        if self.tou_calendar not in TOU_CALENDARS:
            raise bad("tou_calendar", f"must be one of {', '.join(TOU_CALENDARS)}")
        rate = RATE_SCHEDULES.get(self.rate_schedule)
        if rate is None:
            raise bad("rate_schedule", f"must be one of {', '.join(RATE_SCHEDULES)}")
        if rate.commodity != self.commodity:
            raise bad("rate_schedule", f"is a {rate.commodity} schedule but the SA is {self.commodity}")
        if rate.tou and not self.is_interval:
            raise bad("rate_schedule", "a TOU schedule needs interval metering")
        if not isinstance(self.read_cycle, str) or not re.fullmatch(r"[A-Z]", self.read_cycle):
            raise bad("read_cycle", "must be one capital letter A-Z")
        if self.voltage not in VOLTAGES:
            raise bad("voltage", "must be 'secondary' or 'primary'")
        if self.customer_class not in CUSTOMER_CLASSES:
            raise bad("customer_class", f"must be one of {', '.join(CUSTOMER_CLASSES)}")
        if self.mv90 not in (True, False):
            raise bad("mv90", "must be true or false")
        if self.climate_zone not in CLIMATE_ZONES:
            raise bad("climate_zone", "must be a California climate zone 1-16")
        if isinstance(self.sa_start, bool) or not isinstance(self.sa_start, int) or self.sa_start < 0:
            raise bad("sa_start", "must be an epoch second")
        if self.pv_scale is not None and (self.profile != "solar_net_metered" or not self.pv_scale >= 0):
            raise bad("pv_scale", "only for solar_net_metered, and non-negative")
        self._validate_own_data(bad)
        if self.ev_scale is not None and (
            self.profile != "ev_charging" or not 0 <= self.ev_scale < self.scale
        ):
            raise bad("ev_scale", "only for ev_charging, and below scale")

    def _validate_own_data(self, bad: Any) -> None:
        """Shaped and recorded profiles (issue 19)."""
        if self.profile == "shaped" and self.shape is None:
            raise ValueError("shape: the shaped profile needs a shape (24-hour shapes per day type)")
        if self.shape is not None:
            if not isinstance(self.shape, ShapeSpec):
                raise ValueError("shape: expected a mapping of 24-hour shapes")
            if self.profile in ("gas_daily", "non_interval", "recorded"):
                raise ValueError(f"shape: a shape applies to electric interval profiles, not {self.profile}")
        if self.profile == "recorded":
            if not isinstance(self.recording, str) or not self.recording:
                raise bad("recording", "a recorded SA needs the digest of its recording")
            if self.recording_outside not in ("continue", "none"):
                raise bad("recording_outside", "must be 'continue' or 'none'")
        elif self.recording is not None:
            raise bad("recording", "only the recorded profile replays a recording")
