"""A log-log plot of time against store size, written as plain SVG.

No plotting dependency: the benchmark results are a handful of lines over four or
five sizes, and an SVG of polylines, decade grid lines and a legend is a few dozen
elements. Both axes are logarithmic, so a line of slope 1 is linear growth and a
line of slope 2 quadratic: growth is visible at a glance.

A figure is one or more :class:`Panel` side by side. In a panel each
:class:`Series` is one line; lines of one operation share a colour and the two
tools differ in stroke (solid for the first tool, dashed for the second, named by
the panel's ``solid_name``/``dashed_name``). Runs that were stopped at a time
limit are drawn as hollow triangles at the limit: the true time lies above.

>>> svg = render_svg(
...     [Panel("demo", (Series("images", "#1f77b4", ((100, 0.1), (1_000, 1.0))),))],
...     title="t",
... )
>>> svg.startswith("<svg") and "<polyline" in svg
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

__all__ = [
    "PALETTE",
    "LogAxis",
    "Panel",
    "Series",
    "render_svg",
    "seconds_label",
    "size_label",
    "size_text",
]

PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
)
"""Distinct colours for up to ten operations (the usual categorical palette)."""

PANEL_WIDTH = 560
PLOT_HEIGHT = 380
MARGIN_LEFT = 70
MARGIN_RIGHT = 20
MARGIN_TOP = 80
X_PAD_DECADES = 0.12  # room between the frame and the smallest/largest size
AXIS_SPACE = 45
LEGEND_LINE = 18
FONT = "font-family='sans-serif'"


@dataclass(frozen=True, slots=True)
class Series:
    """One line: (N, seconds) points in increasing N, and killed runs as lower bounds."""

    label: str
    color: str
    points: tuple[tuple[int, float], ...]
    dashed: bool = False
    lower_bounds: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Panel:
    """A titled log-log chart of several series."""

    title: str
    series: tuple[Series, ...]
    solid_name: str = "libimage"
    dashed_name: str = "podman"
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class LogAxis:
    """A logarithmic axis over whole decades ``10**low .. 10**high``, mapped to pixels.

    >>> axis = LogAxis.covering([100, 100_000], 0.0, 300.0)
    >>> axis.low, axis.high, axis.position(1_000), axis.position(10_000)
    (2, 5, 100.0, 200.0)
    """

    low: int
    high: int
    start: float
    end: float
    pad: float = 0.0  # decades of empty room beyond ``low`` and ``high``

    @classmethod
    def covering(
        cls, values: Sequence[float], start: float, end: float, pad: float = 0.0
    ) -> LogAxis:
        """The smallest whole-decade axis holding every positive value (one decade at least)."""
        positive = [v for v in values if v > 0]
        if not positive:
            return cls(0, 1, start, end, pad)
        low = math.floor(math.log10(min(positive)) + 1e-9)
        high = math.ceil(math.log10(max(positive)) - 1e-9)
        return cls(low, max(high, low + 1), start, end, pad)

    def position(self, value: float) -> float:
        """The pixel coordinate of ``value`` (positive) on this axis."""
        span = self.high - self.low + 2 * self.pad
        fraction = (math.log10(value) - self.low + self.pad) / span
        return self.start + fraction * (self.end - self.start)

    def decades(self) -> range:
        return range(self.low, self.high + 1)


def size_label(exponent: int) -> str:
    """A decade of store sizes: ``1``, ``10``, ``100``, ``1k``, ... ``1M``.

    >>> [size_label(e) for e in (0, 2, 3, 5, 6)]
    ['1', '100', '1k', '100k', '1M']
    """
    if exponent >= 6:
        return f"{10 ** (exponent - 6)}M"
    if exponent >= 3:
        return f"{10 ** (exponent - 3)}k"
    return str(10**exponent) if exponent >= 0 else f"1e{exponent}"


def size_text(size: float) -> str:
    """A store size between decades, short: ``3k``, ``250``, ``1.5M``.

    >>> [size_text(n) for n in (250, 3_000, 1_500_000)]
    ['250', '3k', '1.5M']
    """
    if size >= 1_000_000:
        return f"{size / 1_000_000:g}M"
    if size >= 1_000:
        return f"{size / 1_000:g}k"
    return f"{size:g}"


def seconds_label(exponent: int) -> str:
    """A decade of seconds in a readable unit: ``1 µs``, ``10 ms``, ``1 s``, ``100 s``.

    >>> [seconds_label(e) for e in (-6, -5, -3, -1, 0, 2, 3)]
    ['1 µs', '10 µs', '1 ms', '100 ms', '1 s', '100 s', '1000 s']
    """
    for unit_exponent, unit in ((0, "s"), (-3, "ms"), (-6, "µs"), (-9, "ns")):
        if exponent >= unit_exponent:
            return f"{10 ** (exponent - unit_exponent)} {unit}"
    return f"1e{exponent} s"


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _text(x: float, y: float, content: str, *, size: int = 12, anchor: str = "middle") -> str:
    return (
        f"<text x='{_fmt(x)}' y='{_fmt(y)}' {FONT} font-size='{size}' "
        f"text-anchor='{anchor}'>{escape(content)}</text>"
    )


def _legend_rows(panel: Panel) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for series in panel.series:
        seen.setdefault(series.label, series.color)
    return list(seen.items())


def _legend_height(panel: Panel) -> int:
    rows = (len(_legend_rows(panel)) + 1) // 2 + 1 + len(panel.notes)
    return rows * LEGEND_LINE + 10


def _panel(panel: Panel, left: float, x_values: Sequence[float]) -> list[str]:
    plot_left = left + MARGIN_LEFT
    plot_right = left + PANEL_WIDTH - MARGIN_RIGHT
    plot_top = float(MARGIN_TOP)
    plot_bottom = plot_top + PLOT_HEIGHT
    y_values = [t for s in panel.series for _, t in (*s.points, *s.lower_bounds)]
    x_axis = LogAxis.covering(x_values, plot_left, plot_right, X_PAD_DECADES)
    y_axis = LogAxis.covering(y_values, plot_bottom, plot_top)
    out = [_text((plot_left + plot_right) / 2, plot_top - 14, panel.title, size=14)]
    out.append(
        f"<rect x='{_fmt(plot_left)}' y='{_fmt(plot_top)}' width='{_fmt(plot_right - plot_left)}'"
        f" height='{PLOT_HEIGHT}' fill='none' stroke='#444'/>"
    )
    for exponent in x_axis.decades():
        x = x_axis.position(10.0**exponent)
        out.append(
            f"<line x1='{_fmt(x)}' y1='{_fmt(plot_top)}' x2='{_fmt(x)}' y2='{_fmt(plot_bottom)}'"
            " stroke='#ddd'/>"
        )
        out.append(_text(x, plot_bottom + 16, size_label(exponent)))
    for size in sorted(set(x_values)):
        if size > 0 and not math.isclose(math.log10(size), round(math.log10(size))):
            x = x_axis.position(size)
            out.append(
                f"<line x1='{_fmt(x)}' y1='{_fmt(plot_bottom)}' x2='{_fmt(x)}'"
                f" y2='{_fmt(plot_bottom - 6)}' stroke='#444'/>"
            )
            out.append(_text(x, plot_bottom + 16, size_text(size), size=10))
    for exponent in y_axis.decades():
        y = y_axis.position(10.0**exponent)
        out.append(
            f"<line x1='{_fmt(plot_left)}' y1='{_fmt(y)}' x2='{_fmt(plot_right)}' y2='{_fmt(y)}'"
            " stroke='#ddd'/>"
        )
        out.append(_text(plot_left - 6, y + 4, seconds_label(exponent), anchor="end"))
    out.append(_text((plot_left + plot_right) / 2, plot_bottom + 34, "images in the store (N)"))
    mid_y = (plot_top + plot_bottom) / 2
    out.append(
        f"<text x='{_fmt(left + 16)}' y='{_fmt(mid_y)}' {FONT} font-size='12' "
        f"text-anchor='middle' transform='rotate(-90 {_fmt(left + 16)} {_fmt(mid_y)})'>"
        "median wall time</text>"
    )
    for series in panel.series:
        coords = [(x_axis.position(n), y_axis.position(t)) for n, t in series.points if t > 0]
        dash = " stroke-dasharray='6 4'" if series.dashed else ""
        label = quoteattr(series.label + (" (dashed)" if series.dashed else ""))
        if len(coords) > 1:
            joined = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in coords)
            out.append(
                f"<polyline points='{joined}' fill='none' stroke='{series.color}'"
                f" stroke-width='2'{dash} data-series={label}/>"
            )
        for x, y in coords:
            if series.dashed:
                out.append(
                    f"<rect x='{_fmt(x - 3.5)}' y='{_fmt(y - 3.5)}' width='7' height='7'"
                    f" fill='white' stroke='{series.color}' stroke-width='1.5'/>"
                )
            else:
                out.append(f"<circle cx='{_fmt(x)}' cy='{_fmt(y)}' r='3.5' fill='{series.color}'/>")
        for n, t in series.lower_bounds:
            x, y = x_axis.position(n), y_axis.position(t)
            out.append(
                f"<path d='M{_fmt(x)},{_fmt(y - 7)} L{_fmt(x - 6)},{_fmt(y + 4)} "
                f"L{_fmt(x + 6)},{_fmt(y + 4)} Z' fill='white' stroke='{series.color}'"
                f" stroke-width='1.5' data-lower-bound={label}/>"
            )
    legend_top = plot_bottom + AXIS_SPACE + 8
    rows = _legend_rows(panel)
    column_width = (plot_right - plot_left) / 2
    for index, (label, color) in enumerate(rows):
        x = plot_left + (index % 2) * column_width
        y = legend_top + (index // 2) * LEGEND_LINE
        out.append(
            f"<line x1='{_fmt(x)}' y1='{_fmt(y)}' x2='{_fmt(x + 24)}' y2='{_fmt(y)}'"
            f" stroke='{color}' stroke-width='3'/>"
        )
        out.append(_text(x + 30, y + 4, label, anchor="start"))
    y = legend_top + ((len(rows) + 1) // 2) * LEGEND_LINE
    styles = {s.dashed for s in panel.series}
    key = []
    if False in styles:
        key.append(f"solid, filled dots: {panel.solid_name}")
    if True in styles:
        key.append(f"dashed, hollow squares: {panel.dashed_name}")
    if any(s.lower_bounds for s in panel.series):
        key.append("hollow triangle: stopped at the time limit")
    out.append(_text(plot_left, y + 4, "; ".join(key), size=11, anchor="start"))
    for note in panel.notes:
        y += LEGEND_LINE
        out.append(_text(plot_left, y + 4, note, size=11, anchor="start"))
    return out


def render_svg(panels: Sequence[Panel], *, title: str, subtitle: str = "") -> str:
    """The whole figure: ``panels`` side by side under ``title`` (and ``subtitle``).

    Every panel's x axis covers the same decades (all sizes of all panels), so the
    panels line up; each y axis covers its own data in whole decades.
    """
    x_values: list[float] = [
        n for p in panels for s in p.series for n, _ in (*s.points, *s.lower_bounds)
    ]
    width = PANEL_WIDTH * max(1, len(panels))
    legend = max((_legend_height(p) for p in panels), default=0)
    height = MARGIN_TOP + PLOT_HEIGHT + AXIS_SPACE + legend + 20
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'"
        f" viewBox='0 0 {width} {height}'>",
        f"<rect width='{width}' height='{height}' fill='white'/>",
        _text(width / 2, 20, title, size=16),
    ]
    if subtitle:
        parts.append(_text(width / 2, 40, subtitle, size=11))
    for index, panel in enumerate(panels):
        parts.extend(_panel(panel, index * PANEL_WIDTH, x_values))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
