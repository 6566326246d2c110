"""The trading day's money: its anchors, the day's P&L on two measures, their peaks, the new-day notice.

Both measures are in account currency against the balance at the start of the UTC day:

- "account" (``ignore_external_positions = false``): equity - start balance. Everything on the account
  moves it, deposits included.
- "ours" (``ignore_external_positions = true``): our exit deals of the day (our magic on a configured
  symbol; profit + swap + commission + fee, each deal counted once by ticket) plus the floating profit +
  swap of our open positions, from the gateway's position list that the runner polls. Positions and deals
  of any other magic, deposits and withdrawals do not move it. A position that left the list counts at
  its last floating P&L until its exit deal arrives. Chosen over "account P&L minus the
  external part" because that would count a deposit as profit (a false target, a false profit lock);
  the price is that entry commissions are not seen (neither exit deals nor positions carry them), which
  is nothing on Exness Standard accounts. Until the first position list, the floating part is 0.

A position carried over midnight counts its whole floating P&L in the new day (the start is the balance,
not the equity), on both measures alike. The peaks start at 0 each day and only rise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Literal

from services.risk.regimes import DayFigures, utc_day
from services.risk.store import DayAnchors, RiskStore
from shared.messages import AccountSnapshot, DayStarted, DealClosed, PositionData
from shared.mt5 import DEAL_ENTRY_IN
from shared.symbol_config import SymbolConfig

log = logging.getLogger(__name__)

Measure = Literal["account", "ours"]


def measure_of(config: SymbolConfig) -> Measure:
    """The measure of the day's return a symbol's regime follows."""
    return "ours" if config.risk.ignore_external_positions else "account"


class TradingDay:
    """The day's anchors and P&L, kept in the store as they change."""

    def __init__(self, store: RiskStore, symbols: Mapping[str, SymbolConfig]) -> None:
        self._store = store
        self._magic = {symbol: config.symbol.magic for symbol, config in symbols.items()}
        # One headline figure (RiskState, DayStarted): ours when every symbol ignores external positions.
        self.headline: Measure = "ours" if all(measure_of(c) == "ours" for c in symbols.values()) else "account"
        self.anchors: DayAnchors | None = store.load_day()
        self.account: AccountSnapshot | None = None
        self._floating: dict[int, float] = {}  # our open positions: ticket -> profit + swap
        self._vanished: dict[int, float] = {}  # closed, exit deal not yet seen: ticket -> last profit + swap
        self._realised = store.realised(self.anchors.day) if self.anchors else 0.0

    @property
    def day(self) -> str | None:
        return self.anchors.day if self.anchors else None

    def ours(self, symbol: str, magic: int) -> bool:
        """A position or deal of ours: our magic on a configured symbol."""
        return self._magic.get(symbol) == magic

    # ------------------------------------------------------------------ inputs

    def open(self, today: str) -> None:
        """Open ``today``: start balance from the latest account (or the first one to come), peaks at 0, and a
        DayStarted owed that carries the previous day's result."""
        previous = self.anchors
        result = self.result() if previous else None
        account = self.account
        self.anchors = DayAnchors(
            day=today, start_balance=account.balance if account else None,
            peak_equity=account.equity if account else None, announced=False,
            previous_day=previous.day if previous else None,
            previous_pnl=result[0] if result else 0.0, previous_return=result[1] if result else 0.0,
        )
        self._realised = self._store.realised(today)
        self._store.save_day(self.anchors)
        self._store.forget_deals_before(today)
        log.info("day %s: start balance %s (previous day %s: %s)", today, self.anchors.start_balance,
                 self.anchors.previous_day, result)

    def set_account(self, account: AccountSnapshot) -> None:
        self.account = account
        anchors = self.anchors
        if anchors is not None and anchors.start_balance is None:  # the day opened before any account was known
            self.anchors = replace(anchors, start_balance=account.balance, peak_equity=account.equity)
            self._store.save_day(self.anchors)
            log.info("day %s: start balance %s (first account of the day)", anchors.day, account.balance)

    def set_positions(self, positions: Iterable[PositionData]) -> None:
        """The broker's complete list of open positions: our floating P&L from now on.

        A position of ours that left the list keeps its last floating P&L until its exit deal is counted
        (the deal may still be on its way): else a closed winner would look like a drop for a moment and
        could fire the profit lock or the drawdown rule falsely."""
        floating = {p.ticket: p.profit + p.swap for p in positions if self.ours(p.symbol, p.magic)}
        self._vanished.update({t: v for t, v in self._floating.items() if t not in floating})
        for ticket in floating:
            self._vanished.pop(ticket, None)
        self._floating = floating

    @property
    def awaiting_deals(self) -> bool:
        """Positions of ours closed without their exit deal seen yet: the day's deals should be fetched."""
        return bool(self._vanished)

    def deals_complete(self) -> None:
        """The day's exit deals were just fetched in full: a closed position whose deal is not among them
        has no P&L to wait for (closed before the day began, or not by an exit deal)."""
        if self._vanished:
            log.warning("no exit deal for closed position(s) %s: their last floating P&L is dropped",
                        sorted(self._vanished))
        self._vanished.clear()

    def add_deal(self, deal: DealClosed) -> bool:
        """Count one exit deal of ours (once, by ticket); True if it was new. It leaves the floating part."""
        if deal.entry == DEAL_ENTRY_IN or not self.ours(deal.symbol, deal.magic):
            return False
        day = utc_day(deal.time)
        if not self._store.record_deal(deal.ticket, deal.symbol, day, deal.net):
            return False
        self._floating.pop(deal.position_id, None)
        self._vanished.pop(deal.position_id, None)
        if day == self.day:
            self._realised += deal.net
        return True

    # ------------------------------------------------------------------ figures

    def pnl(self, measure: Measure) -> float | None:
        """The day's P&L on ``measure``; None while the start balance (or, for "account", the equity) is unknown."""
        anchors = self.anchors
        if anchors is None or anchors.start_balance is None or anchors.start_balance <= 0:
            return None
        if measure == "ours":
            return self._realised + sum(self._floating.values()) + sum(self._vanished.values())
        return None if self.account is None else self.account.equity - anchors.start_balance

    def figures(self, measure: Measure) -> DayFigures | None:
        pnl = self.pnl(measure)
        anchors = self.anchors
        if pnl is None or anchors is None or anchors.start_balance is None:
            return None
        peak = anchors.peak_ours_pnl if measure == "ours" else anchors.peak_account_pnl
        return DayFigures(anchors.start_balance, pnl, max(peak, pnl, 0.0))

    def update_peaks(self) -> None:
        """Raise the stored peaks to the current P&L (written only when one rises)."""
        anchors = self.anchors
        if anchors is None:
            return
        ours, account = self.pnl("ours"), self.pnl("account")
        raised = replace(
            anchors,
            peak_ours_pnl=max(anchors.peak_ours_pnl, ours or 0.0),
            peak_account_pnl=max(anchors.peak_account_pnl, account or 0.0),
            peak_equity=max(anchors.peak_equity or 0.0, self.account.equity) if self.account else anchors.peak_equity,
        )
        if raised != anchors:
            self.anchors = raised
            self._store.save_day(raised)

    def result(self) -> tuple[float, float] | None:
        """(P&L, return) of the day on the headline measure, or None while unknown."""
        figures = self.figures(self.headline)
        return None if figures is None else (figures.pnl, figures.ret)

    def announcement(self, ts: float) -> DayStarted | None:
        """The DayStarted still owed for this day, once its start balance is known (then it is owed no more)."""
        anchors = self.anchors
        if anchors is None or anchors.announced or anchors.start_balance is None:
            return None
        self.anchors = replace(anchors, announced=True)
        self._store.save_day(self.anchors)
        return DayStarted(ts=ts, day=anchors.day, start_balance=anchors.start_balance,
                          previous_day=anchors.previous_day, previous_pnl=anchors.previous_pnl,
                          previous_return=anchors.previous_return)
