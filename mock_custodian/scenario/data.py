"""A scenario service agreement's own meter data: ``data: {file: ...}`` entries (issue 19).

Kept apart from ``scenario.py``: the parser calls :func:`sa_data` for an SA with a ``data`` mapping and
gets the model keys the file fixes (profile ``recorded``, interval length, flows, meters, commodity)
plus the :class:`Recording` the loader stores. Paths are relative to the scenario file.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mock_custodian.scenario.meter_data import (
    CSV_UNITS,
    MeterDataError,
    UsagePointData,
    read_csv,
    read_green_button,
)
from mock_custodian.synth.recorded import OUTSIDE_MODES, Recording

DATA_KEYS = {"file", "usage_point", "interval", "uom", "quality", "flow_direction", "outside"}
_PARSED: OrderedDict[tuple, list[UsagePointData]] = OrderedDict()
_LOCK = threading.Lock()


def resolve_path(scenario_path: str, file: str) -> Path:
    """A data file named in a scenario: absolute, or relative to the scenario file's folder."""
    target = Path(file).expanduser()
    if target.is_absolute():
        return target
    base = Path(scenario_path)
    return (base.parent if base.suffix or base.is_file() else Path.cwd()) / target


def is_green_button(path: Path) -> bool:
    """XML by extension, else by its first non-blank character."""
    if path.suffix.lower() in (".xml", ".atom"):
        return True
    if path.suffix.lower() in (".csv", ".txt"):
        return False
    try:
        with path.open("rb") as handle:
            return handle.read(512).lstrip().lstrip(b"\xef\xbb\xbf").startswith(b"<")
    except OSError:
        return False


def green_button_usage_points(path: Path) -> list[UsagePointData]:
    """Every UsagePoint of a Green Button file, parsed once per file version in this process."""
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise MeterDataError(str(path), None, f"cannot read: {exc.strerror or exc}") from None
    with _LOCK:
        if key in _PARSED:
            return _PARSED[key]
    found = read_green_button(path)
    with _LOCK:
        _PARSED[key] = found
        while len(_PARSED) > 4:
            _PARSED.popitem(last=False)
    return found


def sa_data(scenario_path: str, data: Mapping[str, Any]) -> tuple[dict[str, Any], Recording]:
    """Model keys and recording of one ``data`` mapping; ``ValueError`` "field: message" on bad input."""
    unknown = sorted(str(k) for k in data if k not in DATA_KEYS)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (expected one of {', '.join(sorted(DATA_KEYS))})")
    file = data.get("file")
    if not isinstance(file, str) or not file:
        raise ValueError("file: required (a Green Button XML file or a CSV of interval reads)")
    outside = data.get("outside", "continue")
    if outside not in OUTSIDE_MODES:
        raise ValueError(f"outside: {outside!r} is not one of {', '.join(OUTSIDE_MODES)}")
    path = resolve_path(scenario_path, file)
    if is_green_button(path):
        for key in ("interval", "uom", "quality", "flow_direction"):
            if key in data:
                raise ValueError(f"{key}: only for a CSV; a Green Button file's ReadingTypes give it")
        points = green_button_usage_points(path)
        point = _choose(points, data.get("usage_point"), str(path))
        commodity, recording = point.commodity, point.recording
    else:
        if "usage_point" in data:
            raise ValueError("usage_point: only for a Green Button file")
        interval = data.get("interval")
        if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int)):
            raise ValueError(f"interval: expected seconds (900, 3600, ...), got {interval!r}")
        uom = data.get("uom", "Wh")
        if uom not in CSV_UNITS:
            raise ValueError(f"uom: unknown unit {uom!r} (expected one of {', '.join(CSV_UNITS)})")
        quality, flow = data.get("quality", 17), data.get("flow_direction", 1)
        if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 255:
            raise ValueError(f"quality: expected an ESPI quality code (0-255), got {quality!r}")
        if flow not in (1, 4, 19):
            raise ValueError(f"flow_direction: expected 1, 19 or 4, got {flow!r}")
        commodity, recording = read_csv(path, interval=interval, uom=uom, quality=quality, flow_direction=flow)
    keys = {
        "profile": "recorded", "recording": recording.digest, "recording_outside": outside,
        "interval_length": recording.interval_length, "meters": recording.meters,
        "flow_directions": list(recording.flow_directions), "commodity": commodity,
    }
    return keys, recording


def _choose(points: list[UsagePointData], wanted: Any, path: str) -> UsagePointData:
    if wanted is None:
        if len(points) > 1:
            ids = ", ".join(p.usage_point_id for p in points)
            raise ValueError(f"usage_point: {path} holds {len(points)} UsagePoints ({ids}); name one")
        return points[0]
    for point in points:
        if str(wanted) in (point.usage_point_id, point.href):
            return point
    if isinstance(wanted, int) and 1 <= wanted <= len(points):
        return points[wanted - 1]
    raise ValueError(f"usage_point: {wanted!r} is not a UsagePoint of {path} "
                     f"({', '.join(p.usage_point_id for p in points)}, or 1-{len(points)})")
