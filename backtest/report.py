"""The backtest report: one row per leg, the summary figures, two charts and an offline HTML page.

Everything here is computed from the trade list and the equity curve alone, so a test can recompute
the figures from trades.csv independently. Output is deterministic: the same trades give the same
bytes (sorted rows, fixed number formats, no timestamps of the run itself in the files).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

TRADE_COLUMNS = (
    "leg_id", "plan_id", "symbol", "side", "lots", "open_time", "entry", "sl", "tp", "close_time", "exit",
    "exit_reason", "pnl", "confidence", "regime", "legs_in_plan", "latency_ms", "slippage_points",
)


@dataclass(frozen=True, slots=True)
class Trade:
    """One filled leg, from its fill to its exit (``exit_reason`` "open" if still open at the end)."""

    leg_id: str
    plan_id: str
    symbol: str
    side: str
    lots: float
    open_time: float
    entry: float
    sl: float
    tp: float
    close_time: float | None
    exit: float | None
    exit_reason: str
    pnl: float
    confidence: float
    regime: str
    legs_in_plan: int
    latency_ms: float = 0.0
    slippage_points: float = 0.0


@dataclass(frozen=True, slots=True)
class EquityPoint:
    time: float
    balance: float
    equity: float


@dataclass(frozen=True)
class Summary:
    """The figures an owner asks for before risking money."""

    start_balance: float
    end_balance: float
    net_pnl: float
    return_pct: float
    max_drawdown: float
    max_drawdown_pct: float
    trades: int
    wins: int
    losses: int
    win_rate: float | None
    profit_factor: float | None
    expectancy: float | None
    sharpe_daily: float | None
    days: int
    trades_per_day: float | None
    days_in_b: int
    days_in_c: int
    orders_by_tier: dict[int, int] = field(default_factory=dict)
    average_latency_ms: float | None = None
    average_slippage_points: float | None = None
    orders_by_confidence: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    """What the run assumed and met (data gaps, faults, how fills are made), printed under the figures."""


CONFIDENCE_TIERS = (0.80, 0.85, 0.90, 0.95)
"""Bounds of the confidence tiers orders are counted by (the signals' 70-96 % range, cut where the
symbols' thresholds sit: 80 % regime A on gold, 85 / 90 % for a second and third leg, 90 % regime B)."""


def confidence_tier(confidence: float) -> str:
    """'<80 %', '80-85 %', ..., '>=95 %'."""
    bounds = [round(b * 100) for b in CONFIDENCE_TIERS]
    for low, high in zip([None, *bounds], [*bounds, None], strict=True):
        if high is not None and confidence * 100 < high - 1e-9:
            return f"<{high} %" if low is None else f"{low}-{high} %"
    return f">={bounds[-1]} %"


def utc_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def iso(epoch: float | None) -> str:
    return "" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def max_drawdown(equity: Sequence[EquityPoint]) -> tuple[float, float]:
    """Largest fall from a running peak of equity: (in account currency, as a fraction of that peak)."""
    peak, worst, worst_pct = -math.inf, 0.0, 0.0
    for point in equity:
        peak = max(peak, point.equity)
        fall = peak - point.equity
        if fall > worst:
            worst, worst_pct = fall, fall / peak if peak > 0 else 0.0
    return worst, worst_pct


def daily_returns(equity: Sequence[EquityPoint], start_balance: float) -> list[float]:
    """Return of each UTC day, from the last equity of the previous day (the start balance first)."""
    closes: dict[str, float] = {}
    for point in equity:
        closes[utc_day(point.time)] = point.equity
    returns, previous = [], start_balance
    for day in sorted(closes):
        returns.append(closes[day] / previous - 1.0 if previous > 0 else 0.0)
        previous = closes[day]
    return returns


def summarise(
    trades: Sequence[Trade],
    equity: Sequence[EquityPoint],
    start_balance: float,
    regime_days: dict[str, set[str]] | None = None,
    notes: dict[str, str] | None = None,
) -> Summary:
    """Every figure of the report. Sharpe is annualised with sqrt(365): bitcoin trades every day."""
    closed = [t for t in trades if t.exit_reason != "open"]
    wins = [t.pnl for t in closed if t.pnl > 0]
    losses = [t.pnl for t in closed if t.pnl <= 0]
    end_balance = equity[-1].balance if equity else start_balance
    net = round(sum(t.pnl for t in closed), 2)
    drawdown, drawdown_pct = max_drawdown(equity)
    returns = daily_returns(equity, start_balance)
    sharpe = None
    if len(returns) >= 2 and statistics.stdev(returns) > 0:
        sharpe = statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(365)
    days = len({utc_day(p.time) for p in equity})
    regime_days = regime_days or {}
    plans: dict[str, int] = {t.plan_id: t.legs_in_plan for t in trades}
    confidence: dict[str, float] = {t.plan_id: t.confidence for t in trades}
    tiers = Counter(confidence_tier(value) for value in confidence.values())
    return Summary(
        start_balance=start_balance,
        end_balance=end_balance,
        net_pnl=net,
        return_pct=net / start_balance * 100 if start_balance else 0.0,
        max_drawdown=round(drawdown, 2),
        max_drawdown_pct=drawdown_pct * 100,
        trades=len(closed),
        wins=len(wins),
        losses=len(losses),
        win_rate=len(wins) / len(closed) if closed else None,
        profit_factor=sum(wins) / -sum(losses) if losses and sum(losses) < 0 else None,
        expectancy=net / len(closed) if closed else None,
        sharpe_daily=sharpe,
        days=days,
        trades_per_day=len(closed) / days if days else None,
        days_in_b=len(regime_days.get("B", set())),
        days_in_c=len(regime_days.get("C", set())),
        orders_by_tier=dict(sorted(Counter(plans.values()).items())),
        average_latency_ms=statistics.mean(t.latency_ms for t in trades) if trades else None,
        average_slippage_points=statistics.mean(t.slippage_points for t in trades) if trades else None,
        orders_by_confidence={tier: tiers[tier] for tier in _tier_order() if tier in tiers},
        notes=dict(notes or {}),
    )


def _tier_order() -> list[str]:
    return [confidence_tier(b - 0.001) for b in CONFIDENCE_TIERS] + [confidence_tier(1.0)]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def write_trades_csv(path: Path, trades: Sequence[Trade]) -> None:
    """trades.csv: one row per leg in (open time, leg id) order, times in UTC."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TRADE_COLUMNS)
        for trade in sorted(trades, key=lambda t: (t.open_time, t.leg_id)):
            row = asdict(trade)
            row["open_time"], row["close_time"] = iso(trade.open_time), iso(trade.close_time)
            writer.writerow([_cell(row[column]) for column in TRADE_COLUMNS])


def format_summary(summary: Summary) -> str:
    """The summary as aligned text lines, for the terminal and summary.txt."""

    def fmt(value: float | None, spec: str, suffix: str = "") -> str:
        return "n/a" if value is None else f"{value:{spec}}{suffix}"

    rows = [
        ("start balance", fmt(summary.start_balance, ",.2f")),
        ("end balance", fmt(summary.end_balance, ",.2f")),
        ("net P&L", fmt(summary.net_pnl, ",.2f")),
        ("return", fmt(summary.return_pct, ".2f", " %")),
        ("max drawdown", f"{summary.max_drawdown:,.2f} ({summary.max_drawdown_pct:.2f} %)"),
        ("trades (closed legs)", str(summary.trades)),
        ("win rate", fmt(None if summary.win_rate is None else summary.win_rate * 100, ".1f", " %")),
        ("profit factor", fmt(summary.profit_factor, ".2f")),
        ("expectancy per trade", fmt(summary.expectancy, ",.2f")),
        ("Sharpe (daily, annualised)", fmt(summary.sharpe_daily, ".2f")),
        ("trades per day", fmt(summary.trades_per_day, ".1f")),
        ("days / in B / in C", f"{summary.days} / {summary.days_in_b} / {summary.days_in_c}"),
        ("plans by legs (legs: plans)", ", ".join(f"{k}: {v}" for k, v in summary.orders_by_tier.items()) or "-"),
        ("orders by confidence", ", ".join(f"{k}: {v}" for k, v in summary.orders_by_confidence.items()) or "-"),
        ("average latency", fmt(summary.average_latency_ms, ".2f", " ms")),
        ("average slippage", fmt(summary.average_slippage_points, ".1f", " points")),
        *summary.notes.items(),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _charts(equity: Sequence[EquityPoint]) -> tuple[bytes, bytes]:
    """equity.png and drawdown.png (matplotlib, headless)."""
    import matplotlib  # noqa: PLC0415  (imported only when a report is written: it is slow to import)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    times = np.array([int(p.time) for p in equity], dtype="datetime64[s]")
    values = [p.equity for p in equity]
    peaks, peak = [], -math.inf
    for value in values:
        peak = max(peak, value)
        peaks.append((value - peak) / peak * 100 if peak > 0 else 0.0)
    images = []
    for ys, title, ylabel, color in ((values, "Equity", "account currency", "tab:blue"),
                                     (peaks, "Drawdown from peak", "%", "tab:red")):
        figure, axes = plt.subplots(figsize=(10, 3.6), dpi=100)
        axes.plot(times, ys, color=color, linewidth=1)
        if ys is peaks:
            axes.fill_between(times, ys, 0, color=color, alpha=0.25)
        axes.set_title(title)
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        figure.autofmt_xdate()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})  # no version stamp: same bytes
        plt.close(figure)
        images.append(buffer.getvalue())
    return images[0], images[1]


def write_report(out_dir: Path, trades: Sequence[Trade], equity: Sequence[EquityPoint], summary: Summary,
                 title: str = "Backtest") -> None:
    """Write trades.csv, summary.json, summary.txt, equity.png, drawdown.png and report.html."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_trades_csv(out_dir / "trades.csv", trades)
    (out_dir / "summary.json").write_text(json.dumps(asdict(summary), indent=2, sort_keys=True) + "\n")
    text = format_summary(summary)
    (out_dir / "summary.txt").write_text(text + "\n")
    equity_png, drawdown_png = _charts(equity) if equity else (b"", b"")
    (out_dir / "equity.png").write_bytes(equity_png)
    (out_dir / "drawdown.png").write_bytes(drawdown_png)
    embedded = "".join(
        f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        for name, data in (("equity", equity_png), ("drawdown", drawdown_png)) if data
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}pre{background:#f6f6f6;padding:1em}"
        "img{max-width:100%;display:block;margin:1em 0}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><pre>{html.escape(text)}</pre>{embedded}"
        f"<p>{len(trades)} legs in trades.csv beside this page.</p></body></html>\n"
    )
    (out_dir / "report.html").write_text(page, encoding="utf-8")
