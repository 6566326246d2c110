"""The five votes of one timeframe, each a number in [-1, 1] (+ buy, - sell), from its indicators.

The formulas are deliberately plain, so a reader of a signal's reasons can redo them by hand:

- trend: EMA stack (short/mid/long/very long in order, -1..1, 35 %), the short-to-long EMA gap in
  ATRs squashed by tanh (40 %) and the +DI/-DI balance (25 %); scaled by ADX from x0.5 at or below
  ``adx_trend_lo`` to x1 at or above ``adx_trend_hi`` (a trend vote counts less in a range).
- momentum: RSI away from 50 (+-20 points = full vote, 40 %), MACD histogram in quarter ATRs (35 %)
  and MACD line in ATRs (25 %), both squashed by tanh.
- mean reversion (votes AGAINST stretched prices): the mean of four fades: close beyond a Bollinger
  band, RSI above 70 / below 30, close more than ``extreme_atr_mult`` ATRs from the mid EMA, close in
  the top / bottom ``extreme_near_pct`` (a fraction) of the ``extreme_lookback``-bar range.
- structure: the patterns of the last ``structure_memory_bars`` bars, each fading linearly with age,
  weighted by ``STRUCTURE_WEIGHTS``, summed and clipped.
- volume: only on a bar with above-average volume (Z > 0): the bar's colour, full at ``z_vol_hot``.
  None when the window has no volume at all (the weight is then left out, not counted as 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from shared.symbol_config import SymbolConfig

if TYPE_CHECKING:
    from shared.indicators import IndicatorSet
    from shared.strategy.timeframe import TimeframeState

COMPONENTS = ("trend", "momentum", "meanrev", "structure", "volume")

#: How much each structure pattern counts (a fresh liquidity sweep alone is a full vote).
STRUCTURE_WEIGHTS = {
    "sweep": 1.0,
    "order block": 0.8,
    "RSI divergence": 0.7,
    "MACD divergence": 0.7,
    "FVG": 0.6,
}
RSI_HIGH, RSI_LOW = 70.0, 30.0


@dataclass(frozen=True, slots=True)
class StructureEvent:
    """A pattern completed on bar number ``bar`` of its timeframe: +1 bullish / -1 bearish."""

    bar: int
    name: str
    direction: int
    level: float = math.nan


@dataclass(frozen=True, slots=True)
class VoteParams:
    """The symbol file's numbers the votes use, read once."""

    adx_lo: float
    adx_span: float
    extreme_mult: float
    extreme_near: float
    z_hot: float
    memory_bars: int

    @classmethod
    def from_config(cls, config: SymbolConfig) -> VoteParams:
        ind, pat = config.indicators, config.patterns
        return cls(
            adx_lo=ind.adx_trend_lo,
            adx_span=max(ind.adx_trend_hi - ind.adx_trend_lo, 1e-9),
            extreme_mult=pat.extreme_atr_mult,
            extreme_near=pat.extreme_near_pct,
            z_hot=max(pat.z_vol_hot, 1e-9),
            memory_bars=pat.structure_memory_bars,
        )


class Votes(NamedTuple):
    """One timeframe's five votes; ``volume`` None when there is no volume data."""

    trend: float
    momentum: float
    meanrev: float
    structure: float
    volume: float | None


def _clip(x: float) -> float:
    return -1.0 if x < -1.0 else 1.0 if x > 1.0 else x


def trend_vote(ind: IndicatorSet, p: VoteParams) -> float:
    """EMA stack, short-to-long EMA gap and DI balance, scaled by ADX (see the module docstring)."""
    es, em, el, ev = ind.ema_short.value, ind.ema_mid.value, ind.ema_long.value, ind.ema_very_long.value
    adx, plus_di, minus_di = ind.adx.value
    stack = ((es > em) - (es < em) + (em > el) - (em < el) + (el > ev) - (el < ev)) / 3.0
    gap = math.tanh((es - el) / (2.0 * ind.atr.value))
    di_sum = plus_di + minus_di
    di = (plus_di - minus_di) / di_sum if di_sum > 0.0 else 0.0
    g = (adx - p.adx_lo) / p.adx_span
    g = 0.0 if g < 0.0 else 1.0 if g > 1.0 else g
    return (0.35 * stack + 0.4 * gap + 0.25 * di) * (0.5 + 0.5 * g)


def momentum_vote(ind: IndicatorSet) -> float:
    """RSI away from 50, MACD histogram and line in ATRs."""
    line, _, hist = ind.macd.value
    atr = ind.atr.value
    return 0.4 * _clip((ind.rsi.value - 50.0) / 20.0) + 0.35 * math.tanh(4.0 * hist / atr) + 0.25 * math.tanh(
        line / atr
    )


def meanrev_vote(tf: TimeframeState, p: VoteParams) -> float:
    """The mean of four fades of a stretched close (Bollinger, RSI, distance to the mid EMA, range)."""
    ind = tf.indicators
    close, atr, rsi = tf.close, ind.atr.value, ind.rsi.value
    upper, middle, _, _ = ind.bollinger.value
    band = 0.0
    half = upper - middle
    if half > 0.0:
        pb = (close - middle) / half
        if pb > 1.0:
            band = -min(1.0, pb - 0.5)
        elif pb < -1.0:
            band = min(1.0, -pb - 0.5)
    rsi_fade = 0.0
    if rsi > RSI_HIGH:
        rsi_fade = -min(1.0, (rsi - RSI_HIGH) / 20.0)
    elif rsi < RSI_LOW:
        rsi_fade = min(1.0, (RSI_LOW - rsi) / 20.0)
    stretch = 0.0
    d = (close - ind.ema_mid.value) / atr
    if abs(d) > p.extreme_mult:
        stretch = -math.copysign(min(1.0, abs(d) / (2.0 * p.extreme_mult)), d)
    extreme = 0.0
    high, low = tf.extremes.high, tf.extremes.low
    span = high - low
    near = p.extreme_near
    if span > 0.0 and near > 0.0:
        pos = (close - low) / span
        if pos >= 1.0 - near:
            extreme = -min(1.0, (pos - (1.0 - near)) / near)
        elif pos <= near:
            extreme = min(1.0, (near - pos) / near)
    return (band + rsi_fade + stretch + extreme) / 4.0


def structure_vote(events: Iterable[StructureEvent], index: int, memory_bars: int) -> float:
    """Recent patterns, each fading linearly over ``memory_bars``, weighted, summed and clipped."""
    total = 0.0
    for event in events:
        total += STRUCTURE_WEIGHTS[event.name] * event.direction * (1.0 - (index - event.bar) / memory_bars)
    return _clip(total)


def volume_vote(zvolume: float, body: float, z_hot: float) -> float:
    """The bar's colour when its volume is above average, full at ``z_hot``."""
    if not zvolume > 0.0 or body == 0.0:
        return 0.0
    return math.copysign(min(1.0, zvolume / z_hot), body)


def votes_of(tf: TimeframeState, p: VoteParams) -> Votes:
    """The votes of ``tf`` on its newest bar (its indicators must be ready, its ATR > 0)."""
    ind = tf.indicators
    return Votes(
        trend_vote(ind, p),
        momentum_vote(ind),
        meanrev_vote(tf, p),
        structure_vote(tf.events, tf.bars - 1, p.memory_bars),
        volume_vote(ind.zvolume.value, tf.close - tf.open, p.z_hot) if tf.has_volume else None,
    )
