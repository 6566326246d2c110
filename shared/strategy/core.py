"""One symbol's analysis: closed M1/M5/M15 bars in, signals out. No ZeroMQ, no wall clock.

On every closed M1 bar the engine reads the votes of M1 and, when both are ready and fresh, of M5 and
M15 (``timeframe.py``, ``votes.py``), averages each component over the timeframes (``tf_weights``),
and combines the five components with ``signal.weights`` (a component without data, e.g. volume on
gold, is left out and the others re-weighted):

    net_norm = clip(amplification x sum(w_c x vote_c) / sum(w_c), -1, 1)
             x rn_strength_factor if the close is near a round number
             x off_volatility_factor if the M5 ATR/price is outside [atr_rel_lo, atr_rel_hi]

A signal goes out when |net_norm| >= net_norm_signal_threshold (+ signal_stability_eps to flip side),
the M1 EMAs are stacked its way (``require_ema_stack``) and the bar has a body (``min_body_pct_of_atr``).
Its confidence comes from ``confidence.py``. Risk decides whether it trades; the strategy says what it
sees, and why (``explain.py``).

Gates before any analysis: in regime C (from risk's RiskState or RegimeChanged) the bars still update
the state, so the strategy is ready the moment the regime changes, but nothing else runs; while the
gateway's heartbeat says the market is closed nothing is emitted; ``skip_reason`` holds a symbol's own
rules (gold's quiet minutes after a reopen). Open positions change nothing: analysis goes on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import NamedTuple

from shared.indicators import is_near_round_number
from shared.messages import (
    TIMEFRAME_MINUTES,
    Bar,
    GatewayHeartbeat,
    Message,
    RegimeChanged,
    RiskState,
    Signal,
    SymbolHealth,
    SymbolSpecReply,
    Timeframe,
)
from shared.strategy.confidence import Confidence, ConfidenceModel, TickQuality
from shared.strategy.explain import explain
from shared.strategy.timeframe import TimeframeState
from shared.strategy.votes import COMPONENTS, VoteParams, Votes
from shared.symbol_config import SymbolConfig

log = logging.getLogger(__name__)
M1_TO_M5_ATR = math.sqrt(5.0)  # random-walk scaling, for the volatility check when M5 is missing
ALL_TIMEFRAMES: tuple[Timeframe, ...] = ("M1", "M5", "M15")
MIN_STRENGTH = 1e-6  # net_norm travels rounded to 6 decimals and must keep its sign


class Analysis(NamedTuple):
    """The outcome of the analysis of one M1 bar; ``decision`` is "signal" or why there is none.
    (A NamedTuple: one is made per M1 bar, and it is the cheapest immutable record.)"""

    bar_time: int
    net_norm: float
    components: Votes
    timeframes: tuple[Timeframe, ...]
    notes: tuple[str, ...]
    decision: str


class StrategyCore:
    """Keeps M1/M5/M15 state for one symbol and emits a Signal on a closed M1 bar when it sees one.

    Subclasses (one per symbol service) add the symbol's own rules through ``skip_reason``.
    """

    def __init__(self, config: SymbolConfig) -> None:
        self.config = config
        self.symbol = config.symbol.name
        params = VoteParams.from_config(config)
        self.timeframes = {tf: TimeframeState(tf, config, params) for tf in ALL_TIMEFRAMES}
        self.m1, self.m5, self.m15 = (self.timeframes[tf] for tf in ALL_TIMEFRAMES)
        self.regime = "A"
        self.point: float | None = None  # from the gateway's symbol spec; the spread penalty needs it
        self.health: SymbolHealth | None = None
        self.health_ts = -1.0
        self.signals_emitted = 0
        self.last_analysis: Analysis | None = None
        self.confidence_model = ConfidenceModel(config.signal)
        self.tick_quality = TickQuality(config.signal, config.indicators.vol_lookback)
        sig, ind = config.signal, config.indicators
        self._weights = tuple(sig.weights.get(name, 0.0) for name in COMPONENTS)
        self._tf_weights = (sig.tf_weights["M1"], sig.tf_weights["M5"], sig.tf_weights["M15"])
        self._threshold = sig.net_norm_signal_threshold
        self._flip_threshold = sig.net_norm_signal_threshold + sig.signal_stability_eps
        self._amplification = sig.signal_amplification
        self._atr_rel = (ind.atr_rel_lo, ind.atr_rel_hi)
        self.confidence_formula = f"{sig.confidence_bias:g}+{sig.confidence_gain:g}x"  # for the reasons
        self._last_net = 0.0
        # Benchmark mode only (``make bench``: PORTFOLIO_BENCH_SIGNAL_EVERY_BAR=1, read by the runner): every
        # analysed M1 bar becomes a signal, so the pipeline latency is measured on every bar. Off in production.
        self.signal_every_bar = False

    # ------------------------------------------------------------------ messages in

    def handle(self, message: Message) -> list[Signal]:
        """Any message a strategy receives; the signals it gives rise to (at most one)."""
        if isinstance(message, Bar):
            if message.symbol != self.symbol:
                return []
            signal = self._on_bar(message, emit=True)
            return [] if signal is None else [signal]
        if isinstance(message, RiskState):
            state = message.symbols.get(self.symbol)
            if state is not None:
                self._set_regime(state.regime)
        elif isinstance(message, RegimeChanged):
            if message.symbol == self.symbol:
                self._set_regime(message.new)
        elif isinstance(message, GatewayHeartbeat):
            health = message.symbols.get(self.symbol)
            if health is not None and message.ts >= self.health_ts:
                self.health, self.health_ts = health, message.ts
        elif isinstance(message, SymbolSpecReply) and message.spec.name == self.symbol:
            self.point = message.spec.point
        return []

    def warm_up(self, bars: Iterable[Bar]) -> int:
        """Fold history (any timeframes, any order) into the state exactly as live bars would be, in
        the order the gateway publishes them (by close time, M1 first), without emitting anything.
        Returns the bars used (older than the state, or of another symbol, are ignored)."""
        mine = sorted((b for b in bars if b.symbol == self.symbol),
                      key=lambda b: (b.close_time, TIMEFRAME_MINUTES[b.timeframe]))
        before = sum(tf.bars for tf in self.timeframes.values())
        for bar in mine:
            self._on_bar(bar, emit=False)
        return sum(tf.bars for tf in self.timeframes.values()) - before

    def skip_reason(self, bar: Bar) -> str | None:
        """Hook for a symbol's own rules, asked on each closed M1 bar before analysis: a reason to
        stay silent, or None. The default has none."""
        return None

    @property
    def ready(self) -> bool:
        """Whether the next M1 bar gets the full analysis (M1 ready; M5 and M15 ready, maybe stale)."""
        return all(tf.ready for tf in self.timeframes.values())

    # ------------------------------------------------------------------ the step

    def _set_regime(self, regime: str) -> None:
        if regime != self.regime:
            log.info("%s regime %s -> %s%s", self.symbol, self.regime, regime,
                     ": analysis paused" if regime == "C" else "")
            self.regime = regime

    def _market_closed(self, bar: Bar) -> bool:
        """The gateway's latest heartbeat says the market is closed, and no bar since proves it traded."""
        return self.health is not None and not self.health.market_open and self.health_ts >= bar.time

    def _on_bar(self, bar: Bar, *, emit: bool) -> Signal | None:
        tf = self.timeframes[bar.timeframe]
        if not tf.update(bar) or tf is not self.m1:
            return None
        self.tick_quality.observe(bar.tick_volume)
        if self.regime == "C":  # hard stop: the state stays current, but no analysis at all
            return None
        if self._market_closed(bar) or self.skip_reason(bar) is not None:
            return None
        return self._analyse(bar, emit)

    def _analyse(self, bar: Bar, emit: bool) -> Signal | None:
        m1 = self.m1
        if not m1.ready or m1.votes is None:
            return None
        close_time = bar.time + 60
        m5, m15 = self.m5, self.m15
        full = m5.ready and m15.ready and m5.fresh_at(close_time) and m15.fresh_at(close_time)
        used: tuple[TimeframeState, ...] = (m1, m5, m15) if full else (m1,)
        components = self._combine(used)
        total = weight_sum = 0.0
        for weight, vote in zip(self._weights, components, strict=True):
            if vote is not None:
                total += weight * vote
                weight_sum += weight
        net = self._amplification * total / weight_sum if weight_sum > 0.0 else 0.0
        net = -1.0 if net < -1.0 else 1.0 if net > 1.0 else net
        notes: list[str] = []
        net = self._dampen(net, bar.close, m5 if full else None, notes)
        strength = abs(net)
        decision = self._decide(net, strength, bar)
        self._last_net = net
        timeframes = ALL_TIMEFRAMES if full else ALL_TIMEFRAMES[:1]
        self.last_analysis = Analysis(bar.time, net, components, timeframes, tuple(notes), decision)
        if decision != "signal" or not emit:
            return None
        confidence = self._confidence(bar, strength)
        side = "buy" if net > 0 else "sell"
        signal = Signal(
            id=f"{self.symbol}-{bar.time}-{side}", ts=close_time, symbol=self.symbol, side=side,
            net_norm=round(net, 6), confidence=confidence.value, bar_time=bar.time, price=bar.close,
            atr=m1.indicators.atr.value, spread_points=bar.spread, timeframes=timeframes,
            reasons=explain(self, self.last_analysis, confidence),
        )
        self.signals_emitted += 1
        return signal

    def _combine(self, used: tuple[TimeframeState, ...]) -> Votes:
        """Each component averaged over the timeframes used (volume over those that have it)."""
        if len(used) == 1:
            votes = used[0].votes
            assert votes is not None
            return votes
        w1, w5, w15 = self._tf_weights
        v1, v5, v15 = (tf.votes for tf in used)
        assert v1 is not None and v5 is not None and v15 is not None
        total = w1 + w5 + w15
        volume = volume_weight = 0.0
        for weight, vote in ((w1, v1.volume), (w5, v5.volume), (w15, v15.volume)):
            if vote is not None:
                volume += weight * vote
                volume_weight += weight
        return Votes(
            (w1 * v1.trend + w5 * v5.trend + w15 * v15.trend) / total,
            (w1 * v1.momentum + w5 * v5.momentum + w15 * v15.momentum) / total,
            (w1 * v1.meanrev + w5 * v5.meanrev + w15 * v15.meanrev) / total,
            (w1 * v1.structure + w5 * v5.structure + w15 * v15.structure) / total,
            volume / volume_weight if volume_weight > 0.0 else None,
        )

    def _dampen(self, net: float, close: float, m5: TimeframeState | None, notes: list[str]) -> float:
        """Round numbers and out-of-range volatility weaken a signal (and say so)."""
        pat = self.config.patterns
        if is_near_round_number(close, pat.rn_step, pat.rn_buffer_pct):
            level = pat.rn_step * round(close / pat.rn_step)
            net *= pat.rn_strength_factor
            notes.append(f"near round number {level:g} (+-{close * pat.rn_buffer_pct / 100:.2f}): "
                         f"strength x{pat.rn_strength_factor:g}")
        atr_rel = (m5.indicators.atr.value if m5 is not None else self.m1.indicators.atr.value * M1_TO_M5_ATR) / close
        lo, hi = self._atr_rel
        if not lo <= atr_rel <= hi:
            factor = self.config.signal.off_volatility_factor
            net *= factor
            what = "quiet" if atr_rel < lo else "wild"
            source = "M5 ATR" if m5 is not None else "M1 ATR x sqrt 5"
            notes.append(f"{what} market: {source} {atr_rel:.3%} of price outside "
                         f"{lo:.3%}-{hi:.3%}: strength x{factor:g}")
        return net

    def _decide(self, net: float, strength: float, bar: Bar) -> str:
        """"signal", or why this bar gives none."""
        if self.signal_every_bar:
            return "signal"
        if strength < self._threshold or strength < MIN_STRENGTH:
            return "below threshold"
        if net * self._last_net < 0.0 and strength < self._flip_threshold:
            return "side flip within signal_stability_eps"
        ind = self.m1.indicators
        es, em, el = ind.ema_short.value, ind.ema_mid.value, ind.ema_long.value
        if self.config.signal.require_ema_stack and not (es > em > el if net > 0 else es < em < el):
            return "M1 EMAs not stacked the signal's way"
        if abs(bar.close - bar.open) < self.config.indicators.min_body_pct_of_atr * ind.atr.value:
            return "no body on the trigger bar"
        return "signal"

    def _confidence(self, bar: Bar, strength: float) -> Confidence:
        model = self.confidence_model
        spread = 0.0
        if self.point is not None:
            spread = model.spread_penalty(bar.spread * self.point, self.m1.indicators.atr.value)
        health = self.health if self.health_ts >= bar.time else None
        ticks, tick_notes = self.tick_quality.penalty(
            gap_s=self.m1.gap_s, volume=bar.tick_volume, flat=bar.high == bar.low,
            has_volume=self.m1.has_volume, health=health)
        if self.point is None:
            tick_notes.append("spread penalty unknown: no symbol spec from the gateway yet")
        return model.compute(strength, spread, ticks, tick_notes)
