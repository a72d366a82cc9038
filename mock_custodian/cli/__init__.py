"""The ``mock-custodian`` command: one parser built from the command-group modules.

Each module in this package is one command group with ``register(subparsers)``, adding its parsers
with ``set_defaults(handler=...)``; what they share (common options, opening the data dir, failing)
is ``cli.common``. The order below is the order ``mock-custodian --help`` lists the commands in.
"""

from __future__ import annotations

import argparse
import sys

from mock_custodian.cli import control, export, report, scenario, serve, third_party, validate, worker
from mock_custodian.cli.common import fail
from mock_custodian.scenario.parse import ScenarioError

COMMAND_GROUPS = (serve, scenario, validate, control, third_party, export, worker, report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mock-custodian",
        description="A faithful local simulator of PG&E's Share My Data (Green Button Connect My Data).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a bad scenario or value is a message on stderr and exit status 2, not a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ScenarioError as exc:
        return fail(f"scenario error: {exc}")
    except ValueError as exc:
        return fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
