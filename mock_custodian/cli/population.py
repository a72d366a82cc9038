"""``mock-custodian scenario new --cca N``: a starter scenario with a generated population.

Extends the ``scenario new`` command of ``control_cli`` (which writes the hand-written starter) with
``--cca N`` / ``--customers N`` / ``--seed``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mock_custodian.scenario.parse import parse_scenario
from mock_custodian.scenario.population import MAX_COUNT, starter_scenario


def register(sub: Any, scenario_sub: Any) -> None:
    """Add the population options to ``scenario new``."""
    new = scenario_sub.choices["new"]
    group = new.add_mutually_exclusive_group()
    group.add_argument("--cca", type=int, metavar="N", help="generate N customers, all in a CCA's territory")
    group.add_argument("--customers", type=int, metavar="N", help="generate N customers (no CCA territory)")
    new.add_argument("--seed", type=int, default=1, help="seed of the generated population (default 1)")
    plain = new.get_default("handler")
    new.set_defaults(handler=lambda args: cmd_scenario_new(args, plain))


def cmd_scenario_new(args: argparse.Namespace, plain: Callable[[argparse.Namespace], int]) -> int:
    if args.cca is None and args.customers is None:
        return plain(args)
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
        print(f"mock-custodian: {file} exists (use --force to overwrite)", file=sys.stderr)
        return 2
    file.write_text(text, encoding="utf-8")
    print(f"wrote {file}; check it with `mock-custodian scenario validate {file}`")
    return 0
