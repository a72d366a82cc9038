"""Synthetic daily weather per California climate zone.

Weather is shared by every customer of a zone within a scenario (it depends on
the scenario seed, the zone and the date only), which is what lets the annual
calibration of the profiles be computed once per zone and year.
"""

from __future__ import annotations

import hashlib
import math
from datetime import date
from functools import lru_cache

#: Climate zone -> (annual mean daily temperature °F, seasonal half-amplitude °F, latitude °N,
#: summer cloudiness, winter cloudiness). Loosely modelled on the CEC's 16 zones.
CLIMATE_ZONES: dict[int, tuple[float, float, float, float, float]] = {
    1: (53.0, 5.0, 40.8, 0.35, 0.60),  # north coast (Eureka)
    2: (58.0, 10.0, 38.4, 0.08, 0.45),  # north coast valleys (Santa Rosa)
    3: (58.0, 6.0, 37.8, 0.20, 0.42),  # central coast (Oakland, San Francisco)
    4: (60.0, 8.0, 37.3, 0.10, 0.40),  # south bay (San Jose)
    5: (59.0, 5.0, 35.3, 0.25, 0.38),  # south central coast (San Luis Obispo)
    6: (63.0, 6.0, 34.0, 0.20, 0.30),
    7: (64.0, 6.0, 32.7, 0.20, 0.28),
    8: (65.0, 8.0, 33.9, 0.12, 0.28),
    9: (65.0, 9.0, 34.1, 0.10, 0.28),
    10: (66.0, 13.0, 33.9, 0.06, 0.28),
    11: (61.0, 16.0, 40.2, 0.04, 0.50),  # Sacramento valley north (Red Bluff)
    12: (61.0, 14.0, 38.6, 0.04, 0.45),  # Sacramento, Stockton
    13: (63.0, 16.0, 36.7, 0.03, 0.48),  # Fresno, Bakersfield
    14: (62.0, 18.0, 35.1, 0.04, 0.30),
    15: (74.0, 18.0, 33.8, 0.03, 0.20),
    16: (48.0, 16.0, 39.3, 0.08, 0.45),  # mountains (Tahoe)
}
LONGITUDE = -121.5  # PG&E territory; used for solar time


def _unit(seed: int, zone: int, day: date, tag: bytes) -> float:
    digest = hashlib.blake2b(b"%d|%d|%d|" % (seed, zone, day.toordinal()) + tag, digest_size=8).digest()
    return int.from_bytes(digest, "little") / 18446744073709551616.0


@lru_cache(maxsize=2048)
def _anomaly_raw(seed: int, zone: int, ordinal: int) -> float:
    day = date.fromordinal(ordinal)
    # sum of three uniforms: roughly normal, mean 0, sd ~ 5 °F after scaling
    return (_unit(seed, zone, day, b"t1") + _unit(seed, zone, day, b"t2") + _unit(seed, zone, day, b"t3") - 1.5) * 10.0


@lru_cache(maxsize=2048)
def daily_mean_temperature(seed: int, zone: int, day: date) -> float:
    """Daily mean temperature in °F: a seasonal cosine plus a 3-day-smoothed anomaly (weather spells)."""
    mean, amp, *_ = CLIMATE_ZONES[zone]
    doy = day.timetuple().tm_yday
    seasonal = mean - amp * math.cos(2 * math.pi * (doy - 20) / 365.25)
    o = day.toordinal()
    anomaly = (_anomaly_raw(seed, zone, o - 1) + 2 * _anomaly_raw(seed, zone, o) + _anomaly_raw(seed, zone, o + 1)) / 4
    return seasonal + anomaly


def degree_days(seed: int, zone: int, day: date) -> tuple[float, float]:
    """(heating, cooling) degree days base 65 °F for one local day."""
    t = daily_mean_temperature(seed, zone, day)
    return max(0.0, 65.0 - t), max(0.0, t - 65.0)


@lru_cache(maxsize=2048)
def clearness(seed: int, zone: int, day: date) -> float:
    """Fraction of clear-sky PV output reaching the panels that day (0.2 .. 1.0)."""
    *_, summer_cloud, winter_cloud = CLIMATE_ZONES[zone]
    doy = day.timetuple().tm_yday
    w = (1 + math.cos(2 * math.pi * (doy - 15) / 365.25)) / 2  # 1 in mid-January, 0 in mid-July
    p_cloudy = summer_cloud + (winter_cloud - summer_cloud) * w
    u = _unit(seed, zone, day, b"cloud")
    if u < p_cloudy:
        return 0.2 + 0.5 * _unit(seed, zone, day, b"depth")
    return 0.88 + 0.12 * _unit(seed, zone, day, b"haze")


def latitude(zone: int) -> float:
    return CLIMATE_ZONES[zone][2]
