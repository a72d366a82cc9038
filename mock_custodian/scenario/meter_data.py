"""Reading a customer's own meter data: Green Button Download My Data files and CSVs of interval reads.

Both readers stream (lxml ``iterparse`` clearing each entry, ``csv.reader`` row by row) into compact
arrays, so a 48-month, 15-minute file loads in seconds with memory proportional to the readings kept,
never to the document. The result is a :class:`~mock_custodian.synth.recorded.Recording` per usage
point, in the engine's units (Wh x 10^-3, therms x 10^-3). Every error names the file, the line and
what is wrong, and nothing is returned half-read.
"""

from __future__ import annotations

import csv
import datetime as dt
from array import array
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from lxml import etree

from mock_custodian.synth.localtime import PACIFIC
from mock_custodian.synth.recorded import DAY_LENGTHS, INTERVAL_LENGTHS, Channel, Recording

ATOM = "{http://www.w3.org/2005/Atom}"
ESPI = "{http://naesb.org/espi}"
#: ESPI unit codes the engine serves: Wh (electric) and therm (gas), in thousandths.
UOM_COMMODITY = {72: "electric", 169: "gas"}
#: CSV units and how many engine units (thousandths of Wh or therm) one of them is.
CSV_UNITS = {"Wh": ("electric", Decimal(1000)), "kWh": ("electric", Decimal(1_000_000)),
             "MWh": ("electric", Decimal(1_000_000_000)), "therm": ("gas", Decimal(1000))}


class MeterDataError(ValueError):
    """A meter data file problem, naming the file, the line (or element) and what is wrong."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


@dataclass
class UsagePointData:
    """One UsagePoint of a Green Button file: what a service agreement needs to replay it."""

    href: str
    usage_point_id: str
    commodity: str
    recording: Recording

    @property
    def interval_length(self) -> int:
        return self.recording.interval_length


@dataclass
class _Builder:
    """Readings of one channel as they stream in, checked for order and a single interval length."""

    path: str
    label: str
    starts: array = field(default_factory=lambda: array("q"))
    values: array = field(default_factory=lambda: array("q"))
    qualities: array = field(default_factory=lambda: array("B"))
    duration: int | None = None
    daily: bool = False
    last_end: int | None = None

    def add(self, start: int, duration: int, value: int, quality: int, line: int | None) -> None:
        if self.duration is None:
            self.daily = duration in DAY_LENGTHS
            self.duration = 86400 if self.daily else duration
            if self.duration not in INTERVAL_LENGTHS:
                raise MeterDataError(self.path, line, f"{self.label}: interval length {duration} s is not one of "
                                     f"{', '.join(map(str, INTERVAL_LENGTHS))}")
        elif (duration in DAY_LENGTHS) != self.daily or (not self.daily and duration != self.duration):
            raise MeterDataError(self.path, line, f"{self.label}: mixed interval lengths in one channel: a reading of "
                                 f"{duration} s after readings of {self.duration} s")
        if self.last_end is not None and start < self.last_end:
            raise MeterDataError(self.path, line, f"{self.label}: overlapping or unordered readings: the reading at "
                                 f"{_iso(start)} starts before the previous one ends ({_iso(self.last_end)})")
        if not 0 <= quality <= 255:
            raise MeterDataError(self.path, line, f"{self.label}: quality {quality} is not an ESPI quality code")
        self.starts.append(start)
        self.values.append(value)
        self.qualities.append(quality)
        self.last_end = start + duration


def _iso(epoch: int) -> str:
    return f"{dt.datetime.fromtimestamp(epoch, PACIFIC).isoformat()} ({epoch})"


# --------------------------------------------------------------------------- Green Button XML
def _links(entry: etree._Element) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for link in entry.iterchildren(f"{ATOM}link"):
        out.setdefault(link.get("rel", ""), []).append(link.get("href", ""))
    return out


def _int(elem: etree._Element | None, path: str, name: str, required: bool = True) -> int | None:
    child = elem.find(name) if elem is not None else None
    if child is None or child.text is None or not child.text.strip():
        if required:
            line = elem.sourceline if elem is not None else None
            raise MeterDataError(path, line, f"{etree.QName(elem).localname}: missing {etree.QName(name).localname}")
        return None
    try:
        return int(child.text.strip())
    except ValueError:
        raise MeterDataError(path, child.sourceline, f"{etree.QName(child).localname}: {child.text.strip()!r} "
                             "is not an integer") from None


def read_green_button(path: Path | str) -> list[UsagePointData]:
    """Every UsagePoint with interval data in a Green Button (ESPI Atom) file, in file order."""
    name = str(path)
    usage_points: dict[str, int] = {}  # self href -> ServiceCategory kind
    meter_readings: dict[str, str | None] = {}  # self href -> ReadingType href
    reading_types: dict[str, tuple[dict[str, int | None], int]] = {}  # href -> (fields, line)
    blocks: dict[str, dict] = {}  # MeterReading href -> {"builder", "line"}
    entries = 0
    try:
        context = etree.iterparse(str(path), events=("end",), tag=f"{ATOM}entry", huge_tree=True,
                                  remove_blank_text=True, resolve_entities=False, no_network=True)
        for _, entry in context:
            entries += 1
            _entry(name, entry, usage_points, meter_readings, reading_types, blocks)
            entry.clear()
            while entry.getprevious() is not None:
                del entry.getparent()[0]
        root = context.root if entries else None
    except etree.XMLSyntaxError as exc:
        raise MeterDataError(name, exc.lineno, f"not well-formed XML: {exc.msg}") from None
    except OSError as exc:
        raise MeterDataError(name, None, f"cannot read: {exc}") from None
    if root is None or not entries:
        try:
            tag = etree.QName(next(etree.iterparse(str(path), events=("start",)))[1]).localname
        except (etree.XMLSyntaxError, StopIteration):
            tag = "?"
        raise MeterDataError(name, 1, f"not a Green Button document: root element <{tag}> holds no Atom entries "
                             "(expected an ESPI Atom <feed> of UsagePoint, MeterReading, ReadingType, IntervalBlock)")
    return _assemble(name, usage_points, meter_readings, reading_types, blocks)


def _entry(path: str, entry: etree._Element, usage_points: dict, meter_readings: dict, reading_types: dict,
           blocks: dict) -> None:
    content = entry.find(f"{ATOM}content")
    if content is None or not len(content):
        return
    resource = content[0]
    kind = etree.QName(resource).localname
    links = _links(entry)
    self_href = (links.get("self") or [""])[0]
    if kind == "UsagePoint":
        category = resource.find(f"{ESPI}ServiceCategory")
        usage_points[self_href] = _int(category, path, f"{ESPI}kind", required=False) or 0
    elif kind == "MeterReading":
        rt = next((h for h in links.get("related", []) if "/ReadingType/" in h), None)
        meter_readings[self_href] = rt
    elif kind == "ReadingType":
        fields = {k: _int(resource, path, f"{ESPI}{k}", required=False)
                  for k in ("flowDirection", "intervalLength", "uom", "powerOfTenMultiplier", "defaultQuality")}
        reading_types[self_href] = (fields, resource.sourceline)
    elif kind == "IntervalBlock":
        up = (links.get("up") or [""])[0]
        mr = up.rsplit("/IntervalBlock", 1)[0] if "/IntervalBlock" in up else self_href.rsplit("/IntervalBlock", 1)[0]
        if not mr:
            raise MeterDataError(path, entry.sourceline, "IntervalBlock: no self or up link naming its MeterReading")
        slot = blocks.get(mr)
        if slot is None:
            slot = blocks[mr] = {"builder": _Builder(path, f"MeterReading {mr.rsplit('/', 1)[-1]}"),
                                 "line": entry.sourceline, "default_quality": []}
        _block(path, resource, slot)


_NS = {"e": ESPI[1:-1]}
_X_COUNT = etree.XPath("count(e:IntervalReading)", namespaces=_NS)
_X_START = etree.XPath("e:IntervalReading/e:timePeriod/e:start/text()", namespaces=_NS)
_X_DURATION = etree.XPath("e:IntervalReading/e:timePeriod/e:duration/text()", namespaces=_NS)
_X_VALUE = etree.XPath("e:IntervalReading/e:value/text()", namespaces=_NS)
_X_QUALITY = etree.XPath("e:IntervalReading/e:ReadingQuality/e:quality/text()", namespaces=_NS)


def _block(path: str, block: etree._Element, slot: dict) -> None:
    """One IntervalBlock's readings: four C-speed XPath passes, element by element only to name an error."""
    builder: _Builder = slot["builder"]
    n = int(_X_COUNT(block))
    try:
        starts, durations, values = (list(map(int, x(block))) for x in (_X_START, _X_DURATION, _X_VALUE))
        qualities = list(map(int, _X_QUALITY(block)))
    except ValueError:
        starts = []
    if not (len(starts) == len(durations) == len(values) == n and len(qualities) in (0, n)):
        _block_slowly(path, block, slot)
        return
    if not qualities:
        slot["default_quality"].extend(range(len(builder.starts), len(builder.starts) + n))
        qualities = [0] * n
    add = builder.add
    for i in range(n):
        try:
            add(starts[i], durations[i], values[i], qualities[i], None)
        except MeterDataError as exc:
            line = block.findall(f"{ESPI}IntervalReading")[i].sourceline
            raise MeterDataError(path, line, exc.message) from None


def _block_slowly(path: str, block: etree._Element, slot: dict) -> None:
    """Reading by reading, so a missing or malformed element is reported with its line."""
    builder: _Builder = slot["builder"]
    for reading in block.iterchildren(f"{ESPI}IntervalReading"):
        period = reading.find(f"{ESPI}timePeriod")
        if period is None:
            raise MeterDataError(path, reading.sourceline, "IntervalReading: missing timePeriod")
        start = _int(period, path, f"{ESPI}start")
        duration = _int(period, path, f"{ESPI}duration")
        value = _int(reading, path, f"{ESPI}value")
        q = reading.find(f"{ESPI}ReadingQuality")
        quality = _int(q, path, f"{ESPI}quality", required=False) if q is not None else None
        if quality is None:
            slot["default_quality"].append(len(builder.starts))
            quality = 0
        builder.add(start, duration, value, quality, reading.sourceline)


def _assemble(path: str, usage_points: dict, meter_readings: dict, reading_types: dict,
              blocks: dict) -> list[UsagePointData]:
    out = []
    if not usage_points:  # a file of MeterReadings without their UsagePoint: one per href prefix
        for mr in [*meter_readings, *blocks]:
            if "/MeterReading/" in mr:
                rt = reading_types.get(meter_readings.get(mr) or "", ({}, 0))[0]
                usage_points.setdefault(mr.rsplit("/MeterReading/", 1)[0], 1 if rt.get("uom") == 169 else 0)
    for up_href, kind in usage_points.items():
        channels: dict[tuple[int, int], Channel] = {}
        commodity = "gas" if kind == 1 else "electric"
        per_flow: dict[int, int] = {}
        mrs = [mr for mr in meter_readings if mr.startswith(up_href + "/")]
        mrs += [mr for mr in blocks if mr.startswith(up_href + "/") and mr not in meter_readings]
        for mr in mrs:
            slot = blocks.get(mr)
            if slot is None or not len(slot["builder"].starts):
                continue
            rt_href = meter_readings.get(mr)
            if rt_href is None or rt_href not in reading_types:
                raise MeterDataError(path, slot["line"], f"MeterReading {mr}: no ReadingType in the file describes "
                                     "its readings (flow direction, unit)")
            fields, rt_line = reading_types[rt_href]
            uom = fields["uom"]
            if uom not in UOM_COMMODITY:
                raise MeterDataError(path, rt_line, f"ReadingType: unknown unit of measure uom={uom} (expected 72 Wh "
                                     "for electricity or 169 therm for gas)")
            if UOM_COMMODITY[uom] != commodity:
                raise MeterDataError(path, rt_line, f"ReadingType: uom={uom} ({UOM_COMMODITY[uom]}) does not match "
                                     f"UsagePoint kind {kind} ({commodity})")
            flow = fields["flowDirection"] or 1
            if flow not in (1, 4, 19):
                raise MeterDataError(path, rt_line, f"ReadingType: flowDirection {flow} is not 1, 19 or 4")
            builder: _Builder = slot["builder"]
            length = fields["intervalLength"]
            if length is not None and length != builder.duration:
                raise MeterDataError(path, slot["line"], f"MeterReading {mr}: readings last {builder.duration} s but "
                                     f"its ReadingType says intervalLength {length}")
            values = _scaled(builder.values, fields["powerOfTenMultiplier"] or 0)
            qualities = builder.qualities
            for i in slot["default_quality"]:
                qualities[i] = fields["defaultQuality"] if fields["defaultQuality"] is not None else 17
            meter = per_flow[flow] = per_flow.get(flow, 0) + 1
            channels[(meter, flow)] = Channel(meter, flow, builder.duration, builder.starts, values, qualities)
        if not channels:
            continue
        lengths = {c.interval_length for c in channels.values()}
        if len(lengths) > 1:
            raise MeterDataError(path, None, f"UsagePoint {up_href}: MeterReadings with different interval lengths "
                                 f"({', '.join(map(str, sorted(lengths)))} s); one service agreement has one")
        out.append(UsagePointData(up_href, up_href.rstrip("/").rsplit("/", 1)[-1], commodity, Recording.of(channels)))
    if not out:
        raise MeterDataError(path, None, "the Green Button file holds no UsagePoint with IntervalBlocks")
    return out


def _scaled(raw: array, multiplier: int) -> array:
    """Values in thousandths: value x 10^(multiplier + 3), rounded half away from zero when it divides."""
    shift = multiplier + 3
    if shift == 0:
        return raw
    if shift > 0:
        k = 10 ** shift
        return array("q", (v * k for v in raw))
    k = 10 ** -shift
    return array("q", ((v + k // 2) // k if v >= 0 else -((-v + k // 2) // k) for v in raw))


# --------------------------------------------------------------------------- CSV
def read_csv(path: Path | str, *, interval: int | None = None, uom: str = "Wh", quality: int = 17,
             flow_direction: int = 1) -> tuple[str, Recording]:
    """(commodity, recording) of a CSV with a header row: start, value, optional duration, quality,
    flow_direction and meter columns. ``start`` is epoch seconds, an ISO time with offset, or a local
    (Pacific) time without one; in the repeated autumn hour the second occurrence is the later instant."""
    name = str(path)
    if uom not in CSV_UNITS:
        raise MeterDataError(name, None, f"unknown unit {uom!r} (expected one of {', '.join(CSV_UNITS)})")
    commodity, unit = CSV_UNITS[uom]
    builders: dict[tuple[int, int], _Builder] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            columns = [h.strip().lower() for h in header or []]
            if "start" not in columns or "value" not in columns:
                raise MeterDataError(name, 1, "the first row must be a header naming at least start and value "
                                     "(optional: duration, quality, flow_direction, meter)")
            known = {"start", "value", "duration", "quality", "flow_direction", "meter"}
            for col in columns:
                if col not in known:
                    raise MeterDataError(name, 1, f"unknown column {col!r} (expected {', '.join(sorted(known))})")
            if "duration" not in columns and interval is None:
                raise MeterDataError(name, 1, "no duration column: give the interval length (interval: 900)")
            at = {c: columns.index(c) for c in columns}
            previous: int | None = None
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                line = reader.line_num
                if len(row) != len(columns):
                    raise MeterDataError(name, line, f"expected {len(columns)} fields, found {len(row)}")
                start = _csv_start(name, line, row[at["start"]].strip(), previous)
                previous = start
                duration = _csv_int(name, line, row, at, "duration", interval)
                value = _csv_value(name, line, row[at["value"]].strip(), unit)
                q = _csv_int(name, line, row, at, "quality", quality)
                flow = _csv_int(name, line, row, at, "flow_direction", flow_direction)
                meter = _csv_int(name, line, row, at, "meter", 1)
                if flow not in (1, 4, 19):
                    raise MeterDataError(name, line, f"flow_direction {flow} is not 1, 19 or 4")
                if not 1 <= meter <= 99:
                    raise MeterDataError(name, line, f"meter {meter} is not 1-99")
                builder = builders.get((meter, flow))
                if builder is None:
                    builder = builders[(meter, flow)] = _Builder(name, f"meter {meter} flow {flow}")
                builder.add(start, duration, value, q, line)
    except OSError as exc:
        raise MeterDataError(name, None, f"cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise MeterDataError(name, None, f"not a CSV text file: {exc}") from None
    if not builders:
        raise MeterDataError(name, None, "no readings")
    lengths = {b.duration for b in builders.values()}
    if len(lengths) > 1:
        raise MeterDataError(name, None, f"channels with different interval lengths ({sorted(lengths)}); "
                             "one service agreement has one")
    if interval is not None and lengths != {interval}:
        raise MeterDataError(name, None, f"readings last {lengths.pop()} s but the scenario says interval {interval}")
    channels = {k: Channel(k[0], k[1], b.duration or 0, b.starts, b.values, b.qualities) for k, b in builders.items()}
    return commodity, Recording.of(channels)


def _csv_int(path: str, line: int, row: list[str], at: dict, column: str, default: int | None) -> int:
    if column not in at or not row[at[column]].strip():
        if default is None:
            raise MeterDataError(path, line, f"{column}: missing")
        return default
    text = row[at[column]].strip()
    try:
        return int(text)
    except ValueError:
        raise MeterDataError(path, line, f"{column}: {text!r} is not an integer") from None


def _csv_value(path: str, line: int, text: str, unit: Decimal) -> int:
    try:
        x = Decimal(text) * unit
    except InvalidOperation:
        raise MeterDataError(path, line, f"value: {text!r} is not a number") from None
    if not x.is_finite():
        raise MeterDataError(path, line, f"value: {text!r} is not a finite number")
    return int(x.to_integral_value(rounding="ROUND_HALF_UP"))


def _csv_start(path: str, line: int, text: str, previous: int | None) -> int:
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MeterDataError(path, line, f"start: {text!r} is not epoch seconds or an ISO 8601 time") from None
    if moment.tzinfo is not None:
        return int(moment.timestamp())
    first = moment.replace(tzinfo=PACIFIC)
    epoch = int(first.timestamp())
    back = dt.datetime.fromtimestamp(epoch, PACIFIC).replace(tzinfo=None)
    if back != moment:
        raise MeterDataError(path, line, f"start: {text} does not exist in Pacific time (the spring-forward hour)")
    second = int(moment.replace(tzinfo=PACIFIC, fold=1).timestamp())
    if second != epoch and previous is not None and epoch <= previous < second:
        return second  # the repeated autumn hour, second time round
    return epoch
