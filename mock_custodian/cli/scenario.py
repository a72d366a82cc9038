"""``mock-custodian scenario ...``: validate, new, load and import scenario files.

``scenario new`` writes the commented starter (``fixtures/starter.yaml``) or, with ``--cca N`` /
``--customers N``, a starter with a generated population. ``scenario import FILE`` writes a scenario
around one customer's own meter data: one customer, one account, one service agreement per UsagePoint
of a Green Button file (or one for a CSV), an approved Standard third party and its authorization, so
``serve --scenario`` answers at once. Flow directions, interval length and meters come from the file;
the SA entries say ``data: {file: ...}`` so the file is read again (and checked) whenever the scenario loads.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mock_custodian.cli.common import add_common_options, fail, open_data_dir
from mock_custodian.domain.world import load_world
from mock_custodian.scenario.data import green_button_usage_points, is_green_button
from mock_custodian.scenario.meter_data import CSV_UNITS, read_csv
from mock_custodian.scenario.parse import STARTER_FILE, load_scenario_file, parse_scenario
from mock_custodian.scenario.population import MAX_COUNT, starter_scenario
from mock_custodian.synth.recorded import Recording


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``scenario`` (validate, new, load, import) to the ``mock-custodian`` command."""
    scenario = sub.add_parser("scenario", help="scenario files")
    scenario_sub = scenario.add_subparsers(dest="scenario_command", required=True)
    validate = scenario_sub.add_parser("validate", help="check a scenario file; errors name file, line, field")
    validate.add_argument("file", type=Path)
    validate.set_defaults(handler=cmd_scenario_validate)

    new = scenario_sub.add_parser("new", help="write a commented starter scenario (to FILE, or print it)")
    new.add_argument("file", type=Path, nargs="?")
    new.add_argument("--force", action="store_true", help="overwrite FILE")
    group = new.add_mutually_exclusive_group()
    group.add_argument("--cca", type=int, metavar="N", help="generate N customers, all in a CCA's territory")
    group.add_argument("--customers", type=int, metavar="N", help="generate N customers (no CCA territory)")
    new.add_argument("--seed", type=int, default=1, help="seed of the generated population (default 1)")
    new.set_defaults(handler=cmd_scenario_new)

    load = scenario_sub.add_parser("load", help="replace the world with a scenario (a running server follows)")
    add_common_options(load)
    load.add_argument("file", type=Path)
    load.set_defaults(handler=cmd_scenario_load)

    parser = scenario_sub.add_parser(
        "import", help="write a scenario around a Green Button file or a CSV of interval reads")
    parser.add_argument("file", type=Path, help="Green Button (ESPI Atom XML) file or CSV (start, value, ...)")
    parser.add_argument("--output", "-o", type=Path, help="scenario file to write (default: standard output)")
    parser.add_argument("--interval", type=int, help="CSV only: interval length in seconds (no duration column)")
    parser.add_argument("--uom", choices=sorted(CSV_UNITS), help="CSV only: unit of the value column (default Wh)")
    parser.set_defaults(handler=cmd_scenario_import)


def cmd_scenario_validate(args: argparse.Namespace) -> int:
    scenario = load_scenario_file(args.file)
    count = sum(len(a.service_agreements) for c in scenario.customers for a in c.accounts)
    print(f"{args.file}: valid: {len(scenario.third_parties)} third parties, {len(scenario.customers)} customers, "
          f"{count} service agreements, {len(scenario.authorizations)} authorizations"
          + (f", {scenario.population.count} generated customers" if scenario.population else ""))
    return 0


def cmd_scenario_new(args: argparse.Namespace) -> int:
    """The commented starter file, or (``--cca``/``--customers``) a starter with a generated population."""
    if args.cca is None and args.customers is None:
        return write_scenario(STARTER_FILE.read_text(encoding="utf-8"), args.file, args.force)
    count = args.cca if args.cca is not None else args.customers
    if not 0 <= count <= MAX_COUNT:
        raise ValueError(f"the number of customers must be from 0 to {MAX_COUNT}")
    text = starter_scenario(cca=args.cca, customers=args.customers, seed=args.seed)
    parse_scenario(text, "<starter>")  # the starter must always be a valid scenario
    return write_scenario(text, args.file, args.force)


def write_scenario(text: str, file: Path | None, force: bool) -> int:
    """A starter scenario to standard output, or to a file that is only overwritten with --force."""
    if file is None:
        sys.stdout.write(text)
        return 0
    if file.exists() and not force:
        return fail(f"{file} exists (use --force to overwrite)")
    file.write_text(text, encoding="utf-8")
    print(f"wrote {file}; check it with `mock-custodian scenario validate {file}`")
    return 0


def cmd_scenario_load(args: argparse.Namespace) -> int:
    _settings, database, pki = open_data_dir(args, create=False)
    # Absolute, so a later reset finds it from anywhere; a built-in name (catalog) when no such file exists.
    scenario = load_scenario_file(args.file.resolve() if args.file.exists() else args.file)
    load_world(database, scenario, pki)
    print(f"loaded scenario {scenario.name!r} from {args.file}")
    return 0


# --- scenario import -------------------------------------------------------------------------------

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
        unit = uom or "Wh"
        commodity, recording = read_csv(source, interval=interval, uom=unit)
        extra = "".join(f", {k}: {v}" for k, v in (("interval", interval), ("uom", uom)) if v is not None)
        entries.append(f"          - key: owner-{commodity}-1\n            data: {{file: \"{ref}\"{extra}}}\n"
                       f"            # {_describe(recording)}\n")
        summaries.append(f"{source.name} ({commodity}) -> owner-{commodity}-1")
    return TEMPLATE.format(source=source.name, summary="; ".join(summaries), name=source.stem,
                           service_agreements="".join(entries))


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
