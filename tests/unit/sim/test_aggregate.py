"""M1 -> M5/M15: MT5 alignment, batch and incremental forms agree, windows close on time."""

from __future__ import annotations

import numpy as np
import pytest

from services.gateway_mt5.aggregate import BarAggregator, BarArrays, aggregate, aggregate_bars, to_bars
from services.gateway_mt5.sim.history import load_m1
from shared.messages import Bar
from tests.unit.sim.helpers import BTC_FILE, T0, XAU_FILE


def m1(symbol: str, t: int, *values: float) -> Bar:
    """An M1 bar from (open, high, low, close[, tick volume, spread])."""
    o, h, lo, c = values[:4]
    volume, spread = (int(values[4]), int(values[5])) if len(values) == 6 else (1, 5)
    return Bar(ts=t + 60, symbol=symbol, timeframe="M1", time=t, open=o, high=h, low=lo, close=c,
               tick_volume=volume, spread=spread)


def test_one_window_takes_first_open_max_min_last_close_sum_and_min_spread() -> None:
    rows = [(10, 12, 9, 11, 3, 7), (11, 15, 10, 14, 4, 5), (14, 14, 8, 9, 1, 6), (9, 10, 9, 10, 2, 9),
            (10, 11, 10, 11, 5, 8)]
    bars = [m1("X", T0 + 60 * k, *row) for k, row in enumerate(rows)]
    [m5] = aggregate_bars(bars, "M5")
    assert (m5.time, m5.open, m5.high, m5.low, m5.close, m5.tick_volume, m5.spread) == (T0, 10, 15, 8, 11, 15, 5)
    assert m5.close_time == m5.ts == T0 + 300


def test_windows_align_to_the_epoch_not_to_the_first_bar() -> None:
    bars = [m1("X", T0 + 60 * k, 10, 11, 9, 10) for k in range(3, 12)]  # 10:03 .. 10:11
    got = [(b.time, b.tick_volume) for b in aggregate_bars(bars, "M5")]
    assert got == [(T0, 2), (T0 + 300, 5), (T0 + 600, 2)]


def test_incremental_closes_a_window_whose_last_minutes_never_come() -> None:
    agg = BarAggregator(("M5",))
    assert agg.add(m1("X", T0 + 60, 10, 11, 9, 10)) == []
    assert agg.add(m1("X", T0 + 120, 10, 11, 9, 10)) == []
    assert agg.flush(T0 + 299) == []
    [closed] = agg.flush(T0 + 300)
    assert (closed.time, closed.tick_volume) == (T0, 2)
    assert agg.flush(T0 + 10_000) == []


def test_incremental_emits_when_the_last_minute_arrives() -> None:
    agg = BarAggregator(("M5", "M15"))
    out = [b for k in range(15) for b in agg.add(m1("X", T0 + 60 * k, 10, 11, 9, 10))]
    assert [(b.timeframe, b.time) for b in out] == [("M5", T0), ("M5", T0 + 300), ("M5", T0 + 600), ("M15", T0)]


def test_a_symbols_bar_does_not_close_another_symbols_window() -> None:
    agg = BarAggregator(("M5",))
    for k in range(4):
        agg.add(m1("A", T0 + 60 * k, 10, 11, 9, 10))
        agg.add(m1("B", T0 + 60 * k, 10, 11, 9, 10))
    out = agg.add(m1("A", T0 + 240, 10, 11, 9, 10))
    assert [b.symbol for b in out] == ["A"]
    [b_bar] = agg.add(m1("B", T0 + 240, 10, 11, 9, 10))
    assert b_bar.tick_volume == 5


def test_repeated_or_older_bars_are_errors_and_late_bars_are_counted() -> None:
    agg = BarAggregator(("M5",))
    agg.add(m1("X", T0 + 60, 10, 11, 9, 10))
    with pytest.raises(ValueError, match="not after the previous one"):
        agg.add(m1("X", T0 + 60, 10, 11, 9, 10))
    agg.flush(T0 + 300)
    late_agg = BarAggregator(("M5",))
    late_agg.add(m1("X", T0, 10, 11, 9, 10))
    late_agg.flush(T0 + 300)
    assert late_agg.add(m1("X", T0 + 240, 10, 11, 9, 10)) == []
    assert late_agg.late == 1
    assert late_agg.flush(T0 + 600) == []


@pytest.mark.parametrize("path", [XAU_FILE, BTC_FILE], ids=["XAUUSDm", "BTCUSDm"])
def test_batch_and_incremental_agree_on_the_shipped_data(path: object) -> None:
    history = load_m1(path)  # type: ignore[arg-type]
    arrays = BarArrays(history.time, history.open, history.high, history.low, history.close,
                       history.tick_volume, np.full(len(history), 200, dtype=np.int64))
    bars = list(to_bars(arrays, "S", "M1"))
    agg = BarAggregator(("M5", "M15"))
    live = [b for bar in bars for b in agg.add(bar)] + agg.flush(bars[-1].close_time + 900)
    for tf, minutes in (("M5", 5), ("M15", 15)):
        expected = list(to_bars(aggregate(arrays, minutes), "S", tf))  # type: ignore[arg-type]
        assert [b for b in live if b.timeframe == tf] == expected
        times = np.array([b.time for b in expected])
        assert (times % (minutes * 60) == 0).all() and (np.diff(times) > 0).all()
        assert sum(b.tick_volume for b in expected) == history.tick_volume.sum()
