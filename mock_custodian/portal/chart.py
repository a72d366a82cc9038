"""Server-drawn SVG bar charts for the simulator console: no JavaScript, no external assets.

Pure: plain values in, an SVG string out. Each bar carries its mark (normal, estimated, corrected,
missing) as a class and a ``data-mark`` attribute, so a page, a test and a screen reader can tell them
apart; a ``<title>`` per bar gives the exact value.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

MARK_COLOURS = {"normal": "#00497a", "estimated": "#f5a800", "corrected": "#7b3fa0", "missing": "#b3261e"}
MARK_LABELS = {"normal": "actual", "estimated": "estimated", "corrected": "corrected", "missing": "missing (gap)"}


@dataclass(frozen=True)
class ChartPoint:
    label: str  # x-axis label (a day or a month)
    value: float  # in ``unit``
    mark: str = "normal"  # normal | estimated | corrected | missing


def usage_svg(points: list[ChartPoint], unit: str, title: str, width: int = 860, height: int = 300) -> str:
    """A bar chart with a y axis, x labels (thinned to fit) and a legend of the marks present."""
    left, right, top, bottom = 64, 16, 28, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((p.value for p in points), default=0.0)
    scale_top = _nice(peak) if peak > 0 else 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             f'<text x="{left}" y="18" class="chart-title" font-size="14" font-weight="700">{escape(title)}</text>']
    for i in range(5):  # gridlines and y labels
        value = scale_top * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c9d3da" '
                     'stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#51606b">'
                     f"{_fmt(value)}</text>")
    parts.append(f'<text x="14" y="{top + plot_h / 2:.1f}" font-size="11" fill="#51606b" '
                 f'transform="rotate(-90 14 {top + plot_h / 2:.1f})" text-anchor="middle">{escape(unit)}</text>')
    n = max(len(points), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.72, 1.0)
    every = max(1, round(n / 14))
    for i, point in enumerate(points):
        x = left + i * slot + (slot - bar_w) / 2
        if point.mark == "missing":
            bar_h, y = 4.0, top + plot_h - 4.0
        else:
            bar_h = plot_h * point.value / scale_top if scale_top else 0.0
            y = top + plot_h - bar_h
        colour = MARK_COLOURS.get(point.mark, MARK_COLOURS["normal"])
        parts.append(f'<rect class="bar bar-{escape(point.mark)}" data-mark="{escape(point.mark)}" '
                     f'data-value="{point.value:.3f}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                     f'height="{bar_h:.1f}" fill="{colour}"><title>{escape(point.label)}: {_fmt(point.value)} '
                     f"{escape(unit)} ({MARK_LABELS.get(point.mark, point.mark)})</title></rect>")
        if i % every == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" font-size="11" '
                         f'text-anchor="middle" fill="#51606b">{escape(point.label)}</text>')
    marks = [m for m in MARK_COLOURS if any(p.mark == m for p in points)]
    x = left
    for mark in marks:
        parts.append(f'<rect x="{x}" y="{height - 18}" width="12" height="12" fill="{MARK_COLOURS[mark]}"/>')
        parts.append(f'<text x="{x + 16}" y="{height - 8}" font-size="12" fill="#1f2a33">{MARK_LABELS[mark]}</text>')
        x += 30 + 7 * len(MARK_LABELS[mark])
    parts.append("</svg>")
    return "".join(parts)


def _nice(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value``."""
    power = 10.0 ** (len(str(int(value))) - 1) if value >= 1 else 10.0 ** -3
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
