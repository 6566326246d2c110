"""The report's figures agree with trades.csv recomputed independently, and the files are deterministic."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from backtest.report import EquityPoint, Trade, summarise, write_report

DAY = 86_400
T0 = 1_752_105_600  # 2025-07-10 00:00 UTC


def trade(n: int, pnl: float, legs: int = 1, reason: str = "tp", plan: str | None = None) -> Trade:
    opened = T0 + n * 3_600
    return Trade(
        leg_id=f"BTC{opened}b-1", plan_id=plan or f"BTC{opened}b", symbol="BTCUSDm", side="buy", lots=0.03,
        open_time=opened, entry=110_000.0, sl=109_800.0, tp=110_200.0,
        close_time=None if reason == "open" else opened + 600, exit=None if reason == "open" else 110_100.0,
        exit_reason=reason, pnl=pnl, confidence=0.86, regime="A", legs_in_plan=legs, latency_ms=2.0,
        slippage_points=1.5,
    )


TRADES = [trade(1, 10.0), trade(5, -4.0, legs=2), trade(30, 6.0, legs=3), trade(50, 0.0, reason="open")]
EQUITY = [
    EquityPoint(T0, 1000.0, 1000.0),
    EquityPoint(T0 + 2 * 3600, 1010.0, 1010.0),
    EquityPoint(T0 + 6 * 3600, 1006.0, 1002.0),  # an open loss dips equity below balance
    EquityPoint(T0 + DAY + 7 * 3600, 1012.0, 1012.0),
    EquityPoint(T0 + 2 * DAY + 3 * 3600, 1012.0, 1011.0),
]


def test_summary_matches_an_independent_recomputation_from_trades_csv(tmp_path: Path) -> None:
    summary = summarise(TRADES, EQUITY, 1000.0, {"B": {"2025-07-11"}, "C": set()})
    write_report(tmp_path, TRADES, EQUITY, summary)
    with (tmp_path / "trades.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["leg_id"] for r in rows] == sorted((r["leg_id"] for r in rows), key=lambda x: int(x[3:13]))
    closed = [float(r["pnl"]) for r in rows if r["exit_reason"] != "open"]
    wins, losses = [p for p in closed if p > 0], [p for p in closed if p <= 0]
    figures = json.loads((tmp_path / "summary.json").read_text())
    assert figures["net_pnl"] == pytest.approx(sum(closed)) == 12.0
    assert figures["trades"] == len(closed) == 3
    assert figures["win_rate"] == pytest.approx(len(wins) / len(closed))
    assert figures["profit_factor"] == pytest.approx(sum(wins) / -sum(losses)) == 4.0
    assert figures["expectancy"] == pytest.approx(sum(closed) / len(closed))
    assert figures["return_pct"] == pytest.approx(1.2)
    assert figures["max_drawdown"] == 8.0  # 1010 -> 1002
    assert figures["max_drawdown_pct"] == pytest.approx(8 / 1010 * 100)
    assert figures["days"] == 3 and figures["days_in_b"] == 1 and figures["days_in_c"] == 0
    assert figures["orders_by_tier"] == {"1": 2, "2": 1, "3": 1}
    daily = [1002 / 1000 - 1, 1012 / 1002 - 1, 1011 / 1012 - 1]
    mean = sum(daily) / 3
    std = (sum((r - mean) ** 2 for r in daily) / 2) ** 0.5
    assert figures["sharpe_daily"] == pytest.approx(mean / std * 365**0.5)


def test_the_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    summary = summarise(TRADES, EQUITY, 1000.0)
    write_report(tmp_path / "a", TRADES, EQUITY, summary)
    write_report(tmp_path / "b", list(reversed(TRADES)), EQUITY, summary)
    for name in ("trades.csv", "summary.json", "summary.txt", "equity.png", "drawdown.png", "report.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_the_html_page_needs_no_network(tmp_path: Path) -> None:
    write_report(tmp_path, TRADES, EQUITY, summarise(TRADES, EQUITY, 1000.0))
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "http://" not in page and "https://" not in page
    assert (tmp_path / "equity.png").read_bytes().startswith(b"\x89PNG")


def test_no_trades_is_a_valid_report(tmp_path: Path) -> None:
    summary = summarise([], [EquityPoint(T0, 1000.0, 1000.0)], 1000.0)
    assert summary.trades == 0 and summary.win_rate is None and summary.profit_factor is None
    write_report(tmp_path, [], [EquityPoint(T0, 1000.0, 1000.0)], summary)
    assert (tmp_path / "trades.csv").read_text().count("\n") == 1
