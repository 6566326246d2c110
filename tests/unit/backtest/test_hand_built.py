"""A hand-built bar series whose one trade and its P&L are worked out by hand, run through `main.py backtest`.

Bitcoin with the shipped configs and a 100 USD balance (the first sizing tier: 0.01 lot, TP worth 2 USD).
301 bars of a perfectly regular climb are the history the strategy warms up on: each opens at the last
close and closes 20 higher, with a 10 wick either side, so every true range is 40 and the ATR is 40.
The replay is two bars:

A  one more bar of the climb. The strategy sees the trend and signals a buy on M1 alone (M5 and M15
   are not ready: too little history), so risk sizes it as a range trade:
   entry = close + spread (1,000 points x 0.01 = 10.00), one leg of 0.01 lot (three legs of 0.0033
   would be below the minimum volume);
   SL distance = max(1.35 ATR = 54, 1.15 ATR = 46, stops 10 points + spread = 10.10,
                     spread x 1.8 + 0.6 ATR = 42) = 54;
   TP distance = 2 USD / (0.01 USD per tick per lot x 0.01 lot) x 0.01 = 200.
B  opens at A's close and either rises through the TP (low first, then the high: the TP fills at the
   level at the high's time, 30 s into the bar) or falls through the SL (high first, then the low).
   Risk refuses B's own signal: the replay has ended with it.

So exactly one trade: +200 x 0.01 lot x 1 (contract) = +2.00 USD at TP, -54 x 0.01 = -0.54 USD at SL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backtest.cli import main
from tests.unit.backtest.helpers import Row, copy_configs, read_csv, stamp, write_m1

T0 = 1_752_537_600  # 2025-07-15 00:00 UTC
HISTORY = 301
STEP, WICK = 20.0, 10.0
SPREAD = 10.0
SL_DISTANCE, TP_DISTANCE = 54.0, 200.0


def climb() -> list[Row]:
    rows, price = [], 100_000.0
    for i in range(HISTORY + 1):  # the last one is bar A
        rows.append((T0 + 60 * i, price, price + STEP + WICK, price - WICK, price + STEP))
        price += STEP
    return rows


@pytest.mark.parametrize(("exit_reason", "pnl"), [("tp", 2.00), ("sl", -0.54)])
def test_the_hand_computed_trade_and_pnl(tmp_path: Path, exit_reason: str, pnl: float) -> None:
    rows = climb()
    a_time, a_close = rows[-1][0], rows[-1][4]
    entry = a_close + SPREAD
    sl, tp = entry - SL_DISTANCE, entry + TP_DISTANCE
    b_open = a_close
    if exit_reason == "tp":
        rows.append((a_time + 60, b_open, tp + 5, b_open - WICK, tp + 1))
    else:
        rows.append((a_time + 60, b_open, b_open + WICK, sl - 5, sl - 1))
    write_m1(tmp_path / "data" / "BTCUSDm_hand.csv", rows)
    config = copy_configs(tmp_path)

    status = main(["--config", str(config), "--symbols", "BTCUSDm", "--data", str(tmp_path / "data"),
                   "--from", stamp(a_time).replace(" ", "T"), "--balance", "100", "--out", str(tmp_path / "out")])

    assert status == 0
    trades = read_csv(tmp_path / "out" / "trades.csv")
    assert len(trades) == 1
    trade = trades[0]
    assert (trade["symbol"], trade["side"], float(trade["lots"])) == ("BTCUSDm", "buy", 0.01)
    assert trade["open_time"] == stamp(a_time + 60)  # filled when A closed
    assert (float(trade["entry"]), float(trade["sl"]), float(trade["tp"])) == (entry, sl, tp)
    assert trade["close_time"] == stamp(a_time + 60 + 30)  # B's extreme 30 s into the bar
    assert float(trade["exit"]) == (tp if exit_reason == "tp" else sl)
    assert (trade["exit_reason"], float(trade["pnl"]), trade["legs_in_plan"]) == (exit_reason, pnl, "1")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["net_pnl"] == pnl
    assert summary["end_balance"] == pytest.approx(100 + pnl, abs=1e-9)
    orders = read_csv(tmp_path / "out" / "orders.csv")
    assert [(o["bar_time"], float(o["sl"]), float(o["tp"])) for o in orders] == [(stamp(a_time), sl, tp)]
