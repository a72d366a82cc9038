"""Bring your own meter data (issue 19), in-process: Green Button and CSV readers, replay, the continued
pattern outside a file's range, shaped profiles, and the errors bad input gets. Pure: no server, no clock."""

from __future__ import annotations

import datetime as dt
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

from mock_custodian.cli.export import export_feed
from mock_custodian.cli.scenario import scenario_text
from mock_custodian.clock import PACIFIC
from mock_custodian.scenario.meter_data import MeterDataError, read_csv, read_green_button
from mock_custodian.scenario.parse import ScenarioError, parse_scenario
from mock_custodian.synth.billing import compute_bill
from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.synth.readings import day_readings, iter_day_readings
from mock_custodian.synth.recorded import SEASONAL_INDEX, Channel, Recording
from mock_custodian.synth.shaped import parse_shape

NOW = dt.datetime(2026, 10, 20, 12, tzinfo=PACIFIC).timestamp()


def at(y: int, m: int, d: int, hour: int = 0) -> int:
    return int(dt.datetime(y, m, d, hour, tzinfo=PACIFIC).timestamp())


def export(model: ServiceAgreementModel, path: Path, start: float, end: float) -> Path:
    with path.open("wb") as out:
        for chunk in export_feed(model, start, end, resource_base="https://api.pge.com/r", now=NOW):
            out.write(chunk)
    return path


def replay(recording: Recording, **extra: object) -> ServiceAgreementModel:
    """A recorded SA's model with its readings attached, as the store serves it."""
    model = ServiceAgreementModel.from_dict({
        "usage_point_id": "5550001111", "profile": "recorded", "recording": recording.digest,
        "interval_length": recording.interval_length, "meters": recording.meters,
        "flow_directions": list(recording.flow_directions), "sa_start": "2020-01-01", **extra})
    return replace(model, recorded=recording)


def served(model: ServiceAgreementModel, meter: int, flow: int, start: float, end: float) -> list[tuple]:
    """(start, duration, value, quality) of every reading the engine serves in [start, end)."""
    out = []
    for block in iter_day_readings(model, meter, flow, start, end):
        qualities = block.qualities or [block.quality] * len(block.values)
        out += list(zip(block.starts, [block.duration] * len(block.values), block.values, qualities, strict=True))
    return out


# --------------------------------------------------------------------------- round trips
def test_export_of_a_generated_sa_replays_identically(tmp_path: Path) -> None:
    generated = ServiceAgreementModel.from_dict({"usage_point_id": "1234567890", "profile": "solar_net_metered",
                                                 "meters": 2, "seed": 5, "mv90": True, "sa_start": "2020-01-01"})
    start, end = at(2026, 2, 20), at(2026, 4, 10)  # spans the spring-forward day
    [point] = read_green_button(export(generated, tmp_path / "gb.xml", start, end))
    assert (point.usage_point_id, point.commodity, point.interval_length) == ("1234567890", "electric", 900)
    copy = replay(point.recording)
    assert copy.flow_directions == (1, 19) and copy.meters == 2
    for meter in (1, 2):
        for flow in (1, 19):
            original = served(generated, meter, flow, start, end)
            assert original and served(copy, meter, flow, start, end) == original
            assert {q for *_, q in original} == {14}  # MV90 quality survives
    day = dt.date(2026, 3, 8)
    assert len(day_readings(copy, 1, 1, day).values) == 92  # the 23-hour day


def test_a_hand_made_csv_with_local_times_units_and_qualities(tmp_path: Path) -> None:
    csv = tmp_path / "reads.csv"
    # The autumn fall-back: 01:00 local happens twice; the second is the later instant.
    csv.write_text("start,value,quality\n"
                   "2026-11-01T00:00,0.5,17\n2026-11-01T01:00,0.25,17\n2026-11-01T01:00,0.125,8\n"
                   "2026-11-01T02:00,1.75,17\n2026-11-01T03:00:00-08:00,2,17\n")
    commodity, recording = read_csv(csv, interval=3600, uom="kWh")
    assert commodity == "electric"
    model = replay(recording)
    base = at(2026, 11, 1)
    assert served(model, 1, 1, base, base + 90000) == [
        (base, 3600, 500_000, 17), (base + 3600, 3600, 250_000, 17), (base + 7200, 3600, 125_000, 8),
        (base + 10800, 3600, 1_750_000, 17), (base + 14400, 3600, 2_000_000, 17)]


def test_large_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    """48 months of 15-minute data (~140,000 readings in a 36 MB file) reads into compact arrays."""
    generated = ServiceAgreementModel.from_dict({"usage_point_id": "1234567890", "profile": "commercial_15min",
                                                 "seed": 3, "sa_start": "2020-01-01"})
    path = export(generated, tmp_path / "big.xml", at(2022, 10, 1), at(2026, 10, 1))
    tracemalloc.start()
    try:
        [point] = read_green_button(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert point.recording.readings() == 140_256
    assert peak < path.stat().st_size / 4  # never the document: arrays and one entry at a time
    channel = point.recording.channels[(1, 1)]
    blob = channel.encode()
    assert len(blob) < 140_256 * 17 and Channel.decode(blob).values == channel.values


# --------------------------------------------------------------------------- outside the file's range
def _year_of_hourly() -> Recording:
    generated = ServiceAgreementModel.from_dict({"usage_point_id": "1234567890", "profile": "residential_hourly",
                                                 "seed": 8, "sa_start": "2020-01-01"})
    starts, values = [], []
    for block in iter_day_readings(generated, 1, 1, at(2025, 1, 1), at(2026, 1, 1)):
        starts += block.starts
        values += block.values
    from array import array

    channel = Channel(1, 1, 3600, array("q", starts), array("q", values), array("B", [17] * len(starts)))
    return Recording.of({(1, 1): channel})


def test_a_year_long_file_continues_52_weeks_away_and_none_means_no_data() -> None:
    model = replay(_year_of_hourly())
    later = dt.date(2026, 10, 19)  # a Monday after the file ends (2025-12-31)
    source = later - dt.timedelta(days=364 * ((later - dt.date(2025, 12, 31)).days // 364 + 1))
    assert source.weekday() == later.weekday() and dt.date(2025, 1, 1) <= source
    assert day_readings(model, 1, 1, later).values == day_readings(model, 1, 1, source).values
    assert day_readings(replace(model, recording_outside="none"), 1, 1, later) is None
    earlier = dt.date(2024, 6, 3)
    assert day_readings(model, 1, 1, earlier).values == day_readings(model, 1, 1, earlier + dt.timedelta(364)).values


def test_a_short_file_borrows_the_nearest_week_scaled_by_season() -> None:
    full = _year_of_hourly()
    ch = full.channels[(1, 1)]
    lo, hi = at(2025, 3, 1), at(2025, 3, 29)
    keep = [i for i, t in enumerate(ch.starts) if lo <= t < hi]
    short = Channel(1, 1, 3600, ch.starts[keep[0]:keep[-1] + 1], ch.values[keep[0]:keep[-1] + 1],
                    ch.qualities[keep[0]:keep[-1] + 1])
    model = replay(Recording.of({(1, 1): short}))
    july = dt.date(2025, 7, 15)
    block = day_readings(model, 1, 1, july)
    src = dt.date(2025, 3, 25)  # same weekday, the last recorded week
    assert src.weekday() == july.weekday()
    factor = SEASONAL_INDEX["load"][6] / SEASONAL_INDEX["load"][2]
    expected = [int(v * factor + 0.5) for v in day_readings(model, 1, 1, src).values]
    assert block.values == expected


def test_bills_of_a_recorded_sa_equal_the_sum_of_its_intervals() -> None:
    model = replay(_year_of_hourly(), rate_schedule="E-TOU-C")
    start, end = at(2025, 5, 1), at(2025, 6, 1)
    bill = compute_bill(model, start, end, end + 86400 * 5)
    assert bill.usage == sum(v for block in iter_day_readings(model, 1, 1, start, end) for v in block.values)


# --------------------------------------------------------------------------- shaped profiles
EVENING = [1, 1, 1, 1, 1, 1, 2, 3, 2, 1, 1, 1, 1, 1, 1, 1, 2, 3, 5, 6, 5, 3, 2, 1]
FLAT = [2.5] * 24
SHAPE = {"annual": 5000, "noise": 0.15, "seed": 7, "weekday": EVENING, "weekend": FLAT,
         "seasons": {"summer": {"weight": 1.6}}}


def shaped(**extra: object) -> ServiceAgreementModel:
    return ServiceAgreementModel.from_dict({"usage_point_id": "2223334444", "profile": "shaped", "shape": SHAPE,
                                            "interval_length": 900, "sa_start": "2020-01-01", **extra})


def test_shaped_profile_annual_total_weekday_weekend_and_seasons() -> None:
    model = shaped()
    total = sum(v for block in iter_day_readings(model, 1, 1, at(2025, 1, 1), at(2026, 1, 1)) for v in block.values)
    assert abs(total / 5e9 - 1) < 0.02  # 5000 kWh in Wh x 10^-3
    tuesday, saturday = dt.date(2025, 3, 11), dt.date(2025, 3, 15)
    wd, we = day_readings(model, 1, 1, tuesday).values, day_readings(model, 1, 1, saturday).values
    hour = [sum(wd[h * 4:h * 4 + 4]) for h in range(24)]
    assert max(range(24), key=hour.__getitem__) in (18, 19, 20) and hour[19] > 3 * hour[3]
    assert sum(we) > sum(wd)  # the weekend shape is taller: 60 vs 47 units a day
    july, march = dt.date(2025, 7, 15), dt.date(2025, 3, 11)  # both Tuesdays
    assert 1.3 < sum(day_readings(model, 1, 1, july).values) / sum(wd) < 1.9
    assert day_readings(model, 1, 1, march).values == wd  # a pure function: same day, same values
    assert len(day_readings(model, 1, 1, dt.date(2025, 11, 2)).values) == 100  # the 25-hour day
    bill = compute_bill(model, at(2025, 7, 1), at(2025, 8, 1), at(2025, 8, 5))
    assert bill.usage == sum(v for b in iter_day_readings(model, 1, 1, at(2025, 7, 1), at(2025, 8, 1))
                             for v in b.values)


def test_a_shape_overrides_a_built_in_profiles_hours_but_keeps_its_days() -> None:
    base = ServiceAgreementModel.from_dict({"usage_point_id": "2223334444", "profile": "residential_hourly",
                                            "seed": 4, "sa_start": "2020-01-01"})
    night = [6, 6, 6, 6, 6, 6] + [0.5] * 18
    over = replace(base, shape=parse_shape({"weekday": night, "noise": 0.0}))
    day = dt.date(2025, 9, 10)
    values = day_readings(over, 1, 1, day).values
    assert sum(values[:6]) > 2 * sum(values[6:])
    assert abs(sum(values) - sum(day_readings(base, 1, 1, day).values)) <= 24  # the day's energy is the base's


@pytest.mark.parametrize(("shape", "message"), [
    ({"weekday": [1] * 23}, "shape.weekday: expected a list of 24 hourly numbers"),
    ({"weekday": [1] * 24, "noise": 2}, "shape.noise"),
    ({"weekday": [1] * 24, "seasons": {"monsoon": {"weight": 2}}}, "shape.seasons.monsoon.months"),
    ({"weekend": [1] * 24}, "shape.weekday: required"),
    ({"weekday": [1] * 24, "bogus": 1}, "shape.bogus: unknown field"),
])
def test_bad_shapes_are_named(shape: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        parse_shape(shape)


# --------------------------------------------------------------------------- scenarios and errors
SCENARIO = """\
name: own
seed: 3
customers:
  - key: me
    accounts:
      - service_agreements:
          - key: mine
            data: {data}
"""


def test_scenario_import_writes_a_loadable_scenario(tmp_path: Path) -> None:
    generated = ServiceAgreementModel.from_dict({"usage_point_id": "1234567890", "profile": "gas_daily",
                                                 "seed": 5, "sa_start": "2020-01-01"})
    (tmp_path / "data").mkdir()
    export(generated, tmp_path / "data" / "gas.xml", at(2026, 1, 1), at(2026, 3, 1))
    text = scenario_text(tmp_path / "data" / "gas.xml", tmp_path)
    assert 'data: {file: "data/gas.xml"}' in text and "interval 86400 s" in text
    scenario = parse_scenario(text, str(tmp_path / "imported.yaml"))
    [sa] = [sa for c in scenario.customers for a in c.accounts for sa in a.service_agreements]
    assert (sa.commodity, sa.rate_schedule, sa.profile["interval_length"]) == ("gas", "G-1", 86400)
    assert sa.service_start == at(2026, 1, 1) and sa.recording.readings() == 59


def _scenario_error(tmp_path: Path, data: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(SCENARIO.format(data=data), str(tmp_path / "own.yaml"))
    return str(caught.value)


def test_bad_files_are_named_with_their_line(tmp_path: Path) -> None:
    (tmp_path / "page.xml").write_text("<html><body>Sign in</body></html>")
    assert "page.xml:1: not a Green Button document: root element <html>" in _scenario_error(
        tmp_path, "{file: page.xml}")
    assert "own.yaml:8: customers[0].accounts[0].service_agreements[0].data.file" in _scenario_error(
        tmp_path, "{file: page.xml}")
    assert "cannot read" in _scenario_error(tmp_path, "{file: missing.csv}")
    (tmp_path / "mixed.csv").write_text("start,duration,value\n1767254400,900,1\n1767255300,3600,1\n")
    assert "mixed.csv:3: meter 1 flow 1: mixed interval lengths in one channel" in _scenario_error(
        tmp_path, "{file: mixed.csv}")
    (tmp_path / "overlap.csv").write_text("start,value\n1767254400,1\n1767255000,1\n")
    assert "overlap.csv:3: meter 1 flow 1: overlapping or unordered readings" in _scenario_error(
        tmp_path, "{file: overlap.csv, interval: 900}")
    assert "data.uom: unknown unit 'BTU'" in _scenario_error(tmp_path, "{file: overlap.csv, uom: BTU}")
    (tmp_path / "words.csv").write_text("start,value\n1767254400,lots\n")
    assert "words.csv:2: value: 'lots' is not a number" in _scenario_error(tmp_path, "{file: words.csv, interval: 900}")


def test_a_reading_type_with_an_unknown_unit_is_named(tmp_path: Path) -> None:
    generated = ServiceAgreementModel.from_dict({"usage_point_id": "1234567890", "profile": "residential_hourly",
                                                 "seed": 5, "sa_start": "2020-01-01"})
    path = export(generated, tmp_path / "gb.xml", at(2026, 1, 1), at(2026, 1, 3))
    path.write_text(path.read_text().replace("<ns0:uom>72</ns0:uom>", "<ns0:uom>38</ns0:uom>", 1))
    with pytest.raises(MeterDataError, match=r"gb\.xml:\d+: ReadingType: unknown unit of measure uom=38"):
        read_green_button(path)
    broken = tmp_path / "cut.xml"
    broken.write_text(path.read_text()[:5000])
    with pytest.raises(MeterDataError, match=r"cut\.xml:\d+: not well-formed XML"):
        read_green_button(broken)


def test_corrections_and_gaps_apply_on_top_of_a_recording() -> None:
    from mock_custodian.synth.lifecycle import Correction, Gap, overrides_for
    from mock_custodian.synth.localtime import day_bounds

    model = replay(_year_of_hourly())
    start, end = day_bounds(dt.date(2025, 6, 10))
    recorded = day_readings(model, 1, 1, dt.date(2025, 6, 10)).values
    later = end + 30 * 86400
    corrected, _ = overrides_for(model, [Correction(start, end, start, factor=2.0)], start, end, later,
                                 lambda day_start: day_start + 86400)
    assert corrected[(1, 1, start)].values == [round(v * 2) for v in recorded]
    assert set(corrected[(1, 1, start)].qualities) == {7}
    missing, _ = overrides_for(model, [Gap(start + 3600 * 5, start + 3600 * 8)], start, end, end + 3600,
                               lambda day_start: day_start + 86400 - 3600)
    assert len(missing[(1, 1, start)].values) == 21  # three hours left out at first publication


def test_a_file_without_its_usage_point_entry_still_reads(tmp_path: Path) -> None:
    from lxml import etree

    generated = ServiceAgreementModel.from_dict({"usage_point_id": "1234567890", "profile": "residential_hourly",
                                                 "seed": 5, "sa_start": "2020-01-01"})
    path = export(generated, tmp_path / "gb.xml", at(2026, 1, 1), at(2026, 1, 4))
    [whole] = read_green_button(path)
    doc = etree.parse(str(path))
    ns = {"a": "http://www.w3.org/2005/Atom", "e": "http://naesb.org/espi"}
    for entry in doc.xpath("//a:entry[a:content/e:UsagePoint]", namespaces=ns):
        entry.getparent().remove(entry)
    doc.write(str(tmp_path / "bare.xml"))
    [bare] = read_green_button(tmp_path / "bare.xml")
    assert bare.recording.digest == whole.recording.digest and bare.recording.readings() == 72
