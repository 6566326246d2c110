"""Broken market data, caught where it enters: gaps, duplicate bars, impossible bars, zero or frozen prices.

``GatewayCore.poll`` feeds every M1 rate the broker gives it through ``DataQuality.check`` before anything
is published or aggregated, and ``symbol_health`` puts ``status`` into the heartbeat:
``SymbolHealth(ok=False, reason=...)``. Risk refuses every signal while a symbol's data is not ok, so
nothing is traded on a broken stream.

Where a broken rate can come from. The simulator refuses a file with an impossible, zero or repeated bar
when it loads it, so from the sim only gaps and frozen runs can arrive. A live terminal can hand over
anything; the adapter (terminal/convert.py) turns a rate that cannot be a valid ``Bar`` (NaN, a zero price,
high below low, a time off the minute) into a quarantined, unvalidated ``Bar`` holding the raw numbers, so
that it reaches this check, is counted and dropped here, instead of failing the symbol's poll forever.

What is published. A bar after a gap is real and a frozen bar is what the market showed: both are
published, the symbol is just not ok. A duplicate, an impossible bar and a zero price are dropped (never
published, never folded into M5/M15); the minute they leave empty is not reported a second time as a gap.

A missing minute is a gap only if the market was expected to trade then: open by the gateway's market
schedule, and not within ``edge_minutes`` of a closed period, since brokers close a few minutes early and
reopen a few minutes late by their own clock (the shipped gold data stops at 20:57 and restarts at 22:02
around a 21:00-22:00 break). A problem is sticky: the symbol stays not ok until ``clean_bars_to_recover``
good bars in a row have followed it, so the strategies' indicators see clean data again before an order can.
Each episode (a problem following a good bar, or a different problem) is logged once; the per-symbol
counters are logged when they change: at once for a problem a symbol had not shown before, otherwise at
most every ``LOG_EVERY_S`` market seconds (a feed frozen for hours counts every minute).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.messages import MAX_EPOCH_S

log = logging.getLogger(__name__)

M1 = 60
REASONS = ("gap", "duplicate_bar", "bad_bar", "zero_price", "frozen")
PUBLISHED = frozenset({"gap", "frozen"})
"""Problems whose bar is still published (real market data); the others are dropped."""
IsOpen = Callable[[str, float], bool]
OHLC = tuple[float, float, float, float]
MAX_DROPPED_REMEMBERED = 1_000  # minutes of dropped rates kept to tell them from gaps (bounds a flood)
LOG_EVERY_S = 300.0  # market seconds between two counter lines while the same problems keep counting


def rate_problem(time: int, ohlc: OHLC) -> str | None:
    """What makes one rate impossible on its own ("bad_bar", "zero_price"), or None. No stream state."""
    open_, high, low, close = ohlc
    if not all(math.isfinite(p) for p in ohlc) or time % M1 or not 0 <= time <= MAX_EPOCH_S:
        return "bad_bar"
    if min(ohlc) <= 0:
        return "zero_price"
    if high < low or high < max(open_, close) or low > min(open_, close):
        return "bad_bar"
    return None


def schedule_of(broker: object) -> IsOpen:
    """``is_open(symbol, t)`` from the broker's market schedule (hours.py, built from config by each backend).

    A broker says it with ``market_open_at(symbol, t)`` (TerminalBroker). The SimBroker has no such public
    method yet (sim/ is not this module's to change): its per-symbol ``Feed.schedule`` is read instead, the
    very schedule its ``market_open`` uses. A broker with neither gets "never expected open": no gap is
    reported rather than a false one at every close (logged, since gaps then go unseen).
    """
    at = getattr(broker, "market_open_at", None)
    if callable(at):
        return at  # type: ignore[no-any-return]
    feed = getattr(broker, "_feed", None)
    if callable(feed):
        return lambda symbol, t: bool(feed(symbol).schedule.is_open(t))
    log.warning("%s broker has no market schedule: gaps in its bars cannot be told from closed hours",
                type(broker).__name__)
    return lambda symbol, t: False


@dataclass
class _Stream:
    last_time: int | None = None
    last_close: float | None = None
    flat_run: int = 0  # consecutive bars with high == low at the same price
    problem: str = ""
    clean_since: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    dropped: set[int] = field(default_factory=set)  # minutes of rates dropped since the last accepted bar


class DataQuality:
    """Per symbol: the last problem seen in its M1 stream and whether it has recovered.

    ``is_open(symbol, t)`` says whether the symbol's market trades at epoch second ``t`` (the gateway's
    market schedule); ``frozen_bars`` identical flat bars in a row while open count as a frozen feed.
    """

    def __init__(self, is_open: IsOpen, *, frozen_bars: int = 5, clean_bars_to_recover: int = 3,
                 edge_minutes: int = 5) -> None:
        self.is_open = is_open
        self.frozen_bars = frozen_bars
        self.clean_bars_to_recover = clean_bars_to_recover
        self.edge_minutes = edge_minutes
        self._streams: dict[str, _Stream] = {}
        self._changed = False
        self._new_kind = False
        self._logged_at = -math.inf

    def expected(self, symbol: str, t: float) -> bool:
        """Whether minute ``t`` must have a bar: the market is open then and for ``edge_minutes`` around it."""
        if not self.is_open(symbol, t):
            return False
        return all(self.is_open(symbol, t + M1 * k) for k in range(-self.edge_minutes, self.edge_minutes + 1) if k)

    def check(self, symbol: str, time: int, ohlc: OHLC) -> str | None:
        """Take one M1 rate; the problem it shows (one of ``REASONS``), or None for a good bar to publish.

        A rate with a problem outside ``PUBLISHED`` must not be published (it is impossible or a repeat); a
        bar after a gap is real and is published, but the symbol is not ok until the stream has recovered."""
        stream = self._streams.setdefault(symbol, _Stream())
        problem = self._problem(symbol, stream, time, ohlc)
        if problem is None:
            stream.clean_since += 1
        else:
            stream.counts[problem] = stream.counts.get(problem, 0) + 1
            self._changed = True
            self._new_kind |= stream.counts[problem] == 1
            if stream.problem != problem or stream.clean_since:
                log.warning("%s: %s at M1 %d (ohlc %r)", symbol, problem, time, ohlc)
            stream.problem, stream.clean_since = problem, 0
        if problem is None or problem in PUBLISHED:
            stream.last_time, stream.last_close = time, ohlc[3]
            stream.dropped.clear()
        elif problem != "duplicate_bar" and time % M1 == 0 and len(stream.dropped) < MAX_DROPPED_REMEMBERED:
            stream.dropped.add(time)
        return problem

    def status(self, symbol: str) -> tuple[bool, str]:
        """(ok, reason) for the heartbeat: the last problem until enough clean bars followed it."""
        stream = self._streams.get(symbol)
        if stream is None or not stream.problem or stream.clean_since >= self.clean_bars_to_recover:
            return True, "ok"
        return False, stream.problem

    def counts(self, symbol: str) -> dict[str, int]:
        """How many rates of each problem the symbol's stream has shown (for the drop-counter log)."""
        stream = self._streams.get(symbol)
        return dict(stream.counts) if stream else {}

    def summary(self) -> str:
        """'XAUUSDm: bad_bar=2 gap=1; BTCUSDm: frozen=1', or '' while no stream showed a problem."""
        parts = []
        for symbol, stream in sorted(self._streams.items()):
            if stream.counts:
                parts.append(f"{symbol}: " + " ".join(f"{r}={n}" for r, n in sorted(stream.counts.items())))
        return "; ".join(parts)

    def log_if_changed(self, now: float) -> None:
        """One line in the gateway's log when a counter moved (like shared.bus.DropLog); ``now`` is market time."""
        if not self._changed or (not self._new_kind and now - self._logged_at < LOG_EVERY_S):
            return
        log.warning("data quality counters: %s", self.summary())
        self._changed = self._new_kind = False
        self._logged_at = now

    def _problem(self, symbol: str, stream: _Stream, time: int, ohlc: OHLC) -> str | None:
        problem = rate_problem(time, ohlc)
        if problem is not None:
            return problem
        if stream.last_time is not None and time <= stream.last_time:
            return "duplicate_bar"
        flat = ohlc[1] == ohlc[2] and ohlc[3] == stream.last_close
        stream.flat_run = stream.flat_run + 1 if flat else 0
        if stream.flat_run >= self.frozen_bars:
            return "frozen"
        if stream.last_time is not None and any(
            t not in stream.dropped and self.expected(symbol, t) for t in range(stream.last_time + M1, time, M1)
        ):
            return "gap"
        return None
