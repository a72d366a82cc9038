"""Streaming usage feeds (§7.2) that wire the synth engine to the writers.

The web layer describes *what* to serve (subscription, SA model, window, granted
groups) with :class:`UsagePointRequest`; :func:`usage_feed` yields byte chunks of
the whole Atom feed. Memory stays flat: one day's block is computed, written and
dropped at a time, whatever the range or the number of usage points.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass

from mock_custodian.espi.atom import FEED_TAIL, USAGE_FEED_TITLE, coalesce, feed, feed_head
from mock_custodian.espi.usage import (
    IntervalBlockEntries,
    ReadingTypeSpec,
    Time,
    UsagePointPaths,
    local_time_parameters_entry,
    meter_reading_entry,
    meter_reading_id,
    program_id_mappings_entry,
    reading_type_entry,
    usage_point_entry,
    usage_summary_entry,
)
from mock_custodian.synth.billing import DEFAULT_BILL_DELAY, Bill, bills
from mock_custodian.synth.config import ServiceAgreementModel
from mock_custodian.synth.readings import DayReadings, Overrides, iter_day_readings

#: Optional hook: self href -> (published, updated) for entries the store has dated (e.g. corrections).
EntryTimes = Callable[[str], "tuple[Time, Time] | None"]


@dataclass(frozen=True)
class UsagePointRequest:
    """One UsagePoint of a usage feed: which SA, which window, which data groups.

    ``usage`` gates MeterReadings/IntervalBlocks, ``billing`` the UsageSummary money
    elements; UsageSummaries appear when either is granted. ``days`` (block start
    epochs) and ``summary_starts`` restrict a daily package to what changed.
    ``bills`` replaces the computed bills (e.g. revised ones held by the store).
    """

    subscription_id: str
    sa: ServiceAgreementModel
    start: float
    end: float
    usage: bool = True
    billing: bool = True
    program_enrollment: bool = False
    include_usage_summaries: bool = True
    days: Collection[int] | None = None
    summary_starts: Collection[int] | None = None
    overrides: Overrides | None = None
    bills: Sequence[Bill] | None = None


def meter_readings_of(sa: ServiceAgreementModel) -> list[tuple[int, int, ReadingTypeSpec, str]]:
    """(meter, flow direction, ReadingType, MeterReadingID) of every MeterReading of an SA, in feed order."""
    if not sa.is_interval:
        return []
    out = []
    for meter in range(1, sa.meters + 1):
        for flow in sa.flow_directions:
            rt = ReadingTypeSpec(sa.uom, sa.interval_length, flow, sa.espi_commodity)
            out.append((meter, flow, rt, meter_reading_id(rt.id, meter)))
    return out


def billed_reading_type(sa: ServiceAgreementModel) -> ReadingTypeSpec:
    """The billed-total ReadingType a UsageSummary's ``readingTypeRef`` points to."""
    return ReadingTypeSpec(sa.uom, None, sa.billed_flow_direction, sa.espi_commodity)


def service_kind(sa: ServiceAgreementModel) -> int:
    """UsagePoint ServiceCategory/kind: 0 electricity, 1 gas."""
    return 1 if sa.commodity == "gas" else 0


def bills_for(req: UsagePointRequest, now: float, bill_delay: int = DEFAULT_BILL_DELAY) -> list[Bill]:
    """Issued bills of the request's window (or the request's own), filtered to ``summary_starts``."""
    if not (req.include_usage_summaries and (req.usage or req.billing)):
        return []
    found = list(req.bills) if req.bills is not None else list(
        bills(req.sa, req.start, req.end, now, overrides=req.overrides, bill_delay=bill_delay))
    if req.summary_starts is not None:
        found = [b for b in found if b.start in req.summary_starts]
    return found


def iter_interval_block_entries(
    req: UsagePointRequest, meter: int, flow: int, mr_id: str, *, resource_base: str, published: Time,
    updated: Time, entry_times: EntryTimes | None = None, dst_block_duration: str = "actual", style: str = "pge",
    on_block: Callable[[object], None] | None = None,
) -> Iterator[bytes]:
    """IntervalBlock entries of one MeterReading within the request window (ascending local days)."""
    paths = UsagePointPaths(resource_base, req.subscription_id, req.sa.usage_point_id)
    writer = IntervalBlockEntries(paths, mr_id, dst_block_duration=dst_block_duration, style=style)
    collection = writer.collection
    for block in request_blocks(req, meter, flow):
        pub, upd = published, updated
        if entry_times is not None:
            found = entry_times(f"{collection}/{block.day_start}")
            if found is not None:
                pub, upd = found
        if on_block is not None:
            on_block(block)
        yield writer.entry(block, published=pub, updated=upd)


def has_usage_data(req: UsagePointRequest, now: float, bill_delay: int = DEFAULT_BILL_DELAY) -> bool:
    """Whether the request would put any IntervalBlock or UsageSummary in a feed (else PG&E answers 204)."""
    if req.usage and req.sa.is_interval:
        for meter, flow, _, _ in meter_readings_of(req.sa):
            for _block in request_blocks(req, meter, flow):
                return True
    return bool(bills_for(req, now, bill_delay))


def request_blocks(req: UsagePointRequest, meter: int, flow: int) -> Iterator[DayReadings]:
    """The request's blocks of one MeterReading; with ``days`` (an ``updated-*`` selection) only those days
    are computed, not every day of a window that may span three years."""
    if req.days is None:
        yield from iter_day_readings(req.sa, meter, flow, req.start, req.end, req.overrides)
        return
    for day_start in sorted(req.days):  # whole local days, each at or after the window's first midnight
        if day_start < req.end:
            for block in iter_day_readings(req.sa, meter, flow, day_start, day_start + 1, req.overrides):
                if block.day_start == day_start:
                    yield block


def usage_feed(
    usage_points: Iterable[UsagePointRequest],
    *,
    resource_base: str,
    self_href: str,
    now: float,
    feed_id: str | None = None,
    published: Time | None = None,
    updated: Time | None = None,
    entry_times: EntryTimes | None = None,
    dst_block_duration: str = "actual",
    style: str = "pge",
    bill_delay: int = DEFAULT_BILL_DELAY,
    chunk_size: int = 65536,
) -> Iterator[bytes]:
    """The full usage feed of §7.2 as byte chunks.

    Order: LocalTimeParameters; per UsagePoint (by SubscriptionID, then UsagePointID)
    its not-yet-emitted ReadingTypes, the UsagePoint, each MeterReading followed by
    its IntervalBlocks, then its UsageSummaries; ProgramIdMapping last if any
    reading carried ``tou``. ``now`` decides which bills exist; ``published`` and
    ``updated`` (default ``now``) date every entry unless ``entry_times`` says otherwise.
    """
    pub = now if published is None else published
    upd = now if updated is None else updated
    requests = sorted(usage_points, key=lambda r: (
        (0, int(r.subscription_id)) if r.subscription_id.isdigit() else (1, r.subscription_id),
        r.sa.usage_point_id))

    def times(href: str) -> tuple[Time, Time]:
        found = entry_times(href) if entry_times is not None else None
        return found if found is not None else (pub, upd)

    def entries() -> Iterator[bytes]:
        yield feed_head(self_href=self_href, updated=upd, title=USAGE_FEED_TITLE, feed_id=feed_id)
        p, u = times(f"{resource_base}/LocalTimeParameters/1")
        yield local_time_parameters_entry(resource_base=resource_base, published=p, updated=u, style=style)
        emitted_types: set[str] = set()
        any_tou = False
        for req in requests:
            sa = req.sa
            paths = UsagePointPaths(resource_base, req.subscription_id, sa.usage_point_id)
            readings = meter_readings_of(sa) if req.usage else []
            found_bills = bills_for(req, now, bill_delay)
            types = [rt for _, _, rt, _ in readings]
            if found_bills:
                types.append(billed_reading_type(sa))
            for rt in types:
                if rt.id not in emitted_types:
                    emitted_types.add(rt.id)
                    p, u = times(f"{resource_base}/ReadingType/{rt.id}")
                    yield reading_type_entry(rt, resource_base=resource_base, published=p, updated=u, style=style)
            p, u = times(paths.usage_point)
            yield usage_point_entry(paths, service_kind=service_kind(sa), published=p, updated=u, style=style,
                                    tariff_profile=sa.rate_schedule if req.program_enrollment else None)
            for meter, flow, rt, mr_id in readings:
                p, u = times(paths.meter_reading(mr_id))
                yield meter_reading_entry(paths, mr_id, rt.id, published=p, updated=u, style=style)
                tou_seen = [False]

                def note_tou(block, seen=tou_seen) -> None:
                    if block.tou is not None:
                        seen[0] = True

                yield from iter_interval_block_entries(
                    req, meter, flow, mr_id, resource_base=resource_base, published=pub, updated=upd,
                    entry_times=entry_times, dst_block_duration=dst_block_duration, style=style,
                    on_block=None if any_tou else note_tou,
                )
                any_tou = any_tou or tou_seen[0]
            for bill in found_bills:
                p, u = times(f"{paths.usage_summaries}/{bill.start}")
                yield usage_summary_entry(paths, bill, published=p, updated=u, billing=req.billing, style=style)
        if any_tou:
            p, u = times(f"{resource_base}/ProgramIdMapping/1")
            yield program_id_mappings_entry(resource_base=resource_base, published=p, updated=u, style=style)
        yield FEED_TAIL

    return coalesce(entries(), chunk_size)


__all__ = [
    "EntryTimes",
    "UsagePointRequest",
    "billed_reading_type",
    "bills_for",
    "feed",
    "has_usage_data",
    "iter_interval_block_entries",
    "meter_readings_of",
    "service_kind",
    "usage_feed",
]
