"""One symbol's analysis: closed M1/M5/M15 bars in, signals out. No ZeroMQ, no wall clock.

Walking-skeleton rule (the strategy issue replaces it with the full multi-indicator scoring): the
M1 trend is (EMA short - EMA mid) / ATR, squashed into [-1, 1] by tanh; M5 and M15 must agree in
sign when they are fresh, else the signal says it fell back to M1 alone. Confidence is
confidence_bias + confidence_gain x strength (in %), kept within [confidence_floor, confidence_cap].
Risk decides whether a signal trades; the strategy only says what it sees.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from shared.indicators import AtrState, EmaState
from shared.messages import TIMEFRAME_MINUTES, Bar, Message, RiskState, Signal, Timeframe
from shared.symbol_config import SymbolConfig

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TimeframeState:
    """Incremental indicators of one timeframe and the time of its last closed bar."""

    ema_short: EmaState
    ema_mid: EmaState
    atr: AtrState
    last_bar_time: int = -1
    bars: int = 0

    def update(self, bar: Bar) -> bool:
        """Fold in a closed bar; False (ignored) for a bar not newer than the last one."""
        if bar.time <= self.last_bar_time:
            return False
        self.ema_short.update(bar.close)
        self.ema_mid.update(bar.close)
        self.atr.update(bar.high, bar.low, bar.close)
        self.last_bar_time = bar.time
        self.bars += 1
        return True

    def trend(self) -> float | None:
        """(EMA short - EMA mid) / ATR, or None until every indicator is warmed up."""
        if not (self.ema_short.ready and self.ema_mid.ready and self.atr.ready):
            return None
        atr = self.atr.value
        if not atr > 0:  # also False for NaN
            return None
        return (self.ema_short.value - self.ema_mid.value) / atr


@dataclass
class StrategyCore:
    """Keeps M1/M5/M15 state for one symbol and emits a Signal on a closed M1 bar when it sees one."""

    config: SymbolConfig
    regime: str = "A"
    timeframes: dict[str, TimeframeState] = field(init=False)
    signals_emitted: int = 0

    def __post_init__(self) -> None:
        ind = self.config.indicators
        self.symbol = self.config.symbol.name
        self.timeframes = {
            tf: TimeframeState(EmaState(ind.ema_short), EmaState(ind.ema_mid), AtrState(ind.atr_period))
            for tf in ("M1", "M5", "M15")
        }

    def skip_reason(self, bar: Bar) -> str | None:
        """Hook for a symbol's own rules, called on every closed M1 bar: a reason to stay silent, or None."""
        return None

    def warm_up(self, bars: list[Bar]) -> int:
        """Fold history into the state without emitting anything; returns the bars used."""
        return sum(1 for bar in bars if bar.symbol == self.symbol and self.timeframes[bar.timeframe].update(bar))

    def handle(self, message: Message) -> list[Signal]:
        if isinstance(message, RiskState):
            state = message.symbols.get(self.symbol)
            if state is not None and state.regime != self.regime:
                log.info("regime %s -> %s", self.regime, state.regime)
                self.regime = state.regime
            return []
        if not isinstance(message, Bar) or message.symbol != self.symbol:
            return []
        if not self.timeframes[message.timeframe].update(message) or message.timeframe != "M1":
            return []
        if self.regime == "C":  # hard stop: no analysis at all until risk says otherwise
            return []
        if self.skip_reason(message):
            return []
        signal = self.analyse(message)
        if signal is not None:
            self.signals_emitted += 1
        return [signal] if signal else []

    def _fresh(self, timeframe: Timeframe, m1_bar: Bar) -> bool:
        """A higher timeframe is fresh when its last closed bar ended no more than one bar ago."""
        state = self.timeframes[timeframe]
        span = TIMEFRAME_MINUTES[timeframe] * 60
        return state.last_bar_time >= 0 and m1_bar.close_time - (state.last_bar_time + span) <= span

    def analyse(self, bar: Bar) -> Signal | None:
        m1 = self.timeframes["M1"]
        trend = m1.trend()
        if trend is None or trend == 0:
            return None
        net_norm = math.tanh(trend)
        used: list[Timeframe] = ["M1"]
        reasons = [f"M1 EMA{self.config.indicators.ema_short}-EMA{self.config.indicators.ema_mid} "
                   f"= {trend:+.2f} ATR"]
        for timeframe in ("M5", "M15"):
            higher = self.timeframes[timeframe].trend() if self._fresh(timeframe, bar) else None
            if higher is None:
                continue
            if (higher > 0) != (net_norm > 0):
                return None  # a higher timeframe disagrees: no signal
            used.append(timeframe)
            reasons.append(f"{timeframe} agrees ({higher:+.2f} ATR)")
        if len(used) == 1:
            reasons.append("M5/M15 missing or stale: M1 alone")
        strength = abs(net_norm)
        if strength < self.config.signal.net_norm_signal_threshold:
            return None
        return Signal(
            id=f"{self.symbol}-{bar.time}-{'buy' if net_norm > 0 else 'sell'}",
            ts=bar.close_time,
            symbol=self.symbol,
            side="buy" if net_norm > 0 else "sell",
            net_norm=round(net_norm, 6),
            confidence=self.confidence(strength),
            bar_time=bar.time,
            price=bar.close,
            atr=m1.atr.value,
            spread_points=bar.spread,
            timeframes=tuple(used),
            reasons=tuple(reasons),
        )

    def confidence(self, strength: float) -> float:
        """confidence_bias + confidence_gain x strength (%), within [floor, cap]."""
        signal = self.config.signal
        raw = (signal.confidence_bias + signal.confidence_gain * strength) / 100.0
        return round(min(signal.confidence_cap, max(signal.confidence_floor, raw)), 4)
