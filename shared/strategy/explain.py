"""The reasons of a signal: short lines a person reading the Telegram message can check by hand.

Built only when a signal goes out, and written for speed (one f-string per line, values read once),
because formatting numbers costs more than computing them. The lines: the net strength and the
timeframes used (or why M1 alone); one line per component with the numbers behind it and the same
component on M5/M15; what weakened the signal; how its confidence came about. Each line fits
``Signal.reasons``' 120 characters.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from shared.strategy.confidence import Confidence
from shared.strategy.timeframe import TimeframeState
from shared.strategy.votes import RSI_HIGH, RSI_LOW

if TYPE_CHECKING:
    from shared.strategy.core import Analysis, StrategyCore

MAX_REASON = 120
MAX_EVENTS = 3  # structure patterns named in the reasons, newest first


def _fit(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _fallback(core: StrategyCore, bar_time: int) -> str:
    """Why M5/M15 were not used for the M1 bar opened at ``bar_time``."""
    why = []
    for tf in (core.m5, core.m15):
        if tf.last_time < 0:
            why.append(f"{tf.timeframe} missing")
        elif not tf.ready:
            need = max(tf.min_bars, tf.indicators.config.warmup_bars)
            why.append(f"{tf.timeframe} warming up ({tf.bars}/{need} bars)")
        elif not tf.fresh_at(bar_time + 60):
            when = time.strftime("%m-%d %H:%M", time.gmtime(tf.last_close_time))
            why.append(f"{tf.timeframe} stale (last bar closed {when} UTC)")
    return "M1 alone: " + ", ".join(why)


def _stretched(core: StrategyCore, m1: TimeframeState) -> str:
    """What is stretched on M1 (the mean-reversion vote's reasons); empty when nothing is."""
    ind = m1.indicators
    pat = core.config.patterns
    close = m1.close
    upper, _, lower, _ = ind.bollinger.value
    seen = "above upper Bollinger, " if close > upper else "below lower Bollinger, " if close < lower else ""
    rsi = ind.rsi.value
    if rsi > RSI_HIGH or rsi < RSI_LOW:
        seen += f"RSI {rsi:.0f} {'overbought' if rsi > RSI_HIGH else 'oversold'}, "
    stretch = (close - ind.ema_mid.value) / ind.atr.value
    if abs(stretch) > pat.extreme_atr_mult:
        seen += f"{abs(stretch):.1f} ATR {'above' if stretch > 0 else 'below'} EMA {m1.ema_labels[1]}, "
    high, low = m1.extremes.high, m1.extremes.low
    if high > low:
        pos = (close - low) / (high - low)
        if pos >= 1 - pat.extreme_near_pct:
            seen += f"top of {pat.extreme_lookback}-bar range, "
        elif pos <= pat.extreme_near_pct:
            seen += f"bottom of {pat.extreme_lookback}-bar range, "
    return seen[:-2]


def _patterns(used: list[TimeframeState]) -> str:
    """The structure patterns still voting, newest first: 'M1 bullish FVG (0 bars ago), M5 sweep of
    lows 3301.2 (2 bars ago)'."""
    found = []
    for tf in used:
        last = tf.bars - 1
        for event in reversed(tf.events):
            if event.name == "sweep":
                found.append(f"{tf.timeframe} sweep of {'lows' if event.direction > 0 else 'highs'} "
                             f"{event.level:g} ({last - event.bar} bars ago)")
            else:
                found.append(f"{tf.timeframe} {'bullish' if event.direction > 0 else 'bearish'} {event.name} "
                             f"({last - event.bar} bars ago)")
            if len(found) == MAX_EVENTS:
                return ", ".join(found)
    return ", ".join(found)


def explain(core: StrategyCore, analysis: Analysis, confidence: Confidence) -> tuple[str, ...]:
    """The reasons of the signal ``analysis`` led to, with its ``confidence``."""
    m1 = core.m1
    ind = m1.indicators
    c = analysis.components
    full = len(analysis.timeframes) == 3
    if full:
        v5, v15 = core.m5.votes, core.m15.votes
        assert v5 is not None and v15 is not None
        trend_more = "; M5 %+.2f, M15 %+.2f" % (v5.trend, v15.trend)  # noqa: UP031
        momentum_more = "; M5 %+.2f, M15 %+.2f" % (v5.momentum, v15.momentum)  # noqa: UP031
    else:
        trend_more = momentum_more = ""
    p1, p2, p3, p4 = m1.ema_labels
    es, em, el, ev = ind.ema_short.value, ind.ema_mid.value, ind.ema_long.value, ind.ema_very_long.value
    adx, plus_di, minus_di = ind.adx.value
    line, _, hist = ind.macd.value
    atr = ind.atr.value
    used = [m1, core.m5, core.m15] if full else [m1]
    patterns = _patterns(used)
    # %-formatting: about twice as fast as f-strings with format specs, and these lines carry most numbers.
    lines = [
        f"net {analysis.net_norm:+.2f} on " + ("M1+M5+M15" if full else _fallback(core, analysis.bar_time)),
        "trend %+.2f: M1 EMA %s%s%s%s%s%s%s, ADX %.0f (+DI %.0f / -DI %.0f)%s" % (  # noqa: UP031
            c.trend, p1, ">" if es > em else "<", p2, ">" if em > el else "<", p3, ">" if el > ev else "<", p4,
            adx, plus_di, minus_di, trend_more),
        "momentum %+.2f: M1 RSI %.0f, MACD %+.2f ATR, hist %+.2f ATR%s" % (  # noqa: UP031
            c.momentum, ind.rsi.value, line / atr, hist / atr, momentum_more),
        f"structure {c.structure:+.2f}: {patterns}" if patterns else
        f"structure {c.structure:+.2f}: no pattern in the last {core.config.patterns.structure_memory_bars} bars",
    ]
    m1_votes = m1.votes
    stretched = _stretched(core, m1) if m1_votes is not None and m1_votes.meanrev != 0.0 else ""
    if stretched:
        lines.append(f"mean-rev {c.meanrev:+.2f}: M1 {stretched}")
    if c.volume is None:
        lines.append("volume n/a: no volume data (weight left out)")
    else:
        colour = "rising" if m1.close > m1.open else "falling" if m1.close < m1.open else "flat"
        lines.append(f"volume {c.volume:+.2f}: M1 Z-volume {ind.zvolume.value:+.1f} on a {colour} bar")
    lines.extend(analysis.notes)
    lines.extend(confidence.notes)
    lines.append(confidence.explain(abs(analysis.net_norm), core.confidence_formula))
    return tuple(text if len(text) <= MAX_REASON else _fit(text) for text in lines)
