"""M1 -> M5 / M15 bars with MetaTrader 5's alignment, in a batch and an incremental form.

A higher-timeframe bar opens at ``floor(t / tf) * tf`` (epoch seconds, broker server time) and takes
open = first M1 open, high = max, low = min, close = last M1 close, tick_volume = sum and
spread = min of its M1 bars (MqlRates.spread is the bar's smallest spread). A window with missing
minutes (gold before its daily break) is still one bar, closed when its window ends.

The batch form (``aggregate``) serves history requests; ``BarAggregator`` builds the same bars live,
one M1 bar at a time, and ``flush(now)`` closes every window whose end is <= now, so a bar whose last
minutes never come still closes on time. Both give identical bars (tested on the shipped data).

Partial bars. Given ``expected(symbol, t)`` (the gateway passes ``DataQuality.expected``: the market was
due to trade in minute ``t``), ``BarAggregator`` marks a bar whose window lacks the M1 bar of an expected
minute with ``m1_count`` = the M1 bars it was built from (``shared.messages.Bar``): a gap, a broken rate the
gateway dropped, bars held back by a stale feed (the window closes on time without them and they arrive
late), or a gateway started mid-window. Minutes the market was closed (gold's break) never make a bar
partial. Without ``expected`` nothing is marked, as in the batch form (history is what the broker shows).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.messages import TIMEFRAME_MINUTES, Bar, Timeframe

log = logging.getLogger(__name__)


def bar_id(symbol: str, timeframe: str, time: int) -> str:
    """The deterministic id of a bar message: the same bar always has the same id."""
    return f"{symbol}-{timeframe}-{time}"


@dataclass(frozen=True, slots=True)
class BarArrays:
    """Bars of one symbol and timeframe as columns; ``time`` is the bar open time."""

    time: npt.NDArray[np.int64]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    tick_volume: npt.NDArray[np.int64]
    spread: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.time)


def aggregate(m1: BarArrays, minutes: int) -> BarArrays:
    """Batch M1 -> ``minutes`` bars; ``m1.time`` must be strictly increasing."""
    if minutes == 1 or len(m1) == 0:
        return m1
    if np.any(np.diff(m1.time) <= 0):
        raise ValueError("aggregate needs M1 bars strictly increasing in time")
    size = minutes * 60
    windows = (m1.time // size) * size
    starts = np.flatnonzero(np.r_[True, windows[1:] != windows[:-1]])
    ends = np.r_[starts[1:], len(windows)] - 1
    return BarArrays(
        time=windows[starts],
        open=m1.open[starts],
        high=np.maximum.reduceat(m1.high, starts),
        low=np.minimum.reduceat(m1.low, starts),
        close=m1.close[ends],
        tick_volume=np.add.reduceat(m1.tick_volume, starts),
        spread=np.minimum.reduceat(m1.spread, starts),
    )


def aggregate_bars(bars: Sequence[Bar], timeframe: Timeframe) -> list[Bar]:
    """Batch aggregation of one symbol's M1 ``Bar`` messages (oldest first) into ``timeframe`` bars."""
    if not bars:
        return []
    symbols = {bar.symbol for bar in bars}
    if len(symbols) != 1 or any(bar.timeframe != "M1" for bar in bars):
        raise ValueError("aggregate_bars takes M1 bars of exactly one symbol")
    m1 = BarArrays(
        time=np.array([b.time for b in bars], dtype=np.int64),
        open=np.array([b.open for b in bars]),
        high=np.array([b.high for b in bars]),
        low=np.array([b.low for b in bars]),
        close=np.array([b.close for b in bars]),
        tick_volume=np.array([b.tick_volume for b in bars], dtype=np.int64),
        spread=np.array([b.spread for b in bars], dtype=np.int64),
    )
    return list(to_bars(aggregate(m1, TIMEFRAME_MINUTES[timeframe]), bars[0].symbol, timeframe))


def to_bars(arrays: BarArrays, symbol: str, timeframe: Timeframe, start: int = 0) -> Iterable[Bar]:
    """Bar messages from columns (from index ``start``); ``ts`` is each bar's close time."""
    size = TIMEFRAME_MINUTES[timeframe] * 60
    columns = zip(
        arrays.time[start:].tolist(), arrays.open[start:].tolist(), arrays.high[start:].tolist(),
        arrays.low[start:].tolist(), arrays.close[start:].tolist(), arrays.tick_volume[start:].tolist(),
        arrays.spread[start:].tolist(), strict=True,
    )
    for t, o, h, lo, c, v, s in columns:
        yield Bar(
            id=bar_id(symbol, timeframe, t), ts=t + size, symbol=symbol, timeframe=timeframe, time=t,
            open=o, high=h, low=lo, close=c, tick_volume=v, spread=s,
        )


@dataclass(slots=True)
class _Partial:
    time: int
    end: int
    open: float
    high: float
    low: float
    close: float
    tick_volume: int
    spread: int
    count: int = 1
    present: int = 0  # bit k set: the window's minute k had its M1 bar


class BarAggregator:
    """Live M1 -> M5/M15 for any number of symbols; emits each higher bar exactly once.

    ``add`` takes closed M1 bars in time order per symbol (a repeated or older bar is an error) and
    returns the windows it completes; ``flush(now)`` returns every window whose end is <= ``now`` (call
    it after each poll with the market time reached). An M1 bar arriving after its window was already
    flushed (a feed that was stale and caught up) cannot change a published bar: it is counted in
    ``late``, logged and left out of that timeframe, never emitted as a second bar for the window.
    With ``expected`` (see the module docstring) a window missing an expected minute is emitted with
    ``m1_count``; ``partial`` counts them.
    """

    def __init__(self, timeframes: Sequence[Timeframe] = ("M5", "M15"),
                 expected: Callable[[str, float], bool] | None = None) -> None:
        if not timeframes or any(tf == "M1" for tf in timeframes):
            raise ValueError(f"timeframes must be higher than M1, got {tuple(timeframes)}")
        self._timeframes = tuple(timeframes)
        self._partials: dict[tuple[str, Timeframe], _Partial] = {}
        self._last_m1: dict[str, int] = {}
        self._emitted: dict[tuple[str, Timeframe], int] = {}
        self._expected = expected
        self.late = 0
        self.partial = 0

    def add(self, bar: Bar) -> list[Bar]:
        """Fold one closed M1 bar in; return the higher bars it completes (oldest first)."""
        if bar.timeframe != "M1":
            raise ValueError(f"BarAggregator.add takes M1 bars, got {bar.timeframe}")
        last = self._last_m1.get(bar.symbol)
        if last is not None and bar.time <= last:
            raise ValueError(f"{bar.symbol} M1 bar {bar.time} is not after the previous one ({last})")
        self._last_m1[bar.symbol] = bar.time
        out: list[Bar] = []
        for tf in self._timeframes:
            key = (bar.symbol, tf)
            size = TIMEFRAME_MINUTES[tf] * 60
            window = bar.time // size * size
            if window <= self._emitted.get(key, -1):
                self.late += 1
                log.warning("%s M1 bar %d arrived after its %s bar was closed: left out of it",
                            bar.symbol, bar.time, tf)
                continue
            part = self._partials.get(key)
            if part is not None and part.time != window:
                out.append(self._emit(bar.symbol, tf, part))
                part = None
            minute = 1 << (bar.time - window) // 60
            if part is None:
                self._partials[key] = _Partial(
                    window, window + size, bar.open, bar.high, bar.low, bar.close, bar.tick_volume, bar.spread,
                    present=minute,
                )
            else:
                part.high = max(part.high, bar.high)
                part.low = min(part.low, bar.low)
                part.close = bar.close
                part.tick_volume += bar.tick_volume
                part.spread = min(part.spread, bar.spread)
                part.count += 1
                part.present |= minute
        out.extend(self._flush(bar.close_time, bar.symbol))
        return _ordered(out)

    def flush(self, now: float) -> list[Bar]:
        """Close and return every pending window whose end is <= ``now`` (oldest first)."""
        return _ordered(self._flush(now, None))

    def flush_symbol(self, symbol: str, now: float) -> list[Bar]:
        """Like ``flush`` for one symbol: its M1 bars are complete up to ``now`` (a live feed's horizon)."""
        return _ordered(self._flush(now, symbol))

    def _flush(self, now: float, symbol: str | None) -> list[Bar]:
        # add() closes only its own symbol's windows: another symbol's bar of the same minute may
        # still be on its way in the same update.
        return [
            self._emit(sym, tf, part)
            for (sym, tf), part in list(self._partials.items())
            if part.end <= now and (symbol is None or sym == symbol)
        ]

    def _emit(self, symbol: str, tf: Timeframe, part: _Partial) -> Bar:
        del self._partials[(symbol, tf)]
        self._emitted[(symbol, tf)] = part.time
        partial = self._missing_expected(symbol, part)
        if partial:
            self.partial += 1
        return Bar(
            id=bar_id(symbol, tf, part.time), ts=part.end, symbol=symbol, timeframe=tf, time=part.time,
            open=part.open, high=part.high, low=part.low, close=part.close,
            tick_volume=part.tick_volume, spread=part.spread, m1_count=part.count if partial else None,
        )

    def _missing_expected(self, symbol: str, part: _Partial) -> bool:
        """Whether a minute of the window the market was expected to trade in has no M1 bar here."""
        expected = self._expected
        if expected is None:
            return False
        minutes = (part.end - part.time) // 60
        return any(not part.present >> k & 1 and expected(symbol, part.time + 60 * k) for k in range(minutes))


def _ordered(bars: list[Bar]) -> list[Bar]:
    bars.sort(key=lambda b: (b.close_time, TIMEFRAME_MINUTES[b.timeframe]))
    return bars
