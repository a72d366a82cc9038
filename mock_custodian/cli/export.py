"""``mock-custodian export``: a Green Button Download My Data file for one usage point and date range.

The same streaming writers as the API, so the file holds exactly what a third party would get, and
memory stays flat over any range; a progress bar on stderr counts the days written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from sqlalchemy import or_, select

from mock_custodian.cli.common import add_common_options, open_data_dir
from mock_custodian.clock import PACIFIC
from mock_custodian.domain.recordings import service_agreement_model
from mock_custodian.espi import UsagePointRequest, usage_feed
from mock_custodian.store.models import ServiceAgreement
from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.vocabulary import RESOURCE_PREFIX


def _day(text: str) -> float:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=PACIFIC).timestamp()


class Progress:
    """A one-line progress bar, redrawn at most ten times a second; silent when stderr is not a terminal."""

    def __init__(self, total: float, stream: IO[str] = sys.stderr, force: bool = False) -> None:
        self.total, self.stream = max(total, 1.0), stream
        self.enabled = force or stream.isatty()
        self._last = 0.0

    def update(self, done: float, final: bool = False) -> None:
        if not self.enabled or (not final and time.monotonic() - self._last < 0.1):
            return
        self._last = time.monotonic()
        share = min(done / self.total, 1.0)
        bar = "#" * int(share * 30)
        self.stream.write(f"\r[{bar:<30}] {share * 100:5.1f}%")
        if final:
            self.stream.write("\n")
        self.stream.flush()


def export_feed(model: ServiceAgreementModel, start: float, end: float, *, resource_base: str, now: float,
                subscription_id: str = "1", progress: Progress | None = None) -> Iterator[bytes]:
    """The usage feed of one SA over [start, end), with bills issued by ``now``."""
    request = UsagePointRequest(subscription_id=subscription_id, sa=model, start=start, end=end)
    self_href = f"{resource_base}/Batch/Subscription/{subscription_id}/UsagePoint/{model.usage_point_id}"
    for chunk in usage_feed([request], resource_base=resource_base, self_href=self_href, now=now):
        if progress is not None:
            marker = chunk.rfind(b"/IntervalBlock/")
            if marker >= 0:
                digits = chunk[marker + 15:marker + 25]
                if digits.isdigit():
                    progress.update(int(digits) - start)
        yield chunk
    if progress is not None:
        progress.update(end - start, final=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export`` to the ``mock-custodian`` command."""
    parser = subparsers.add_parser("export", help="write a Green Button Download My Data file for one SA")
    add_common_options(parser)
    parser.add_argument("service_agreement", help="SA key (e.g. rivera-electric), SA number or usage point id")
    parser.add_argument("--start", required=True, help="first local day, YYYY-MM-DD")
    parser.add_argument("--end", required=True, help="day after the last, YYYY-MM-DD")
    parser.add_argument("--output", "-o", type=Path, help="file to write (default: standard output)")
    parser.add_argument("--progress", action="store_true", help="show the progress bar even when not a terminal")
    parser.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    start, end = _day(args.start), _day(args.end)
    if start >= end:
        raise ValueError("--start must be before --end")
    settings, database, _pki = open_data_dir(args, create=True)
    with database.session() as db:
        ref = args.service_agreement
        sa = db.execute(select(ServiceAgreement).where(or_(
            ServiceAgreement.key == ref, ServiceAgreement.sa_number == ref, ServiceAgreement.usage_point_id == ref,
        ))).scalar_one_or_none()
        if sa is None:
            raise ValueError(f"no service agreement {ref!r} (use its scenario key, SA number or usage point id)")
        model = service_agreement_model(db, sa)
    now = database.clock().epoch()
    resource_base = f"{settings.resolved_api_base_url()}{RESOURCE_PREFIX}"
    progress = Progress(min(end, now) - start, force=args.progress)
    chunks = export_feed(model, start, min(end, now), resource_base=resource_base, now=now, progress=progress)
    if args.output is None:
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    else:
        written = 0
        with args.output.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
        print(f"{args.output}: {written} bytes", file=sys.stderr)
    return 0
