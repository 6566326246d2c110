"""The shared strategy engine and the two symbol services, driven with hand-built bars."""

from __future__ import annotations

import math

import pytest

from shared.messages import Bar, RegimeChanged, SymbolSpecReply
from shared.strategy.core import StrategyCore
from tests.unit.strategy.helpers import (
    BTC,
    CONFIG,
    SPECS,
    XAU,
    bar,
    feed,
    heartbeat,
    risk_state,
    strategy,
    trend_bars,
)

BTC_DRIFT, BTC_START = 20.0, 115_000.0
XAU_DRIFT, XAU_START = 0.4, 3300.0


def btc_rise(minutes: range, drift: float = BTC_DRIFT) -> list[Bar]:
    return trend_bars(BTC, minutes, drift, BTC_START)


def warmed(symbol: str = BTC, drift: float = BTC_DRIFT, higher_drift: float | None = None) -> StrategyCore:
    """A core warmed with 260 M1 bars before T0 and, if ``higher_drift`` is given, 210 M5 and M15 bars
    whose last ones close at T0 (so they are fresh for the M1 bars of minutes 0-4)."""
    core = strategy(symbol)
    start = BTC_START if symbol == BTC else XAU_START
    history = trend_bars(symbol, range(-260, 0), drift, start)
    if higher_drift is not None:
        history += trend_bars(symbol, range(-210, 0), higher_drift * 5, start, timeframe="M5")
        history += trend_bars(symbol, range(-210, 0), higher_drift * 15, start, timeframe="M15")
    assert core.warm_up(history) == len(history)
    return core


def test_a_steady_rise_gives_buy_signals_from_m1_alone_with_bounded_confidence() -> None:
    core = strategy(BTC)
    signals = feed(core, btc_rise(range(300)))
    assert signals, "a clean trend must produce signals"
    assert {s.side for s in signals} == {"buy"}
    assert all(0.70 <= s.confidence <= 0.96 and 0 < s.net_norm <= 1 for s in signals)
    assert all(s.timeframes == ("M1",) for s in signals)
    assert all("M1 alone: M5 missing, M15 missing" in s.reasons[0] for s in signals)
    assert all(s.ts == s.bar_time + 60 and s.atr > 0 for s in signals)
    assert len({s.id for s in signals}) == len(signals)
    assert min(s.bar_time for s in signals) >= bar(BTC, 199, 1.0).time, "no signal before M1 has 200 bars"


def test_a_fall_gives_sell_signals() -> None:
    signals = feed(strategy(BTC), btc_rise(range(300), drift=-BTC_DRIFT))
    assert signals and {s.side for s in signals} == {"sell"}
    assert all(s.net_norm < 0 for s in signals)


def test_fresh_m5_and_m15_join_the_analysis_and_a_stale_one_falls_back_to_m1_alone() -> None:
    core = warmed(higher_drift=BTC_DRIFT)
    assert core.ready
    used = {}
    for one in btc_rise(range(8)):
        signals = core.handle(one)
        assert core.last_analysis is not None and core.last_analysis.bar_time == one.time
        used[one.time] = core.last_analysis.timeframes
        for signal in signals:
            assert signal.timeframes == core.last_analysis.timeframes
            if signal.timeframes == ("M1",):
                assert "M5 stale" in signal.reasons[0] and "M15" not in signal.reasons[0]
    minutes = sorted(used)
    assert [used[t] for t in minutes[:5]] == [("M1", "M5", "M15")] * 5  # M5's last bar closed <= 5 min ago
    assert [used[t] for t in minutes[5:]] == [("M1",)] * 3


def test_higher_timeframes_that_disagree_weaken_the_signal() -> None:
    agreeing, disagreeing = warmed(higher_drift=BTC_DRIFT), warmed(higher_drift=-BTC_DRIFT)
    first = btc_rise(range(1))[0]
    agreeing.handle(first)
    disagreeing.handle(first)
    assert agreeing.last_analysis and disagreeing.last_analysis
    assert agreeing.last_analysis.timeframes == disagreeing.last_analysis.timeframes == ("M1", "M5", "M15")
    assert agreeing.last_analysis.components.trend > 0 > disagreeing.last_analysis.components.trend
    assert agreeing.last_analysis.net_norm > disagreeing.last_analysis.net_norm


def test_net_norm_is_the_weighted_mean_of_the_components_without_volume_data() -> None:
    core = warmed()
    core.handle(btc_rise(range(1))[0])
    analysis = core.last_analysis
    assert analysis is not None and analysis.components.volume is None  # hand-built bars carry no volume
    weights = CONFIG.symbols[BTC].signal.weights
    names = ("trend", "momentum", "meanrev", "structure")
    expected = sum(weights[n] * getattr(analysis.components, n) for n in names) / sum(weights[n] for n in names)
    expected = max(-1.0, min(1.0, expected * CONFIG.symbols[BTC].signal.signal_amplification))
    for note in analysis.notes:  # dampening, when it applies, says by how much
        expected *= float(note.rsplit("x", 1)[1])
    assert analysis.net_norm == pytest.approx(expected, rel=1e-12)


def test_regime_c_skips_analysis_until_the_regime_changes() -> None:
    core = warmed()
    bars = btc_rise(range(20))
    assert feed(core, bars[:2])
    core.handle(risk_state(BTC, "C"))
    analysed = core.last_analysis
    assert feed(core, bars[2:10]) == []
    assert core.last_analysis is analysed, "no analysis at all in regime C"
    assert core.m1.last_time == bars[9].time, "but the state stays current"
    core.handle(RegimeChanged(ts=0, symbol=BTC, old="C", new="B", reason="owner", day_return=0.0))
    assert core.handle(bars[10]), "the next bar after the change is analysed and signals"


def test_analysis_goes_on_while_positions_are_open() -> None:
    core = warmed()
    core.handle(risk_state(BTC, "A", open_positions=3))
    assert feed(core, btc_rise(range(5)))


def test_gold_emits_nothing_while_its_market_is_closed() -> None:
    core = warmed(XAU, drift=XAU_DRIFT)
    bars = trend_bars(XAU, range(10), XAU_DRIFT, XAU_START)
    core.handle(heartbeat(XAU, ts=bars[0].time, market_open=False, ok=False, reason="market_closed"))
    assert core.handle(bars[0]) == []
    core.handle(heartbeat(XAU, ts=bars[1].time, market_open=True))
    assert core.handle(bars[1])
    # A "closed" heartbeat older than a bar is outdated by the bar itself: the market traded since.
    core.handle(heartbeat(XAU, ts=bars[2].time - 1, market_open=False, ok=False, reason="market_closed"))
    assert core.handle(bars[2])


def test_gold_stays_quiet_just_after_it_reopens_and_bitcoin_does_not() -> None:
    for symbol, drift, start, quiet in ((XAU, XAU_DRIFT, 3300.0, True), (BTC, BTC_DRIFT, BTC_START, False)):
        core = warmed(symbol, drift=drift)
        # a 70-minute break, then rising bars: gold stays silent for five minutes
        after = trend_bars(symbol, range(70, 80), drift, start - 60 * drift)
        silent = [feed(core, [one]) == [] for one in after]
        assert silent[:5] == [quiet] * 5, symbol
        assert not all(silent[5:]), symbol


def test_a_stale_feed_and_wide_spreads_lower_the_confidence() -> None:
    bars = btc_rise(range(5))
    plain, penalised = warmed(), warmed()
    for core in (plain, penalised):
        core.handle(SymbolSpecReply(ts=0, parent="x", spec=SPECS[BTC]))
    penalised.handle(heartbeat(BTC, ts=bars[0].time, ok=False, reason="stale"))
    wide = [b.model_copy(update={"spread": 8000}) for b in bars]  # 80 USD, about one M1 ATR here
    base, worse = feed(plain, bars), feed(penalised, wide)
    assert len(base) == len(worse) > 0
    assert all(w.confidence < b.confidence or b.confidence == 0.70 for b, w in zip(base, worse, strict=True))
    assert any("gateway says stale" in r for r in worse[0].reasons)


def test_a_repeated_bar_or_another_symbol_is_ignored() -> None:
    core = warmed()
    bars = btc_rise(range(3))
    feed(core, bars)
    assert core.handle(bars[-1]) == []
    assert core.handle(bar(XAU, 3, 3300.0)) == []
    assert core.m1.bars == 263


def test_signals_carry_readable_reasons() -> None:
    core = warmed(higher_drift=BTC_DRIFT)
    signal = core.handle(btc_rise(range(1))[0])[0]
    text = " | ".join(signal.reasons)
    for word in ("M1+M5+M15", "trend", "momentum", "structure", "volume", "confidence", "ADX", "RSI", "MACD"):
        assert word in text
    assert all(len(r) <= 120 for r in signal.reasons)
    assert math.isclose(float(signal.reasons[0].split()[1]), signal.net_norm, abs_tol=0.005)
