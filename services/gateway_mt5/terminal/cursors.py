"""Exactly-once publication from a live terminal: closed M1 bars per symbol, and exit deals.

Which bar is closed. copy_rates_from_pos(symbol, M1, 0, n) returns the bar of the latest tick as
position 0, the one still forming; every earlier bar is closed. Position 0 is closed too once a tick
of a later minute exists, or once the market is closed (gold's break, the weekend): no tick will come
to end it, and waiting for the reopening would hold gold's last bar, and the M5/M15 bars it ends, for
an hour or a weekend. ``closed_by`` is that proof in market time: the time of the symbol's latest tick
(read BEFORE the rates, so the rates contain every tick up to it), or the clock a grace period after the
market closed. A bar is closed iff it is not the last one returned, or its close time <= closed_by.

Exactly once. The cursor remembers the open time of the last bar published and publishes only newer
closed bars, in order. When every bar of the short poll is new, bars may be missing between the last
published and the poll (a reconnect, a stall): they are back-filled with a longer copy_rates_from_pos
reaching back to the last published, so nothing is lost and nothing repeats. The first poll after
start-up only sets the cursor (warm-up is the strategies' history request).

``horizon`` tells the gateway how far the symbol's M1 bars are complete, so that it closes that
symbol's M5/M15 windows by it, not by another symbol's faster clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shared.messages import Bar, DealClosed

M1 = 60
MAX_BACKFILL = 100_000  # bars a terminal keeps per chart by default (terminal_info().maxbars)


def closed_bars(bars: list[Bar], closed_by: float) -> list[Bar]:
    """The closed ones of a terminal's bars (oldest first): all but the last, and the last when proven."""
    if bars and bars[-1].close_time > closed_by:
        return bars[:-1]
    return bars


@dataclass(slots=True)
class M1Cursor:
    """The last M1 bar published for one symbol, and how to find the next ones."""

    symbol: str
    last: int | None = None
    """Open time of the last published (or, at start-up, the newest existing) closed M1 bar."""
    backfills: int = 0

    def due(self, closed_by: float) -> bool:
        """Whether a newer closed bar can exist: the earliest possible one closes at last + 120 s."""
        return self.last is None or closed_by >= self.last + 2 * M1

    def take(
        self, recent: list[Bar], closed_by: float, fetch_back: Callable[[int], list[Bar]],
    ) -> tuple[list[Bar], float]:
        """New closed bars from a short copy_rates_from_pos(.., 0, n) poll, and the symbol's horizon.

        ``fetch_back(count)`` is copy_rates_from_pos(.., 0, count): the back-fill, sized to reach the last
        published bar. (Positions, not copy_rates_range: mt5linux passes range dates through
        ``datetime.astimezone()``, i.e. the client's local zone, and the package's handling of aware
        datetimes is undocumented; positions are plain integers on every path.)
        """
        horizon = max(closed_by, float(recent[-1].time)) if recent else closed_by
        closed = closed_bars(recent, closed_by)
        if not closed:
            return [], horizon
        if self.last is None:
            self.last = closed[-1].time
            return [], horizon
        last = self.last
        if closed[-1].time <= last:
            return [], horizon
        if closed[0].time > last:  # the whole poll is new: bars may be missing in between
            series = fetch_back(min(MAX_BACKFILL, (recent[-1].time - last) // M1 + 2))
            self.backfills += 1
            horizon = max(horizon, float(series[-1].time)) if series else horizon
            closed = closed_bars(series, closed_by)
        fresh = [bar for bar in closed if bar.time > last]
        if fresh:
            self.last = fresh[-1].time
        return fresh, horizon


@dataclass(slots=True)
class DealCursor:
    """Exit deals already published (by ticket) since a market time; each deal goes out once.

    The terminal is asked from ``since - OVERLAP`` on, so a deal the terminal learns of slightly out of
    order is still seen; the tickets remembered make the overlap harmless.
    """

    OVERLAP = 60.0

    since: float | None = None
    seen: dict[int, float] = field(default_factory=dict)

    def take(self, deals: list[DealClosed]) -> list[DealClosed]:
        """The deals not published yet, oldest first; moves ``since`` to the newest deal's time."""
        fresh = sorted((d for d in deals if d.ticket not in self.seen), key=lambda d: (d.time, d.ticket))
        for deal in fresh:
            self.seen[deal.ticket] = deal.time
        if fresh:
            self.since = max(self.since or 0.0, fresh[-1].time)
            horizon = self.since - 3600  # a deal an hour older than the newest cannot show up again
            self.seen = {ticket: t for ticket, t in self.seen.items() if t >= horizon}
        return fresh
