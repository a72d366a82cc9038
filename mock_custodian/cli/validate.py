"""``mock-custodian validate``: check Atom feeds and ESPI documents against the shipped ESPI schemas."""

from __future__ import annotations

import argparse

from mock_custodian.espi.validate import format_outcome, validate_path

#: Some file is invalid (the verdicts say which and where).
EXIT_INVALID = 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``validate`` to the ``mock-custodian`` command."""
    check = sub.add_parser("validate", help="validate Atom feeds and ESPI documents against the shipped ESPI schemas")
    check.add_argument("files", nargs="+", metavar="FILE", help="XML file to check ('-' reads standard input)")
    check.add_argument("--quiet", action="store_true", help="print only invalid files and the summary")
    check.set_defaults(handler=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    """Each file's verdict and its errors with line numbers; exit 1 when any file is invalid."""
    good = bad = 0
    for path in args.files:
        outcome = validate_path(path)
        good, bad = good + outcome.ok, bad + (not outcome.ok)
        if outcome.ok and args.quiet:
            continue
        print("\n".join(format_outcome("<stdin>" if path == "-" else path, outcome)))
    print(f"{good} valid, {bad} invalid")
    return 0 if bad == 0 else EXIT_INVALID
