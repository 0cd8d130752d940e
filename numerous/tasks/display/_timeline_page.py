"""Draws timeline entries as an SVG image, or an HTML page around one (no script, no links).

::

    render_scene a1b2c3  ░░░░████████████▌ completed 1.68s      one row per instance:
    render_scene 77aa01  ░░░░░░░░░░░░░░░░░░░░██████████▌ ...    queued ░, running █,
    crawl_site   c0ffee  ████████████████▒▒▒▌ stopped 5.2s       stopping ▒, the end cap ▌
                         0s        1s        2s        3s       coloured by the outcome

Hovering a row shows its timing record (SVG ``<title>``: every browser shows it).
"""

from __future__ import annotations

import math
from html import escape
from typing import Dict, List, Optional, Sequence, Tuple

from ._format import format_seconds
from ._timeline_entry import TimelineEntry

__all__ = ["html_page", "svg_image"]

# Geometry, in pixels.
LABEL_WIDTH = 230  # task name and instance id
CHART_WIDTH = 700
OUTCOME_WIDTH = 250  # "failed after 0.12s: ValueError: ..."
ROW_HEIGHT = 18
BAR_HEIGHT = 12
TOP = 64  # title, summary and legend above the rows
AXIS_HEIGHT = 28
CAP_WIDTH = 4
FONT = "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace"
#: Characters of the instance id shown, as on the live display.
SHORT_ID = 6
#: Characters of an error shown beside its bar (the whole text is in the hover).
ERROR_CHARS = 34

PHASE_COLOURS = {"queued": "#cbd5e1", "running": "#3b82f6", "stopping": "#f59e0b"}
OUTCOME_COLOURS = {
    "completed": "#16a34a",
    "stopped": "#ca8a04",
    "failed": "#dc2626",
    "cancelled": "#c026d3",
    "": "#64748b",  # not finished when the file was written
}


def svg_image(entries: Sequence[TimelineEntry], title: str, now_ns: int) -> str:
    """The timeline as a standalone SVG document."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _svg(entries, title, now_ns)


def html_page(entries: Sequence[TimelineEntry], title: str, now_ns: int) -> str:
    """The timeline as an HTML page with the SVG inline: one file, nothing to fetch."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · timeline</title>"
        "<style>body{margin:16px;background:#fff;color:#0f172a;font-family:" + FONT + "}"
        "svg .row:hover rect.hover{fill:#f1f5f9}</style></head>\n<body>\n"
        + _svg(entries, title, now_ns)
        + "\n</body></html>\n"
    )


def _svg(entries: Sequence[TimelineEntry], title: str, now_ns: int) -> str:
    ordered = sorted(entries, key=lambda e: e.times.started_ns if e.times.started_ns is not None else now_ns)
    origin = min((e.times.started_ns for e in ordered if e.times.started_ns is not None), default=now_ns)
    end = max([_end_ns(e, now_ns) for e in ordered] + [origin + 1])
    span = (end - origin) / 1e9
    scale = CHART_WIDTH / span  # pixels per second
    sessions = list(dict.fromkeys(e.session for e in ordered))
    rows: List[Tuple[Optional[str], Optional[TimelineEntry]]] = []
    for session in sessions:
        if len(sessions) > 1:
            rows.append((session, None))  # a heading row per session
        rows += [(None, e) for e in ordered if e.session == session]
    width = LABEL_WIDTH + CHART_WIDTH + OUTCOME_WIDTH
    height = TOP + len(rows) * ROW_HEIGHT + AXIS_HEIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="20" font-size="15" font-weight="bold" fill="#0f172a">{escape(title)}</text>',
        f'<text x="8" y="38" fill="#334155">{escape(_summary(ordered, span))}</text>',
        _legend(8, 54),
    ]
    chart_bottom = TOP + len(rows) * ROW_HEIGHT
    parts += _axis(span, scale, chart_bottom)
    for index, (heading, entry) in enumerate(rows):
        y = TOP + index * ROW_HEIGHT
        if entry is None:
            parts.append(
                f'<text x="8" y="{y + 13}" font-weight="bold" fill="#0f172a">session {escape(heading or "")}</text>'
            )
            continue
        parts.append(_row(entry, y, origin, scale, now_ns))
    parts.append("</svg>")
    return "\n".join(parts)


def _end_ns(entry: TimelineEntry, now_ns: int) -> int:
    times = entry.times
    return times.finished_ns if times.finished_ns is not None else now_ns


def _summary(entries: Sequence[TimelineEntry], span: float) -> str:
    counts: Dict[str, int] = {}
    for entry in entries:
        counts[entry.outcome or "unfinished"] = counts.get(entry.outcome or "unfinished", 0) + 1
    order = ("completed", "stopped", "failed", "cancelled", "unfinished")
    by_outcome = ", ".join(f"{counts[o]} {o}" for o in order if o in counts)
    n = len(entries)
    return f"{n} instance{'s' if n != 1 else ''}: {by_outcome} · {format_seconds(span)} from the first start() to the last end"


def _legend(x: int, y: int) -> str:
    # "queued" runs from start() until the body began: waiting for a slot, then for a worker.
    items = [("queued/starting" if name == "queued" else name, colour) for name, colour in PHASE_COLOURS.items()]
    items += [(name, colour) for name, colour in OUTCOME_COLOURS.items() if name]
    parts = []
    for name, colour in items:
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="{y}" fill="#334155">{name}</text>')
        x += 24 + 8 * len(name)
    return "\n".join(parts)


def _axis(span: float, scale: float, bottom: int) -> List[str]:
    step = _nice_step(span / 8)
    parts = []
    tick = 0.0
    while tick <= span + 1e-9:
        x = LABEL_WIDTH + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{bottom}" stroke="#e2e8f0"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" fill="#64748b">{_tick_label(tick, step)}</text>'
        )
        tick += step
    return parts


def _nice_step(rough: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``rough``."""
    if rough <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(rough))
    for multiple in (1, 2, 5, 10):
        if multiple * power >= rough:
            return multiple * power
    return 10 * power


def _tick_label(seconds: float, step: float) -> str:
    if step >= 60:
        return format_seconds(seconds)
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{seconds:.{decimals}f}s"


def _row(entry: TimelineEntry, y: int, origin: int, scale: float, now_ns: int) -> str:
    times = entry.times
    start = times.started_ns if times.started_ns is not None else now_ns
    end = _end_ns(entry, now_ns)
    running = times.running_ns
    stop = times.stop_requested_ns
    phases: List[Tuple[str, int, int]] = []
    queued_until = running if running is not None else end
    phases.append(("queued", start, min(queued_until, end)))
    if running is not None:
        # A stop requested while the worker was starting is pending from the body's start.
        stopping_from = max(stop, running) if stop is not None and stop < end else end
        phases.append(("running", running, stopping_from))
        if stopping_from < end:
            phases.append(("stopping", stopping_from, end))

    def x_of(ns: int) -> float:
        return LABEL_WIDTH + (ns - origin) / 1e9 * scale

    bar_y = y + (ROW_HEIGHT - BAR_HEIGHT) / 2
    parts = [
        f'<g class="row"><title>{escape(_hover(entry, origin, now_ns))}</title>',
        f'<rect class="hover" x="0" y="{y}" width="{LABEL_WIDTH + CHART_WIDTH + OUTCOME_WIDTH}" height="{ROW_HEIGHT}" fill="transparent"/>',
        f'<text x="8" y="{y + 13}" fill="#0f172a">{escape(_clip(entry.task_name, 20))} '
        f'<tspan fill="#64748b">{escape(entry.instance_id[:SHORT_ID])}</tspan></text>',
    ]
    for phase, begin, finish in phases:
        width = max(1.0, x_of(finish) - x_of(begin)) if phase == "running" else x_of(finish) - x_of(begin)
        if width > 0:
            parts.append(
                f'<rect class="{phase}" x="{x_of(begin):.1f}" y="{bar_y:.1f}" width="{width:.1f}" '
                f'height="{BAR_HEIGHT}" fill="{PHASE_COLOURS[phase]}"/>'
            )
    cap_x = x_of(end)
    parts.append(
        f'<rect class="end {entry.outcome or "unfinished"}" x="{cap_x:.1f}" y="{y + 2}" width="{CAP_WIDTH}" '
        f'height="{ROW_HEIGHT - 4}" fill="{OUTCOME_COLOURS[entry.outcome]}"/>'
    )
    parts.append(
        f'<text x="{cap_x + CAP_WIDTH + 6:.1f}" y="{y + 13}" fill="{OUTCOME_COLOURS[entry.outcome]}">'
        f"{escape(_outcome_label(entry, now_ns))}</text></g>"
    )
    return "".join(parts)


def _outcome_label(entry: TimelineEntry, now_ns: int) -> str:
    """``completed 1.68s``, ``failed after 0.12s: ValueError: bad``: the row's right label."""
    times = entry.times
    ran = None
    if times.running_ns is not None:
        ran = (_end_ns(entry, now_ns) - times.running_ns) / 1e9
    if not entry.outcome:
        return "unfinished"
    if ran is None:
        return f"{entry.outcome} · never ran"
    label = f"{entry.outcome} · ran {format_seconds(ran)}"
    if entry.error:
        label += f": {_clip(entry.error, ERROR_CHARS)}"
    return label


def _hover(entry: TimelineEntry, origin: int, now_ns: int) -> str:
    """The timing record in words, times from the timeline's start."""
    times = entry.times

    def at(ns: Optional[int]) -> str:
        return "—" if ns is None else f"+{(ns - origin) / 1e9:.3f} s"

    lines = [
        f"{entry.task_name} {entry.instance_id} — {entry.outcome or 'unfinished'}",
        f"session {entry.session}",
        f"start() called      {at(times.started_ns)}",
        f"body began running  {at(times.running_ns)}",
        f"stop requested      {at(times.stop_requested_ns)}",
        f"finished            {at(times.finished_ns)}",
    ]
    if times.started_ns is not None and times.running_ns is not None:
        lines.append(
            f"queued/starting {(times.running_ns - times.started_ns) / 1e6:.1f} ms (for a slot, then a worker)"
        )
    if times.running_ns is not None:
        lines.append(f"ran {(_end_ns(entry, now_ns) - times.running_ns) / 1e9:.3f} s")
    if times.stop_requested_ns is not None and times.finished_ns is not None:
        lines.append(f"stop latency {(times.finished_ns - times.stop_requested_ns) / 1e6:.1f} ms")
    if entry.error:
        lines.append(entry.error)
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
