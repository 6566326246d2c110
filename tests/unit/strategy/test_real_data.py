"""The strategies on the shipped gold and bitcoin history, as the gateway publishes it.

One run per symbol over all of it (a few seconds) is shared by the tests of this module: the spread of
confidences, the multi-timeframe analysis and its fallback, and the restart: a fresh process warmed
with the gateway's history signals on its very next bar, like the one that ran all along.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from shared.messages import Bar, Signal, SymbolSpecReply
from shared.strategy.core import StrategyCore
from tests.unit.strategy.helpers import BTC, CONFIG, SPECS, XAU, shipped_stream, strategy

WARMUP_BARS = CONFIG.system.strategy.warmup_bars  # what the runner asks the gateway for, per timeframe


@dataclass(frozen=True)
class Run:
    """One symbol's whole history through one strategy core."""

    stream: tuple[Bar, ...]
    signals: dict[int, Signal]  # by position in the stream of the M1 bar that gave it


def spec_core(symbol: str) -> StrategyCore:
    core = strategy(symbol)
    core.handle(SymbolSpecReply(ts=0, parent="test", spec=SPECS[symbol]))
    return core


@pytest.fixture(scope="module", params=[XAU, BTC])
def run(request: pytest.FixtureRequest) -> Run:
    symbol: str = request.param
    stream = shipped_stream(symbol)
    core = spec_core(symbol)
    signals = {}
    for i, one in enumerate(stream):
        for signal in core.handle(one):
            signals[i] = signal
    return Run(stream, signals)


def test_confidence_spreads_out_and_96_percent_is_rare(run: Run) -> None:
    signals = list(run.signals.values())
    confidence = np.array([s.confidence for s in signals])
    strength = np.abs([s.net_norm for s in signals])
    assert len(signals) > 5000
    assert confidence.min() >= 0.70 and confidence.max() <= 0.96
    assert len(np.unique(confidence)) > 100 and confidence.std() > 0.05, "a spread of confidences, not one value"
    assert np.percentile(confidence, 90) - np.percentile(confidence, 10) >= 0.15
    at_cap = float(np.mean(confidence >= 0.96))
    assert 0 < at_cap < 0.01, f"96 % must be rare, got {at_cap:.2%} of signals"
    assert confidence[strength < 0.25].max() <= 0.80, "weak signals never show high confidence"
    assert 0.3 < np.mean([s.side == "buy" for s in signals]) < 0.7


def test_signals_use_all_three_timeframes_and_fall_back_to_m1_alone(run: Run) -> None:
    signals = list(run.signals.values())
    full = [s for s in signals if s.timeframes == ("M1", "M5", "M15")]
    alone = [s for s in signals if s.timeframes == ("M1",)]
    assert len(full) + len(alone) == len(signals)
    assert len(full) > 0.8 * len(signals)
    assert alone and all("M1 alone: " in s.reasons[0] for s in alone)
    assert all(len(s.reasons) >= 6 and all(len(r) <= 120 for r in s.reasons) for s in signals[::50])


def test_warm_up_folds_history_exactly_as_the_live_path() -> None:
    stream = shipped_stream(BTC)[:9000]
    live, restarted = spec_core(BTC), spec_core(BTC)
    cut = 6000
    live_signals = [s for one in stream for s in live.handle(one)]
    assert restarted.warm_up(stream[:cut]) == cut
    after = [s for one in stream[cut:] for s in restarted.handle(one)]
    expected = [s for s in live_signals if s.bar_time >= stream[cut].time]
    assert after and after == expected


def test_a_restart_mid_session_signals_on_its_next_bar(run: Run) -> None:
    """A strategy restarted with only the gateway's last WARMUP_BARS bars per timeframe analyses the
    next bar with all three timeframes and signals it as the one that ran since the start did."""
    stream = run.stream
    symbol = stream[0].symbol
    strong = [i for i, s in sorted(run.signals.items())
              if s.timeframes == ("M1", "M5", "M15") and abs(s.net_norm) >= 0.3]
    picks = strong[len(strong) // 3 :: len(strong) // 4][:3]  # far enough in for M15 to be warm
    assert len(picks) == 3
    for i in picks:
        expected = run.signals[i]
        history = {tf: [b for b in stream[:i] if b.timeframe == tf][-WARMUP_BARS:] for tf in ("M1", "M5", "M15")}
        fresh = spec_core(symbol)
        fresh.warm_up([b for bars in history.values() for b in bars])
        assert fresh.ready
        got = fresh.handle(stream[i])
        assert got, f"no signal on the first bar after the restart (bar {stream[i].time})"
        assert got[0].side == expected.side and got[0].timeframes == expected.timeframes
        assert got[0].net_norm == pytest.approx(expected.net_norm, abs=0.1)


def test_volume_drops_out_on_gold_and_votes_on_bitcoin(run: Run) -> None:
    """The gold file has no volume: its signals leave the volume weight out; bitcoin's carry a vote."""
    volume_lines = [next(r for r in s.reasons if r.startswith("volume")) for s in run.signals.values()]
    without = sum(line.startswith("volume n/a") for line in volume_lines)
    if run.stream[0].symbol == XAU:
        assert without == len(volume_lines)
    else:
        assert without == 0
