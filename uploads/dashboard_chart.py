"""The dashboard's chart: a day of completions and finished bytes per hour, drawn on the server
as inline SVG, so the admin index needs no script and nothing from another host."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


@dataclass(frozen=True)
class HourBucket:
    start: datetime
    completions: int
    bytes: int


WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 76, 14, 44
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def _n(value: float) -> str:
    return f"{value:.1f}"


def hourly_chart_svg(buckets: Sequence[HourBucket], *, caption: str = "Last 24 hours") -> SafeString:
    """Completions per hour as bars, finished bytes as a line on its own (right-hand) scale.
    Inline SVG rendered here, so the index works offline and without scripts; every hour carries
    a <title> tooltip and the whole an aria-label summary for screen readers."""
    slot = PLOT_W / max(len(buckets), 1)
    top_n = max((b.completions for b in buckets), default=0) or 1
    top_bytes = max((b.bytes for b in buckets), default=0) or 1
    base = TOP + PLOT_H

    def x_mid(i: int) -> float:
        return LEFT + slot * (i + 0.5)

    def hour_label(start: datetime) -> str:
        return timezone.localtime(start).strftime("%H:%M")

    # format_html escapes its arguments into strings first: numbers go in already formatted.
    hours = format_html_join(
        "",
        '<g class="hour"><title>{}\u2013{}: {} completion(s), {}</title>'
        '<rect class="hit" x="{}" y="{}" width="{}" height="{}" fill="transparent"></rect>'
        '<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="#417690"></rect></g>',
        (
            (
                hour_label(b.start),
                hour_label(b.start + timedelta(hours=1)),
                f"{b.completions:,}",
                filesizeformat(b.bytes),
                _n(LEFT + slot * i),
                TOP,
                _n(slot),
                PLOT_H,
                _n(LEFT + slot * (i + 0.15)),
                _n(base - PLOT_H * b.completions / top_n),
                _n(slot * 0.7),
                _n(PLOT_H * b.completions / top_n),
            )
            for i, b in enumerate(buckets)
        ),
    )
    points = " ".join(f"{_n(x_mid(i))},{_n(base - PLOT_H * b.bytes / top_bytes)}" for i, b in enumerate(buckets))
    ticks = format_html_join(
        "",
        '<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#666"></line>{3}',
        (
            (
                _n(x_mid(i)),
                base,
                base + 4,
                format_html(
                    '<text x="{}" y="{}" text-anchor="middle">{}</text>', _n(x_mid(i)), base + 16, hour_label(b.start)
                )
                if i % 3 == 0
                else "",
            )
            for i, b in enumerate(buckets)
        ),
    )
    total_n = sum(b.completions for b in buckets)
    total_bytes = sum(b.bytes for b in buckets)
    busiest = max(buckets, key=lambda b: b.completions, default=None)
    summary = f"{caption}: {total_n:,} completion(s) and {filesizeformat(total_bytes)} finished"
    if busiest is not None and busiest.completions:
        summary += f"; busiest hour {hour_label(busiest.start)} with {busiest.completions:,}"
    return format_html(
        '<svg class="hourly-chart" role="img" aria-label="{summary}" viewBox="0 0 {w} {h}" '
        'xmlns="http://www.w3.org/2000/svg" font-size="11" fill="currentColor">'
        '<line x1="{left}" y1="{base}" x2="{right}" y2="{base}" stroke="#666"></line>'
        '<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="#666"></line>'
        '<line x1="{right}" y1="{top}" x2="{right}" y2="{base}" stroke="#666"></line>'
        '<text x="{lx}" y="{top_text}" text-anchor="end">{top_n}</text>'
        '<text x="{lx}" y="{base}" text-anchor="end">0</text>'
        '<text x="{rx}" y="{top_text}">{top_bytes}</text>'
        '<text x="{rx}" y="{base}">0 B</text>'
        '<text class="axis-title" x="12" y="{mid}" transform="rotate(-90 12 {mid})" text-anchor="middle" '
        'fill="#417690">Completions per hour</text>'
        '<text class="axis-title" x="{ry}" y="{mid}" transform="rotate(90 {ry} {mid})" text-anchor="middle" '
        'fill="#b35900">Bytes finished per hour</text>'
        '<text class="axis-title" x="{cx}" y="{bottom}" text-anchor="middle">Hour starting ({tz})</text>'
        "{hours}{ticks}"
        '<polyline class="bytes-line" points="{points}" fill="none" stroke="#b35900" stroke-width="2"></polyline>'
        "</svg>",
        summary=summary,
        w=WIDTH,
        h=HEIGHT,
        left=LEFT,
        right=LEFT + PLOT_W,
        top=TOP,
        base=base,
        lx=LEFT - 6,
        rx=LEFT + PLOT_W + 6,
        ry=WIDTH - 10,
        top_text=TOP + 8,
        top_n=f"{top_n:,}",
        top_bytes=filesizeformat(top_bytes),
        mid=TOP + PLOT_H // 2,
        cx=LEFT + PLOT_W // 2,
        bottom=HEIGHT - 6,
        tz=timezone.get_current_timezone_name(),
        hours=hours,
        ticks=ticks,
        points=points,
    )
