"""``mock-custodian scenario import FILE``: a scenario written around one customer's own meter data.

One customer, one account, one service agreement per UsagePoint of a Green Button file (or one for a
CSV), an approved Standard third party and its authorization, so ``serve --scenario`` answers at once.
Flow directions, interval length and meters come from the file; the SA entries say ``data: {file: ...}``
so the file is read again (and checked) whenever the scenario loads.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mock_custodian.scenario.data import green_button_usage_points, is_green_button
from mock_custodian.scenario.meter_data import CSV_UNITS
from mock_custodian.scenario.parse import parse_scenario
from mock_custodian.synth.recorded import Recording

TEMPLATE = """\
# Written by `mock-custodian scenario import {source}`.
# {summary}
# Values inside the file's range are served exactly as recorded; days outside it continue the
# file's pattern (set `outside: none` under `data` for no data there).
name: {name}
seed: 1

third_parties:
  - key: my-app
    client_id: "00101"
    user_type: standard
    status: approved
    legal_name: My Energy App, Inc.
    display_name: My Energy App
    tax_id: "941234567"
    redirect_uri: https://localhost:9443/pge/callback
    portal_uri: https://localhost:9443/pge/start
    notification_uri: https://localhost:9443/pge/notify
    data_groups: [Basic, Account, Billing, Usage]
    history_months: 48

customers:
  - key: owner
    username: owner
    password: demo
    accounts:
      - key: owner-1
        service_agreements:
{service_agreements}
authorizations:
  - third_party: my-app
    customer: owner
    created_at: -1d
"""


def _describe(recording: Recording) -> str:
    flows = ", ".join(map(str, recording.flow_directions))
    return (f"interval {recording.interval_length} s, flow directions {flows}, {recording.meters} meter(s), "
            f"{recording.first_day} to {recording.last_day}, {recording.readings():,} readings")


def scenario_text(source: Path, relative_to: Path, *, interval: int | None = None, uom: str | None = None) -> str:
    """The scenario YAML around ``source``; data paths are written relative to ``relative_to``."""
    try:
        ref = os.path.relpath(source.resolve(), relative_to.resolve())
    except ValueError:  # another drive on Windows
        ref = str(source.resolve())
    entries = []
    summaries = []
    if is_green_button(source):
        if interval is not None or uom is not None:
            raise ValueError("--interval and --uom are for CSV files; a Green Button file's ReadingTypes give them")
        points = green_button_usage_points(source)
        for n, point in enumerate(points, start=1):
            key = f"owner-{point.commodity}-{n}"
            data = f'{{file: "{ref}"' + (f', usage_point: "{point.usage_point_id}"' if len(points) > 1 else "") + "}"
            entries.append(f"          - key: {key}\n            data: {data}\n"
                           f"            # {_describe(point.recording)}\n")
            summaries.append(f"UsagePoint {point.usage_point_id} ({point.commodity}) -> {key}")
    else:
        from mock_custodian.scenario.meter_data import read_csv

        unit = uom or "Wh"
        commodity, recording = read_csv(source, interval=interval, uom=unit)
        extra = "".join(f", {k}: {v}" for k, v in (("interval", interval), ("uom", uom)) if v is not None)
        entries.append(f"          - key: owner-{commodity}-1\n            data: {{file: \"{ref}\"{extra}}}\n"
                       f"            # {_describe(recording)}\n")
        summaries.append(f"{source.name} ({commodity}) -> owner-{commodity}-1")
    return TEMPLATE.format(source=source.name, summary="; ".join(summaries), name=source.stem,
                           service_agreements="".join(entries))


def register(_subparsers: argparse._SubParsersAction, scenario_subparsers: argparse._SubParsersAction) -> None:
    parser = scenario_subparsers.add_parser(
        "import", help="write a scenario around a Green Button file or a CSV of interval reads")
    parser.add_argument("file", type=Path, help="Green Button (ESPI Atom XML) file or CSV (start, value, ...)")
    parser.add_argument("--output", "-o", type=Path, help="scenario file to write (default: standard output)")
    parser.add_argument("--interval", type=int, help="CSV only: interval length in seconds (no duration column)")
    parser.add_argument("--uom", choices=sorted(CSV_UNITS), help="CSV only: unit of the value column (default Wh)")
    parser.set_defaults(handler=cmd_scenario_import)


def cmd_scenario_import(args: argparse.Namespace) -> int:
    target_dir = args.output.parent if args.output is not None else Path.cwd()
    text = scenario_text(args.file, target_dir, interval=args.interval, uom=args.uom)
    # The scenario must load as written: check it (its data paths resolve against its own folder).
    parse_scenario(text, str((target_dir / (args.output.name if args.output else "imported.yaml")).resolve()))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"{args.output}: scenario written around {args.file}", file=sys.stderr)
    return 0
