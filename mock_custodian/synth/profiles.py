"""Meter profiles: believable load shapes whose values are a pure function of their inputs.

Every interval value depends only on (scenario seed, usage point, meter index,
channel, interval start). Randomness comes from hashing those values, never
from stored tables or global RNG state, so overlapping requests agree and
reruns are byte-identical.

How a day's values are made (units: Wh x 10^-3, or therms x 10^-3 for gas):

1. A daily energy from the climate zone's synthetic weather, weekday/weekend
   and a weekly "occupancy" permutation, normalised analytically so that each
   local calendar year sums to the configured ``scale`` (the normaliser is a
   sum over the year's weather, cached per seed, zone and year).
2. An intraday shape (fractions summing to 1 over the day's actual intervals,
   so 23- and 25-hour days are handled) per component: base, cooling, heating.
3. Multiplicative mean-one noise per interval from one ``shake_128`` digest of
   (seed, usage point, meter, channel, local day start); the interval's index in
   its day is a function of its start, so each value is still a function of
   the interval start alone.
"""

from __future__ import annotations

import hashlib
import math
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.synth.localtime import business_holidays, day_bounds, seconds_of_day
from mock_custodian.synth.recorded import served_day
from mock_custodian.synth.shaped import expected_values as shaped_expected
from mock_custodian.synth.shaped import reshape
from mock_custodian.synth.weather import LONGITUDE, clearness, degree_days, latitude

_BIG_ENDIAN = sys.byteorder == "big"


# --------------------------------------------------------------------------- hashing
def _digest(*parts: object, size: int = 16) -> bytes:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=size).digest()


def _noise_words(seed: int, usage_point_id: str, meter: int, channel: str, day_start: int, n: int) -> array:
    """n little-endian 16-bit words, uniform on 0..65535, for one channel-day."""
    words = array("H")
    words.frombytes(hashlib.shake_128(b"%d|%s|%d|%s|%d" % (
        seed, usage_point_id.encode(), meter, channel.encode(), day_start)).digest(2 * n))
    if _BIG_ENDIAN:  # pragma: no cover - keep values identical on any hardware
        words.byteswap()
    return words


def _apply_noise(expected: list[float] | tuple[float, ...], words: array, amplitude: float) -> list[int]:
    """int(x * f) with f uniform on [1-a, 1+a] (exact mean 1): keeps calibrated energy unbiased."""
    lo = 1.0 - amplitude
    step = 2.0 * amplitude / 65535.0
    return [int(x * (lo + step * w)) for x, w in zip(expected, words, strict=False)]


# --------------------------------------------------------------------------- calendar helpers
def _is_off_day(day: date, commercial: bool) -> bool:
    return day.weekday() >= 5 or (commercial and day in business_holidays(day.year))


def _year_days(year: int) -> list[date]:
    d, out = date(year, 1, 1), []
    while d.year == year:
        out.append(d)
        d += timedelta(days=1)
    return out


@lru_cache(maxsize=4096)
def _climate_sums(seed: int, zone: int, year: int, commercial: bool) -> tuple[float, ...]:
    """(n_on, n_off, hdd_on, hdd_off, cdd_on, cdd_off) over a year: the analytic normaliser's inputs."""
    s = [0.0] * 6
    for day in _year_days(year):
        off = _is_off_day(day, commercial)
        hdd, cdd = degree_days(seed, zone, day)
        s[off] += 1
        s[2 + off] += hdd
        s[4 + off] += cdd
    return tuple(s)


# --------------------------------------------------------------------------- shapes
def _bump(hour: float, centre: float, width: float) -> float:
    d = (hour - centre + 12.0) % 24.0 - 12.0
    return math.exp(-0.5 * (d / width) ** 2)


@lru_cache(maxsize=2048)
def _shape(fn_key: tuple, day_length: int, interval_length: int) -> tuple[float, ...]:
    """Fractions (summing to 1) of a component's daily energy per interval, from a shape function.

    ``fn_key`` = (shape name, *parameters); evaluated at each interval's local midpoint.
    """
    fn = _SHAPES[fn_key[0]]
    if interval_length >= 86400:
        return (1.0,)
    raw = [fn((sod + interval_length / 2) / 3600.0, *fn_key[1:]) for sod in seconds_of_day(day_length, interval_length)]
    total = sum(raw)
    return tuple(x / total for x in raw)


def _residential_base(h: float, morning: float, evening: float, off_day: bool) -> float:
    if off_day:
        return 0.32 + 0.55 * _bump(h, morning + 1.5, 2.0) + 0.35 * _bump(h, 13.0, 3.0) + 0.95 * _bump(h, evening, 2.4)
    return 0.30 + 0.65 * _bump(h, morning, 1.2) + 0.12 * _bump(h, 13.0, 3.0) + 1.0 * _bump(h, evening, 2.2)


def _cooling(h: float) -> float:
    return 0.05 + _bump(h, 17.5, 3.0)


def _heating(h: float, morning: float, evening: float) -> float:
    return 0.15 + _bump(h, morning, 1.5) + 0.8 * _bump(h, evening + 1.0, 2.5)


def _commercial_base(h: float, open_h: float, close_h: float, off_day: bool, off_level: float) -> float:
    if off_day:
        return off_level
    ramp_up = 1.0 / (1.0 + math.exp(-(h - open_h) * 3.0))
    ramp_down = 1.0 / (1.0 + math.exp((h - close_h) * 3.0))
    return 0.35 + 0.65 * ramp_up * ramp_down


def _commercial_cooling(h: float, open_h: float, close_h: float) -> float:
    return 0.1 + _bump(h, (open_h + close_h) / 2 + 2.0, 3.0)


_SHAPES: dict[str, Callable[..., float]] = {
    "res": _residential_base,
    "cool": _cooling,
    "heat": _heating,
    "com": _commercial_base,
    "comcool": _commercial_cooling,
}


# --------------------------------------------------------------------------- per-meter personality
@dataclass(frozen=True)
class _Persona:
    morning: float
    evening: float
    cool: float  # daily energy added per cooling degree day, relative to a mild day
    heat: float  # same per heating degree day
    open_h: float
    close_h: float
    off_level: float
    ev_power_kw: float


@lru_cache(maxsize=16384)
def _persona(seed: int, usage_point_id: str, meter: int, commercial: bool, gas: bool) -> _Persona:
    b = _digest(seed, usage_point_id, meter, "persona")
    if gas:
        heat = (0.06, 0.08, 0.10, 0.13)[b[3] % 4]
        return _Persona(7.0, 19.0, 0.0, heat, 0, 0, 0, 0)
    return _Persona(
        morning=(6.5, 7.0, 7.5, 8.0)[b[0] % 4],
        evening=(18.0, 18.5, 19.0, 19.5, 20.0)[b[1] % 5],
        cool=((0.02, 0.03, 0.04) if commercial else (0.0, 0.04, 0.08, 0.12))[b[2] % (3 if commercial else 4)],
        heat=((0.003, 0.008) if commercial else (0.005, 0.015, 0.03))[b[3] % (2 if commercial else 3)],
        open_h=(6.0, 7.0, 8.0)[b[4] % 3],
        close_h=(17.0, 18.0, 19.0, 20.0)[b[5] % 4],
        off_level=(0.38, 0.45, 0.55)[b[6] % 3],
        ev_power_kw=(6.6, 7.2, 9.6)[b[7] % 3],
    )


_OCCUPANCY_RES = (0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2)  # sums to 7: a weekly permutation keeps the mean
_OCCUPANCY_COM = (0.94, 0.97, 0.99, 1.0, 1.01, 1.03, 1.06)


@lru_cache(maxsize=2048)
def _week_order(seed: int, usage_point_id: str, meter: int, tag: str, week: int) -> tuple[int, ...]:
    """A hash-chosen permutation of 0..6 for one week (weeks counted from date ordinal 0)."""
    b = _digest(seed, usage_point_id, meter, tag, week)
    return tuple(sorted(range(7), key=lambda i: (b[i], i)))


def _occupancy(seed: int, usage_point_id: str, meter: int, day: date, commercial: bool) -> float:
    o = day.toordinal()
    order = _week_order(seed, usage_point_id, meter, "occ", o // 7)
    return (_OCCUPANCY_COM if commercial else _OCCUPANCY_RES)[order[o % 7]]


# --------------------------------------------------------------------------- daily energy
def _meter_share(sa: ServiceAgreementModel) -> float:
    return 1.0 / sa.meters


def _load_day_energy(
    sa: ServiceAgreementModel, meter: int, day: date, annual: float, commercial: bool
) -> tuple[float, float, float]:
    """(base, cooling, heating) energy of a load for one local day, in value units."""
    p = _persona(sa.seed, sa.usage_point_id, meter, commercial, False)
    n_on, n_off, hdd_on, hdd_off, cdd_on, cdd_off = _climate_sums(sa.weather, sa.climate_zone, day.year, commercial)
    w_off = p.off_level if commercial else 1.06
    norm = (n_on + w_off * n_off) + p.cool * (cdd_on + w_off * cdd_off) + p.heat * (hdd_on + w_off * hdd_off)
    hdd, cdd = degree_days(sa.weather, sa.climate_zone, day)
    w = w_off if _is_off_day(day, commercial) else 1.0
    w *= _occupancy(sa.seed, sa.usage_point_id, meter, day, commercial)
    k = annual * 1e6 * w / norm
    return k, k * p.cool * cdd, k * p.heat * hdd


def _load_values(
    sa: ServiceAgreementModel, meter: int, day: date, day_start: int, day_length: int, annual: float,
    commercial: bool, amplitude: float,
) -> list[int]:
    """Noisy load values of one day: (base, cooling, heating shapes x energies) x mean-one noise, in one pass."""
    p = _persona(sa.seed, sa.usage_point_id, meter, commercial, False)
    off = _is_off_day(day, commercial)
    base_e, cool_e, heat_e = _load_day_energy(sa, meter, day, annual, commercial)
    L = sa.interval_length
    if commercial:
        base = _shape(("com", p.open_h, p.close_h, off, p.off_level), day_length, L)
        cool = _shape(("comcool", p.open_h, p.close_h), day_length, L)
    else:
        base = _shape(("res", p.morning, p.evening, off), day_length, L)
        cool = _shape(("cool",), day_length, L)
    heat = _shape(("heat", p.morning, p.evening), day_length, L)
    words = _noise_words(sa.seed, sa.usage_point_id, meter, "load", day_start, len(base))
    lo = 1.0 - amplitude
    step = 2.0 * amplitude / 65535.0
    if cool_e == 0.0 and heat_e == 0.0:
        return [int(base_e * b * (lo + step * w)) for b, w in zip(base, words, strict=True)]
    return [
        int((base_e * b + cool_e * c + heat_e * h) * (lo + step * w))
        for b, c, h, w in zip(base, cool, heat, words, strict=True)
    ]


# --------------------------------------------------------------------------- solar
def _sin_elevation(epoch: float, lat: float) -> float:
    doy = (epoch / 86400.0 + 0.5) % 365.2425
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365.0)
    solar_hours = ((epoch % 86400) / 3600.0 + LONGITUDE / 15.0) % 24.0
    hour_angle = math.radians(15.0 * (solar_hours - 12.0))
    phi = math.radians(lat)
    return math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour_angle)


_DECL_AMPLITUDE = math.radians(23.44)


@lru_cache(maxsize=1536)  # four years of days: a 48-month feed's yearly norms and its days stay cached
def _pv_day(zone: int, day: date, interval_length: int) -> tuple[float, tuple[float, ...]]:
    """(clear-sky relative daily yield, per-interval fractions) from the sun's elevation at midpoints.

    :func:`_sin_elevation` inlined, with what is constant for the day computed once: the same floats,
    in a fraction of the time (the first fetch of a solar SA evaluates it for every interval of a year).
    """
    start, end = day_bounds(day)
    phi = math.radians(latitude(zone))
    sin_phi, cos_phi = math.sin(phi), math.cos(phi)
    sin, cos, radians, two_pi = math.sin, math.cos, math.radians, 2 * math.pi
    half, offset = interval_length / 2, LONGITUDE / 15.0
    raw = []
    for t in range(start, end, interval_length):
        epoch = t + half
        decl = _DECL_AMPLITUDE * sin(two_pi * (284 + (epoch / 86400.0 + 0.5) % 365.2425) / 365.0)
        hour_angle = radians(15.0 * (((epoch % 86400) / 3600.0 + offset) % 24.0 - 12.0))
        elevation = sin_phi * sin(decl) + cos_phi * cos(decl) * cos(hour_angle)
        raw.append(max(0.0, elevation) ** 1.2)
    total = sum(raw)
    return total * interval_length / 3600.0, tuple(x / total for x in raw) if total else tuple(raw)


@lru_cache(maxsize=4096)
def _pv_norm(seed: int, zone: int, year: int) -> float:
    return sum(_pv_day(zone, d, 900)[0] * clearness(seed, zone, d) for d in _year_days(year))


def _pv_values(sa: ServiceAgreementModel, meter: int, day: date, day_start: int) -> list[int]:
    annual = sa.effective_pv_scale * _meter_share(sa)
    clear = clearness(sa.weather, sa.climate_zone, day)
    yield_900, _ = _pv_day(sa.climate_zone, day, 900)
    _, fractions = _pv_day(sa.climate_zone, day, sa.interval_length)
    energy = annual * 1e6 * yield_900 * clear / _pv_norm(sa.weather, sa.climate_zone, day.year)
    words = _noise_words(sa.seed, sa.usage_point_id, meter, "pv", day_start, len(fractions))
    return _apply_noise([energy * f for f in fractions], words, 0.02 + 0.6 * (1.0 - clear))


# --------------------------------------------------------------------------- EV
@lru_cache(maxsize=4096)
def _ev_charge_days_in_week(seed: int, usage_point_id: str, meter: int, week: int) -> frozenset[int]:
    """Four of the seven days of each week see a night-time charging session."""
    return frozenset(_week_order(seed, usage_point_id, meter, "ev", week)[:4])


def _is_ev_day(sa: ServiceAgreementModel, meter: int, day: date) -> bool:
    o = day.toordinal()
    return o % 7 in _ev_charge_days_in_week(sa.seed, sa.usage_point_id, meter, o // 7)


@lru_cache(maxsize=4096)
def _ev_sessions_in_year(sa: ServiceAgreementModel, meter: int, year: int) -> int:
    return sum(_is_ev_day(sa, meter, d) for d in _year_days(year))


def _ev_values(sa: ServiceAgreementModel, meter: int, day: date, day_start: int, day_length: int) -> list[float]:
    """Charger energy per interval: one block after midnight, at constant power, on charging days."""
    L = sa.interval_length
    n = len(range(0, day_length, L))
    if not _is_ev_day(sa, meter, day):
        return [0.0] * n
    energy_kwh = sa.effective_ev_scale * _meter_share(sa) / _ev_sessions_in_year(sa, meter, day.year)
    power = _persona(sa.seed, sa.usage_point_id, meter, False, False).ev_power_kw
    power = max(power, energy_kwh / 6.0)
    begin = 900 * (_digest(sa.seed, sa.usage_point_id, meter, "evstart", day.toordinal())[0] % 9)
    end = begin + energy_kwh / power * 3600.0
    mwh_per_s = power * 1e6 / 3600.0
    out = []
    for k in range(n):
        a = k * L
        overlap = min(a + L, end) - max(a, begin)
        out.append(mwh_per_s * overlap if overlap > 0 else 0.0)
    return out


# --------------------------------------------------------------------------- gas
def _gas_day_energy(sa: ServiceAgreementModel, meter: int, day: date) -> float:
    p = _persona(sa.seed, sa.usage_point_id, meter, False, True)
    n_on, n_off, hdd_on, hdd_off, _, _ = _climate_sums(sa.weather, sa.climate_zone, day.year, False)
    norm = (n_on + n_off) + p.heat * (hdd_on + hdd_off)
    hdd, _ = degree_days(sa.weather, sa.climate_zone, day)
    return sa.scale * _meter_share(sa) * 1e3 * (1.0 + p.heat * hdd) / norm


# --------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class Profile:
    """A named load shape. ``channels`` are the hidden components combined into flow directions."""

    name: str
    description: str
    commercial: bool = False
    solar: bool = False
    ev: bool = False
    gas: bool = False
    interval: bool = True


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("residential_hourly", "home: morning and evening peaks, weather-driven heating and cooling"),
        Profile("commercial_15min", "business-hours plateau, low weekends and holidays, baseload", commercial=True),
        Profile("solar_net_metered", "home with rooftop PV: delivered (1), received (19), net (4)", solar=True),
        Profile("ev_charging", "home plus a night-time EV charging block on four days a week", ev=True),
        Profile("gas_daily", "gas: daily therms driven by heating degree days", gas=True),
        Profile("non_interval", "no interval data: billed totals (UsageSummary) only", interval=False),
        Profile("shaped", "the scenario's own 24-hour shapes per day type and month, scaled to an annual total"),
        Profile("recorded", "a customer's own readings (Green Button file or CSV) replayed, pattern continued"),
    )
}


@lru_cache(maxsize=64)
def _channels(sa: ServiceAgreementModel, meter: int, day: date) -> tuple[list[int], list[int] | None]:
    """(consumption, production or None) for one meter and local day, in value units."""
    profile = PROFILES[sa.profile]
    start, end = day_bounds(day)
    length = end - start
    if sa.profile == "shaped":
        return _shaped_values(sa, meter, day, start), None
    if profile.gas:
        e = _gas_day_energy(sa, meter, day)
        return _apply_noise((e,), _noise_words(sa.seed, sa.usage_point_id, meter, "gas", start, 1), 0.08), None
    annual = sa.scale * _meter_share(sa)
    if profile.ev:
        annual -= sa.effective_ev_scale * _meter_share(sa)
    amplitude = 0.12 if profile.commercial else (0.3 if sa.interval_length == 3600 else 0.4)
    load = _load_values(sa, meter, day, start, length, annual, profile.commercial, amplitude)
    if profile.ev:
        load = [x + int(e) for x, e in zip(load, _ev_values(sa, meter, day, start, length), strict=True)]
    if sa.shape is not None:
        words = _noise_words(_shape_seed(sa), sa.usage_point_id, meter, "shape", start, len(load))
        load = _apply_noise(reshape(load, sa.shape, day, sa.interval_length), words, sa.shape.noise)
    if profile.solar:
        return load, _pv_values(sa, meter, day, start)
    return load, None


def _shape_seed(sa: ServiceAgreementModel) -> int:
    return sa.shape.seed if sa.shape.seed is not None else sa.seed


def _shaped_values(sa: ServiceAgreementModel, meter: int, day: date, day_start: int) -> list[int]:
    """A shaped profile's day: expected values from the shapes and annual total, times mean-one noise."""
    spec = sa.shape
    annual = (spec.annual if spec.annual is not None else sa.scale) * _meter_share(sa) * 1e6
    expected = shaped_expected(spec, annual, day, sa.interval_length)
    words = _noise_words(_shape_seed(sa), sa.usage_point_id, meter, "shape", day_start, len(expected))
    return _apply_noise(expected, words, spec.noise)


def interval_values(sa: ServiceAgreementModel, meter: int, flow_direction: int, day: date) -> list[int]:
    """Values of every interval of one local day for one meter (1-based) and flow direction.

    Flow 1 and 19 are non-negative; flow 4 is delivered minus received (may be negative). A recorded
    SA gives the values of the day's recorded (or continued) readings, which may not fill the day.
    """
    if sa.profile == "recorded":
        found = served_day(sa.attached_recording(), meter, flow_direction, day, outside=sa.recording_outside,
                           commodity=sa.commodity, not_before=sa.sa_start) if sa.is_interval else None
        return found[1] if found is not None else []
    if not sa.is_interval:
        raise ValueError(f"{sa.usage_point_id}: non-interval SA has no interval values")
    if not 1 <= meter <= sa.meters:
        raise ValueError(f"meter: {meter} is outside 1..{sa.meters}")
    consumption, production = _channels(sa, meter, day)
    if production is None:
        if flow_direction == 19:
            return [0] * len(consumption)
        return list(consumption)
    if flow_direction == 1:
        return [c - p if c > p else 0 for c, p in zip(consumption, production, strict=True)]
    if flow_direction == 19:
        return [p - c if p > c else 0 for c, p in zip(consumption, production, strict=True)]
    if flow_direction == 4:
        return [c - p for c, p in zip(consumption, production, strict=True)]
    raise ValueError(f"flow_direction: {flow_direction} is not 1, 19 or 4")


def pv_production(sa: ServiceAgreementModel, meter: int, day: date) -> list[int]:
    """Gross PV output per interval of a solar SA (the hidden channel behind flows 19 and 4)."""
    _, production = _channels(sa, meter, day)
    if production is None:
        raise ValueError(f"{sa.usage_point_id}: profile {sa.profile} has no PV")
    return list(production)


def daily_usage(sa: ServiceAgreementModel, meter: int, day: date) -> int:
    """Billed-basis usage of one local day for one meter: what a non-interval meter accumulates.

    For interval SAs it equals the sum of the day's billed-flow intervals.
    """
    if sa.is_interval:
        flow = 4 if 19 in sa.flow_directions or 4 in sa.flow_directions else 1
        if sa.commodity == "gas":
            flow = 1
        return sum(interval_values(sa, meter, flow, day))
    if sa.commodity == "gas":
        return int(_gas_day_energy(sa, meter, day))
    commercial = sa.customer_class in ("COM/IND", "AGR")
    return int(sum(_load_day_energy(sa, meter, day, sa.scale * _meter_share(sa), commercial)))
