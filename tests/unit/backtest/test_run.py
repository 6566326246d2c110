"""A real run on a day of the shipped history: deterministic to the byte, and its report adds up.

The figures of summary.json are recomputed here from trades.csv alone, and the trades are checked
against the simulated broker's own ledger: the balance moved by exactly the P&L of the closed legs.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from backtest.cli import main
from backtest.report import confidence_tier
from tests.unit.backtest.helpers import read_csv, shipped_slice

FROM, TO = "2025-07-14T06:00", "2025-07-14T20:00"
FILES = ("trades.csv", "orders.csv", "summary.json", "summary.txt", "equity.png", "drawdown.png", "report.html")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("run")
    data = shipped_slice(root / "data", "2025-07-14 21:00:00")
    outs = root / "a", root / "b"
    for out in outs:
        status = main(["--from", FROM, "--to", TO, "--data", str(data), "--balance", "1000", "--out", str(out)])
        assert status == 0
    return outs


def test_two_runs_give_byte_identical_reports(runs: tuple[Path, Path]) -> None:
    first, second = runs
    for name in FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert len(read_csv(first / "trades.csv")) >= 10


def test_the_summary_agrees_with_trades_csv_and_the_broker(runs: tuple[Path, Path]) -> None:
    out = runs[0]
    trades = read_csv(out / "trades.csv")
    figures = json.loads((out / "summary.json").read_text())
    closed = [float(t["pnl"]) for t in trades if t["exit_reason"] != "open"]
    wins, losses = [p for p in closed if p > 0], [p for p in closed if p <= 0]
    assert closed and wins and losses
    assert figures["trades"] == len(closed)
    assert figures["net_pnl"] == pytest.approx(sum(closed), abs=0.005)
    assert figures["win_rate"] == pytest.approx(len(wins) / len(closed))
    assert figures["profit_factor"] == pytest.approx(sum(wins) / -sum(losses))
    assert figures["expectancy"] == pytest.approx(sum(closed) / len(closed))
    assert figures["return_pct"] == pytest.approx(sum(closed) / 1000 * 100, abs=1e-3)
    # The broker's ledger: the balance moved by the closed legs' P&L, to the cent (no commission, no swap).
    assert figures["end_balance"] - figures["start_balance"] == pytest.approx(sum(closed), abs=0.005)
    legs = Counter(t["plan_id"] for t in trades)
    assert sum(figures["orders_by_tier"].values()) == len(legs)
    assert figures["orders_by_tier"] == {str(n): c for n, c in sorted(Counter(legs.values()).items())}
    tiers = Counter(confidence_tier(float(t["confidence"])) for t in {t["plan_id"]: t for t in trades}.values())
    assert figures["orders_by_confidence"] == dict(tiers)
    for trade in trades:
        side = 1 if trade["side"] == "buy" else -1
        if trade["exit_reason"] in ("tp", "sl"):
            beyond = (float(trade["exit"]) - float(trade[trade["exit_reason"]])) * side  # a gap fills past the level
            assert beyond >= -1e-9 if trade["exit_reason"] == "tp" else beyond <= 1e-9
            move = (float(trade["exit"]) - float(trade["entry"])) * side
            contract = 100.0 if trade["symbol"] == "XAUUSDm" else 1.0
            assert float(trade["pnl"]) == pytest.approx(move * float(trade["lots"]) * contract, abs=0.006)


def test_orders_csv_lists_every_leg_of_every_filled_plan(runs: tuple[Path, Path]) -> None:
    out = runs[0]
    orders = read_csv(out / "orders.csv")
    filled = {t["leg_id"]: t for t in read_csv(out / "trades.csv")}
    assert set(filled) <= {o["leg_id"] for o in orders}
    for order in orders:
        if order["leg_id"] in filled:
            trade = filled[order["leg_id"]]
            assert (order["symbol"], order["side"], order["sl"], order["tp"]) == (
                trade["symbol"], trade["side"], trade["sl"], trade["tp"])
