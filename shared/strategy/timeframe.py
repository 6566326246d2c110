"""One symbol on one timeframe: its indicators, its structure detectors and the votes they give.

A strategy keeps one ``TimeframeState`` for M1, M5 and M15. ``update`` folds in a closed bar in O(1)
(the classic indicators of ``IndicatorSet``, the five live structure detectors, a rolling high/low)
and, once the indicators are warmed up, computes this timeframe's ``Votes`` right away: a higher
timeframe's votes then wait, cached, for the M1 bars that read them, so an M1 step never recomputes
M5 or M15.
"""

from __future__ import annotations

import math
from collections import deque

from shared.indicators import (
    DivergenceDetector,
    FvgDetector,
    IndicatorConfig,
    IndicatorSet,
    OrderBlockDetector,
    SweepDetector,
)
from shared.messages import TIMEFRAME_MINUTES, Bar, Timeframe
from shared.strategy.votes import StructureEvent, VoteParams, Votes, votes_of
from shared.symbol_config import SymbolConfig

#: A pause in the bars longer than this is a market break (gold's daily break, a weekend), not a gap.
REOPEN_GAP_S = 5 * 60


def indicator_config(config: SymbolConfig) -> IndicatorConfig:
    """The indicator periods of a symbol file (``[indicators]``) in the library's terms."""
    ind = config.indicators
    return IndicatorConfig(
        ema_short=ind.ema_short, ema_mid=ind.ema_mid, ema_long=ind.ema_long, ema_very_long=ind.ema_vlong,
        atr_period=ind.atr_period, rsi_period=ind.rsi_period, adx_period=ind.adx_period,
        macd_fast=ind.macd_fast, macd_slow=ind.macd_slow, macd_signal=ind.macd_signal,
        bb_period=ind.bb_period, bb_nbdev=ind.bb_nbdev, zvolume_lookback=ind.vol_lookback,
    )


class RollingExtremes:
    """Highest high and lowest low of the last ``size`` bars, amortised O(1) (monotonic deques)."""

    __slots__ = ("_highs", "_lows", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._highs: deque[tuple[int, float]] = deque()
        self._lows: deque[tuple[int, float]] = deque()

    def update(self, index: int, high: float, low: float) -> None:
        """Add bar ``index`` (increasing by one per call)."""
        highs, lows = self._highs, self._lows
        while highs and highs[-1][1] <= high:
            highs.pop()
        highs.append((index, high))
        while lows and lows[-1][1] >= low:
            lows.pop()
        lows.append((index, low))
        oldest = index - self._size
        if highs[0][0] <= oldest:
            highs.popleft()
        if lows[0][0] <= oldest:
            lows.popleft()

    @property
    def high(self) -> float:
        return self._highs[0][1] if self._highs else math.nan

    @property
    def low(self) -> float:
        return self._lows[0][1] if self._lows else math.nan


class TimeframeState:
    """Everything one timeframe knows: indicators, detectors, recent patterns, the last bar, its votes."""

    def __init__(self, timeframe: Timeframe, config: SymbolConfig, params: VoteParams) -> None:
        pat = config.patterns
        self.timeframe: Timeframe = timeframe
        self.seconds = TIMEFRAME_MINUTES[timeframe] * 60
        self.min_bars = config.indicators.min_bars_m1 if timeframe == "M1" else config.indicators.min_bars_m5_m15
        self.params = params
        self.indicators = IndicatorSet(indicator_config(config))
        cfg = self.indicators.config
        self.ema_labels = (str(cfg.ema_short), str(cfg.ema_mid), str(cfg.ema_long), str(cfg.ema_very_long))
        self.fvg = FvgDetector(pat.fvg_min_atr_mult)
        self.sweeps = SweepDetector(pat.sweep_lookback, pat.sweep_min_atr_mult)
        self.blocks = OrderBlockDetector(pat.ob_impulse_atr_mult, pat.ob_max_bars)
        self.rsi_div = DivergenceDetector(pat.div_pivot_bars, pat.div_pivot_bars, pat.div_lookback)
        self.macd_div = DivergenceDetector(pat.div_pivot_bars, pat.div_pivot_bars, pat.div_lookback)
        self.extremes = RollingExtremes(pat.extreme_lookback)
        self.events: deque[StructureEvent] = deque()
        self.bars = 0
        self.last_time = -1
        self.gap_s = 0  # seconds between the open times of the last two bars, minus one bar
        self.resumed_at = -1  # open time of the first bar after the last market break
        self.last_volume_bar = -1 << 40  # index of the last bar that had any volume
        self.open = self.high = self.low = self.close = math.nan
        self.volume = 0
        self.spread = 0
        self.votes: Votes | None = None

    @property
    def last_close_time(self) -> int:
        """Epoch second at which the newest bar closed (-1 before any)."""
        return self.last_time + self.seconds if self.last_time >= 0 else -1

    @property
    def ready(self) -> bool:
        """Every indicator has a value and the symbol file's minimum bar count is reached."""
        return self.votes is not None and self.bars >= self.min_bars

    @property
    def has_volume(self) -> bool:
        """Some bar in the Z-volume window had volume (the shipped gold history has none)."""
        return self.bars - 1 - self.last_volume_bar < self.indicators.config.zvolume_lookback

    def fresh_at(self, close_time: int) -> bool:
        """Whether this timeframe is current for an M1 bar closing at ``close_time``: its newest bar
        closed at most one of its bars earlier (the bar closing with this M1 bar is published after
        it, so a lag of one bar is normal)."""
        return self.last_time >= 0 and close_time - self.last_close_time <= self.seconds

    def update(self, bar: Bar) -> bool:
        """Fold in a closed bar; False (ignored) for a bar not newer than the last one."""
        if bar.time <= self.last_time:
            return False
        if self.last_time >= 0:
            pause = bar.time - self.last_time
            self.gap_s = pause - self.seconds
            if pause > REOPEN_GAP_S and pause > self.seconds:
                self.resumed_at = bar.time
        self.last_time = bar.time
        o, h, lo, c, v = bar.open, bar.high, bar.low, bar.close, bar.tick_volume
        self.open, self.high, self.low, self.close, self.volume, self.spread = o, h, lo, c, v, bar.spread
        ind = self.indicators
        ind.update(o, h, lo, c, float(v))
        index = self.bars
        self.bars = index + 1
        if v > 0:
            self.last_volume_bar = index
        atr = ind.atr.value
        self._detect(index, atr)
        self.extremes.update(index, h, lo)
        self.votes = votes_of(self, self.params) if ind.ready and atr > 0.0 else None
        return True

    def _detect(self, index: int, atr: float) -> None:
        """Run the structure detectors and remember what they found for ``memory_bars`` bars."""
        o, h, lo, c = self.open, self.high, self.low, self.close
        events = self.events
        while events and index - events[0].bar >= self.params.memory_bars:
            events.popleft()
        zone = self.fvg.update(h, lo, atr)
        if zone is not None:
            events.append(StructureEvent(index, "FVG", zone.direction))
        sweep = self.sweeps.update(h, lo, c, atr)
        if sweep is not None:
            events.append(StructureEvent(index, "sweep", sweep.direction, sweep.level))
        zone = self.blocks.update(o, h, lo, c, atr)
        if zone is not None:
            events.append(StructureEvent(index, "order block", zone.direction))
        div = self.rsi_div.update(h, lo, self.indicators.rsi.value)
        if div:
            events.append(StructureEvent(index, "RSI divergence", div))
        div = self.macd_div.update(h, lo, self.indicators.macd.value[0])
        if div:
            events.append(StructureEvent(index, "MACD divergence", div))
