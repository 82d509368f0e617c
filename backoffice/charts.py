"""Server-drawn SVG charts for the dashboard: geometry here, markup in the templates.

No script and no style attribute (the CSP allows neither inline): shapes carry CSS classes
(static/css/backoffice.css), and every bar or line has a <title> with its figure, which screen
readers and a mouse hover both get; the same figures are in a table beside each chart.
Coordinates are floats (drawing only); the amounts in titles stay Decimal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from .dashboard import Balance, Flow


def money(amount: Decimal) -> str:
    """1234.5 -> "1,234.50" (exact: Decimal's own formatting, no float)."""
    return f"{amount:,.2f}"


def day_label(day: date) -> str:
    return f"{day.day} {day:%b}"


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass
class BarChart:
    """Money in above the axis, money out stacked below it, one column per day."""

    title: str
    description: str
    width: int
    height: int
    axis_y: float
    plot_left: float
    plot_right: float
    bars: list[Rect] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css class, label)


WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 92.0, 8.0, 12.0, 26.0


def _r(v: float) -> float:
    return round(v, 1)


def money_chart(flow: Flow) -> BarChart:
    inward = [k for k, _, d in flow.sources if d == "in"]
    outward = [k for k, _, d in flow.sources if d == "out"]
    n = len(flow.days)
    day_in = [sum((flow.series[k][i] for k in inward), Decimal(0)) for i in range(n)]
    day_out = [sum((flow.series[k][i] for k in outward), Decimal(0)) for i in range(n)]
    top, bottom = max(day_in, default=Decimal(0)), max(day_out, default=Decimal(0))
    plot_h = HEIGHT - TOP - BOTTOM
    span = top + bottom
    axis = TOP + (plot_h * float(top / span) if span else plot_h / 2)
    scale = plot_h / float(span) if span else 0.0
    step = (WIDTH - LEFT - RIGHT) / n
    bar_w = step * 0.72
    labels = {k: label for k, label, _ in flow.sources}
    chart = BarChart(
        title=f"Money in and out, {flow.currency}, last {n} days",
        description=(
            f"Daily bars from {day_label(flow.days[0])} to {day_label(flow.days[-1])} (today): "
            f"{', '.join(labels[k] for k in inward)} in above the line; "
            f"{', '.join(labels[k] for k in outward)} out below it."
        ),
        width=WIDTH,
        height=HEIGHT,
        axis_y=_r(axis),
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        legend=[(f"bar-{k}", labels[k]) for k in inward + outward],
    )
    for i, day in enumerate(flow.days):
        x = LEFT + i * step + (step - bar_w) / 2
        y = axis
        for k in inward:  # upwards from the axis
            amount = flow.series[k][i]
            if amount:
                h = float(amount) * scale
                y -= h
                chart.bars.append(
                    Rect(
                        _r(x),
                        _r(y),
                        _r(bar_w),
                        _r(max(h, 0.5)),
                        f"bar-{k}",
                        f"{day_label(day)}: {labels[k]} in, {flow.currency} {money(amount)}",
                    )
                )
        y = axis
        for k in outward:  # downwards from the axis
            amount = flow.series[k][i]
            if amount:
                h = float(amount) * scale
                chart.bars.append(
                    Rect(
                        _r(x),
                        _r(y),
                        _r(bar_w),
                        _r(max(h, 0.5)),
                        f"bar-{k}",
                        f"{day_label(day)}: {labels[k]} out, {flow.currency} {money(amount)}",
                    )
                )
                y += h
        if i % 7 == (n - 1) % 7:  # every week, ending on today
            chart.labels.append(Label(_r(x + bar_w / 2), HEIGHT - 8, day_label(day)))
    chart.labels.append(Label(LEFT - 6, TOP + 10, f"in {money(top)}", "end"))
    chart.labels.append(Label(LEFT - 6, HEIGHT - BOTTOM, f"out {money(bottom)}", "end"))
    return chart


@dataclass
class Sparkline:
    title: str
    width: int
    height: int
    points: str  # "x,y x,y ..." for <polyline>
    dots: list[tuple[float, float, str]]  # (cx, cy, title) per reading


SPARK_W, SPARK_H, SPARK_PAD = 240, 56, 4.0


def balance_sparkline(balance: Balance) -> Sparkline | None:
    """The cleared balance at the end of each day, as a small line; None without history."""
    history = balance.history
    if not history:
        return None
    values = [v for _, v in history]
    low, high = min(values), max(values)
    first = history[0][0].toordinal()
    days = max(history[-1][0].toordinal() - first, 1)
    span = float(high - low)
    coords = []
    for day, value in history:
        x = SPARK_PAD + (SPARK_W - 2 * SPARK_PAD) * (day.toordinal() - first) / days
        y = (
            SPARK_H / 2
            if not span
            else SPARK_PAD + (SPARK_H - 2 * SPARK_PAD) * (1 - float(value - low) / span)
        )
        coords.append(
            (_r(x), _r(y), f"{day_label(day)}: cleared {balance.currency} {money(value)}")
        )
    return Sparkline(
        title=(
            f"Cleared {balance.currency} balance at the end of each day, "
            f"{day_label(history[0][0])} to {day_label(history[-1][0])}"
        ),
        width=SPARK_W,
        height=SPARK_H,
        points=" ".join(f"{x},{y}" for x, y, _ in coords),
        dots=coords,
    )


PROOF_W, PROOF_H = 480, 120


def balance_proof_chart(currency: str, checks: list) -> Sparkline | None:
    """The balance proof over time: FlashFX's cleared balance less the one the mirror implies,
    at each check (mirrors.models.BalanceCheck, oldest first). Flat is good: an account
    mirrored since its first deposit sits at zero, an older one at its opening balance; a step
    is money the mirror missed or counted twice. None without checks."""
    if not checks:
        return None
    values = [c.cleared_difference for c in checks]
    low, high = min(min(values), Decimal(0)), max(max(values), Decimal(0))
    span = float(high - low)
    first = checks[0].checked_at.timestamp()
    spread = max(checks[-1].checked_at.timestamp() - first, 1.0)
    coords = []
    for check, value in zip(checks, values, strict=True):
        x = SPARK_PAD + (PROOF_W - 2 * SPARK_PAD) * (check.checked_at.timestamp() - first) / spread
        y = (
            PROOF_H / 2
            if not span
            else SPARK_PAD + (PROOF_H - 2 * SPARK_PAD) * (1 - float(value - low) / span)
        )
        coords.append(
            (
                _r(x),
                _r(y),
                f"{check.checked_at:%Y-%m-%d %H:%M} UTC: FlashFX {money(check.reported_cleared)}, "
                f"mirror {money(check.implied_cleared)}, difference {money(value)}",
            )
        )
    return Sparkline(
        title=(
            f"{currency}: FlashFX's cleared balance less the mirror's, at each of "
            f"{len(checks)} checks"
        ),
        width=PROOF_W,
        height=PROOF_H,
        points=" ".join(f"{x},{y}" for x, y, _ in coords),
        dots=coords,
    )
