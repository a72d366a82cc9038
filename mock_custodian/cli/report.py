"""``mock-custodian report``: the integration report from the data dir, with an exit status for CI gates."""

from __future__ import annotations

import argparse
import json

from mock_custodian.cli.common import add_common_options, fail, open_data_dir
from mock_custodian.domain.report import exceeds, format_text, parse_since, report_for
from mock_custodian.errors import ControlError

# Exit statuses: 0 pass (or below --fail-on), 1 findings at or above --fail-on, 2 bad arguments.
EXIT_FINDINGS = 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``report`` to the ``mock-custodian`` command."""
    report = sub.add_parser("report", help="integration report: would this traffic pass at PG&E?")
    add_common_options(report)
    report.add_argument("--client-id", help="only this third party's traffic")
    report.add_argument("--since", help="period start: ISO 8601 instant, epoch seconds, or a duration back from "
                        "now such as 2h (simulated clock; default: since the last reset)")
    report.add_argument("--since-id", type=int, help="only requests after this request-log id")
    report.add_argument("--json", action="store_true", help="machine-readable output")
    report.add_argument("--fail-on", choices=("warning", "error"),
                        help="exit 1 when a finding of this severity (or worse) is present")
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    settings, database, _pki = open_data_dir(args, create=False)
    now = database.clock().epoch()
    try:
        out = report_for(database, settings, now, client_id=args.client_id, since=parse_since(args.since, now),
                         since_id=args.since_id)
    except ControlError as exc:
        return fail(exc.description)
    print(json.dumps(out, indent=2) if args.json else format_text(out))
    return EXIT_FINDINGS if exceeds(out, args.fail_on) else 0
