"""The shared strategy engine and the gold rule, driven with hand-built bars."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from services.strategy_btc.core import BtcStrategy
from services.strategy_xau.core import XauStrategy
from shared.config import load_config
from shared.messages import Bar, RiskState, Signal, SymbolRiskState
from shared.strategy.core import StrategyCore

CONFIG = load_config(Path(__file__).resolve().parents[3] / "configs" / "system.toml")
T0 = 1_752_163_200  # 2025-07-10 16:00 UTC, a Thursday


def m1(symbol: str, minute: int, close: float, spread: int = 200) -> Bar:
    time = T0 + minute * 60
    return Bar(ts=time + 60, symbol=symbol, timeframe="M1", time=time, open=close - 0.05, high=close + 0.1,
               low=close - 0.1, close=close, tick_volume=10, spread=spread)


def ramp(strategy: StrategyCore, symbol: str, minutes: range, step: float, start: float) -> list[Signal]:
    signals: list[Signal] = []
    for n in minutes:
        signals += strategy.handle(m1(symbol, n, start + step * n))
    return signals


def test_a_steady_rise_gives_buy_signals_from_m1_alone_with_bounded_confidence() -> None:
    strategy = BtcStrategy(CONFIG.symbols["BTCUSDm"])
    signals = ramp(strategy, "BTCUSDm", range(60), step=0.05, start=100.0)
    assert signals, "a clean trend must produce signals"
    assert {s.side for s in signals} == {"buy"}
    assert all(0.70 <= s.confidence <= 0.96 and s.net_norm > 0 for s in signals)
    assert all(s.timeframes == ("M1",) and any("M1 alone" in r for r in s.reasons) for s in signals)
    assert len({s.id for s in signals}) == len(signals)


def test_a_fall_gives_sell_signals() -> None:
    strategy = BtcStrategy(CONFIG.symbols["BTCUSDm"])
    signals = ramp(strategy, "BTCUSDm", range(60), step=-0.05, start=200.0)
    assert signals and {s.side for s in signals} == {"sell"}


def test_confidence_follows_bias_plus_gain_times_strength_within_the_caps() -> None:
    strategy = BtcStrategy(CONFIG.symbols["BTCUSDm"])  # bias 50, gain 120
    assert strategy.confidence(0.25) == 0.80
    assert strategy.confidence(0.0) == 0.70  # floor
    assert strategy.confidence(1.0) == 0.96  # cap


def test_regime_c_stops_analysis_until_it_changes() -> None:
    strategy = BtcStrategy(CONFIG.symbols["BTCUSDm"])
    ramp(strategy, "BTCUSDm", range(40), step=0.05, start=100.0)

    def state(regime: Literal["A", "B", "C"]) -> RiskState:
        symbol = SymbolRiskState(regime=regime, data_ok=True, data_reason="ok")
        return RiskState(ts=0, trading_enabled=True, day_start_balance=1000, day_return=0,
                         symbols={"BTCUSDm": symbol})

    strategy.handle(state("C"))
    assert ramp(strategy, "BTCUSDm", range(40, 50), step=0.05, start=100.0) == []
    strategy.handle(state("A"))
    assert ramp(strategy, "BTCUSDm", range(50, 55), step=0.05, start=100.0)


def test_a_disagreeing_higher_timeframe_vetoes_the_signal() -> None:
    strategy = BtcStrategy(CONFIG.symbols["BTCUSDm"])
    # M5 history falling hard, fresh at the time of the M1 bars below.
    for n in range(30):
        time = T0 - (30 - n) * 300
        close = 300.0 - n
        strategy.handle(Bar(ts=time + 300, symbol="BTCUSDm", timeframe="M5", time=time, open=close + 0.5,
                            high=close + 1, low=close - 1, close=close, tick_volume=1, spread=0))
    signals = ramp(strategy, "BTCUSDm", range(40), step=0.05, start=100.0)
    assert all("M5" not in s.timeframes for s in signals)
    assert not [s for s in signals if s.bar_time < T0 + 5 * 60], "vetoed while M5 was fresh and falling"


def test_gold_stays_quiet_just_after_it_reopens() -> None:
    strategy = XauStrategy(CONFIG.symbols["XAUUSDm"])
    ramp(strategy, "XAUUSDm", range(40), step=0.05, start=3300.0)
    reopened = range(40 + 70, 40 + 70 + 5)  # a 70-minute break, then five minutes of rising bars
    assert ramp(strategy, "XAUUSDm", reopened, step=0.05, start=3300.0) == []
    assert ramp(strategy, "XAUUSDm", range(115, 125), step=0.05, start=3300.0)


def test_a_repeated_bar_is_ignored() -> None:
    strategy = BtcStrategy(CONFIG.symbols["BTCUSDm"])
    ramp(strategy, "BTCUSDm", range(40), step=0.05, start=100.0)
    assert strategy.handle(m1("BTCUSDm", 39, 102.0)) == []
    assert strategy.timeframes["M1"].bars == 40
