"""The simulated account: balance, hedging positions, exit deals, margin, swaps and stop-out.

Money is exact to the cent: a deal's profit is (close - open) * volume * contract_size, signed by the
position's side, computed in decimal from the normalised prices and rounded half away from zero to
cents at deal time, as MT5 rounds money (NormalizeDouble to the account currency's 2 digits).
Commission (per lot per side) is charged on every deal, entry and exit, and hits the balance at once.
Equity = balance + sum over positions of (profit + swap), each rounded to cents as positions() shows.
Margin = sum over positions of volume * contract_size * open price / leverage * margin_rate (fixed at
the open price; opposite positions are NOT netted, which is the conservative reading of hedged margin).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shared import mt5
from shared.messages import DealClosed, PositionData

CENT = Decimal("0.01")
INF = math.inf


def money(value: float | Decimal) -> float:
    """Round an amount to cents, half away from zero (MT5's NormalizeDouble on deal money)."""
    exact = value if isinstance(value, Decimal) else Decimal(repr(value))
    return float(exact.quantize(CENT, rounding=ROUND_HALF_UP))


def profit(side: int, price_open: float, price_close: float, volume: float, contract: float) -> float:
    """Exact P&L in USD of ``volume`` lots from open to close, rounded to the cent (side +1 buy, -1 sell)."""
    diff = Decimal(repr(price_close)) - Decimal(repr(price_open))
    return money(diff * Decimal(repr(volume)) * Decimal(repr(contract)) * side)


@dataclass(slots=True)
class Position:
    """One open position (hedging: any number per symbol and side)."""

    ticket: int
    sym: int
    symbol: str
    side: int
    volume: float
    price_open: float
    sl: float
    tp: float
    magic: int
    comment: str
    time: float
    margin: float
    swap: float = 0.0


@dataclass(slots=True)
class Book:
    """Per-symbol constants and running sums the replay loop reads without touching positions."""

    symbol: str
    digits: int
    point: float
    contract: float
    margin_rate: float
    commission: float
    sl_slip: float
    tp_slip: float
    swap_long: float
    swap_short: float
    swap_triple_weekday: int
    weekend_closed: bool
    positions: list[Position] = field(default_factory=list)
    buy_qty: float = 0.0
    buy_cost: float = 0.0
    sell_qty: float = 0.0
    sell_cost: float = 0.0
    buy_sl: float = -INF
    buy_tp: float = INF
    sell_sl: float = INF
    sell_tp: float = -INF
    last_floating: float = 0.0
    """Floating P&L at the last quote this book saw (for other symbols' stop-out checks)."""

    def floating(self, bid: float, ask: float) -> float:
        """Approximate (unrounded) floating P&L at a quote; for stop-out checks only."""
        return self.buy_qty * bid - self.buy_cost + self.sell_cost - self.sell_qty * ask

    def refresh(self) -> None:
        """Recompute sums and trigger bounds after positions changed."""
        self.buy_qty = self.buy_cost = self.sell_qty = self.sell_cost = 0.0
        self.buy_sl, self.buy_tp, self.sell_sl, self.sell_tp = -INF, INF, INF, -INF
        for pos in self.positions:
            qty = pos.volume * self.contract
            if pos.side > 0:
                self.buy_qty += qty
                self.buy_cost += qty * pos.price_open
                if pos.sl:
                    self.buy_sl = max(self.buy_sl, pos.sl)
                if pos.tp:
                    self.buy_tp = min(self.buy_tp, pos.tp)
            else:
                self.sell_qty += qty
                self.sell_cost += qty * pos.price_open
                if pos.sl:
                    self.sell_sl = min(self.sell_sl, pos.sl)
                if pos.tp:
                    self.sell_tp = max(self.sell_tp, pos.tp)


Quote = Callable[[int], tuple[float, float]]


class Ledger:
    """Positions and money of the one simulated account; every change goes through here."""

    def __init__(self, books: list[Book], balance: float, leverage: int, stop_out_pct: float, quote: Quote):
        self.books = books
        self.balance = round(balance, 2)
        self.leverage = leverage
        self.stop_out_pct = stop_out_pct
        self.quote = quote
        self.positions: dict[int, Position] = {}
        self.exits: list[DealClosed] = []
        self.fresh: list[DealClosed] = []
        self.closed: set[int] = set()
        self.deal_log: list[dict[str, Any]] = []
        """Every deal (entry and exit) since the owner last took them (the simulator's durable history)."""
        self.margin_sum = 0.0
        self.swap_sum = 0.0
        self.ticket = 100_000
        """The last ticket given (orders, deals and positions share one sequence)."""

    def new_ticket(self) -> int:
        """The next order/deal ticket (one sequence, so every ticket is unique)."""
        self.ticket += 1
        return self.ticket

    def margin_needed(self, sym: int, volume: float, price: float) -> float:
        """order_calc_margin: volume * contract * price / leverage * margin_rate, unrounded."""
        book = self.books[sym]
        return volume * book.contract * price / self.leverage * book.margin_rate

    def open(
        self, *, sym: int, side: int, volume: float, price: float, sl: float, tp: float,
        magic: int, comment: str, when: float,
    ) -> tuple[int, int, Position]:
        """Fill an entry deal; returns (deal ticket, order ticket, position). Position ticket = order."""
        book = self.books[sym]
        order = self.new_ticket()
        deal = self.new_ticket()
        pos = Position(
            order, sym, book.symbol, side, volume, price, sl, tp, magic, comment, when,
            self.margin_needed(sym, volume, price),
        )
        self.balance = round(self.balance - money(book.commission * volume), 2)
        self.deal_log.append({
            "ticket": deal, "order": order, "position_id": order, "symbol": book.symbol,
            "side": "buy" if side > 0 else "sell", "entry": mt5.DEAL_ENTRY_IN, "volume": volume, "price": price,
            "commission": 0.0 - money(book.commission * volume), "magic": magic, "comment": comment, "time": when,
        })
        self.positions[order] = pos
        book.positions.append(pos)
        self._changed(sym)
        return deal, order, pos

    def close(
        self, pos: Position, *, volume: float, price: float, when: float, reason: int,
        comment: str, magic: int,
    ) -> DealClosed:
        """Fill an exit deal for ``volume`` of ``pos`` at ``price``; partial when volume < pos.volume."""
        book = self.books[pos.sym]
        full = volume >= pos.volume - 1e-9
        swap = pos.swap if full else money(pos.swap * volume / pos.volume)
        gain = profit(pos.side, pos.price_open, price, volume, book.contract)
        commission = 0.0 - money(book.commission * volume)
        self.balance = round(self.balance + gain + commission + swap, 2)
        order = self.new_ticket()
        ticket = self.new_ticket()
        deal = DealClosed(
            id=f"deal-{ticket}", ts=when, ticket=ticket, order=order, position_id=pos.ticket,
            symbol=pos.symbol, side="sell" if pos.side > 0 else "buy", entry=mt5.DEAL_ENTRY_OUT,
            reason=reason, volume=volume, price=price, profit=gain, commission=commission, swap=swap,
            magic=magic, comment=comment, time=when,
        )
        if full:
            del self.positions[pos.ticket]
            book.positions.remove(pos)
            self.closed.add(pos.ticket)
        else:
            steps = 10 ** 8
            pos.volume = round((round(pos.volume * steps) - round(volume * steps)) / steps, 8)
            pos.swap = round(pos.swap - swap, 2)
            pos.margin = self.margin_needed(pos.sym, pos.volume, pos.price_open)
        self._changed(pos.sym)
        self.exits.append(deal)
        self.fresh.append(deal)
        self.deal_log.append(deal.model_dump())
        return deal

    def set_stops(self, pos: Position, sl: float, tp: float) -> None:
        """TRADE_ACTION_SLTP: replace both levels (0 = none)."""
        pos.sl, pos.tp = sl, tp
        self._changed(pos.sym)

    def refresh(self, sym: int) -> None:
        """Recompute the running sums of ``sym`` after its positions were set from outside (a resume)."""
        self._changed(sym)

    def _changed(self, sym: int) -> None:
        """Refresh the running sums after positions of ``sym`` changed."""
        book = self.books[sym]
        book.refresh()
        book.last_floating = book.floating(*self.quote(sym)) if book.positions else 0.0
        self.margin_sum = sum(p.margin for p in self.positions.values())
        self.swap_sum = sum(p.swap for p in self.positions.values())

    def current(self, pos: Position) -> float:
        """The price a position would close at now: bid for a buy, ask for a sell."""
        bid, ask = self.quote(pos.sym)
        return bid if pos.side > 0 else ask

    def position_profit(self, pos: Position) -> float:
        """Floating P&L of a position at the current quote, exact to the cent."""
        return profit(pos.side, pos.price_open, self.current(pos), pos.volume, self.books[pos.sym].contract)

    def position_data(self, pos: Position) -> PositionData:
        """positions_get() record of one position."""
        return PositionData(
            ticket=pos.ticket, symbol=pos.symbol, side="buy" if pos.side > 0 else "sell",
            volume=pos.volume, price_open=pos.price_open, sl=pos.sl, tp=pos.tp,
            price_current=self.current(pos), profit=self.position_profit(pos), swap=pos.swap,
            magic=pos.magic, comment=pos.comment, time=pos.time,
        )

    def totals(self) -> tuple[float, float, float]:
        """(floating profit, swap, margin) of all positions, in cents as MT5 shows them."""
        floating = sum(self.position_profit(p) for p in self.positions.values())
        swap = sum(p.swap for p in self.positions.values())
        margin = money(sum(p.margin for p in self.positions.values()))
        return round(floating, 2), round(swap, 2), margin

    # ------------------------------------------------------------------ replay-time events

    def on_bar(  # noqa: PLR0917 - the hot path: positional arguments are measurably cheaper
        self, sym: int, start: int, o: float, h: float, lo: float, c: float, spread: float,
    ) -> None:
        """Walk one bar's tick path (open, nearer extreme, other extreme, close) for SL/TP and stop-out.

        Between path points the price is taken to move continuously, so a level crossed inside the
        bar fills AT the level; a level already crossed at the open (a gap from the previous close)
        fills at the open. Either way the fill is then made worse by the configured slippage.
        Called only for a symbol with open positions; cheap when no level is within the bar's range.
        """
        book = self.books[sym]
        eps = book.point * 0.5
        hit = (
            lo - eps <= book.buy_sl or h + eps >= book.buy_tp
            or h + spread + eps >= book.sell_sl or lo + spread - eps <= book.sell_tp
        )
        # Without a fill the margin level moves with the price alone, so its worst case over the bar
        # decides; after a fill (commission, slippage) every remaining point is checked exactly.
        others = self.balance + self.swap_sum
        for index, other in enumerate(self.books):
            if index != sym:
                others += other.last_floating
        threshold = self.margin_sum * self.stop_out_pct / 100.0
        worst = others + min(book.floating(lo, lo + spread), book.floating(h, h + spread))
        stop_out = worst <= threshold + 1e-9
        if hit or stop_out:
            self._walk(book, sym, start, o, h, lo, c, spread, hit, stop_out)
        if book.positions:
            book.last_floating = book.floating(c, c + spread)

    def _walk(  # noqa: PLR0917 - see on_bar
        self, book: Book, sym: int, start: int, o: float, h: float, lo: float, c: float, spread: float,
        hit: bool, stop_out: bool,
    ) -> None:
        digits = book.digits
        high_first = h - o < o - lo or (h - o == o - lo and c <= o)
        path = (o, h, lo, c) if high_first else (o, lo, h, c)
        for k, offset in enumerate(PATH_OFFSETS):
            bid = path[k]
            ask = round(bid + spread, digits)
            when = float(start + offset)
            if hit:
                count = len(self.positions)
                for pos in tuple(book.positions):
                    self._check_levels(book, pos, bid=bid, ask=ask, gap=k == 0, when=when)
                stop_out = stop_out or len(self.positions) != count
            if stop_out:
                self._stop_out(sym, bid, ask, when)

    def _check_levels(
        self, book: Book, pos: Position, *, bid: float, ask: float, gap: bool, when: float,
    ) -> None:
        if pos.side > 0:
            if pos.sl and bid <= pos.sl:
                level, reason, fill = pos.sl, mt5.DEAL_REASON_SL, (bid if gap else pos.sl) - book.sl_slip
            elif pos.tp and bid >= pos.tp:
                level, reason, fill = pos.tp, mt5.DEAL_REASON_TP, (bid if gap else pos.tp) - book.tp_slip
            else:
                return
        elif pos.sl and ask >= pos.sl:
            level, reason, fill = pos.sl, mt5.DEAL_REASON_SL, (ask if gap else pos.sl) + book.sl_slip
        elif pos.tp and ask <= pos.tp:
            level, reason, fill = pos.tp, mt5.DEAL_REASON_TP, (ask if gap else pos.tp) + book.tp_slip
        else:
            return
        fill = max(round(fill, book.digits), book.point)
        tag = "sl" if reason == mt5.DEAL_REASON_SL else "tp"
        self.close(pos, volume=pos.volume, price=fill, when=when, reason=reason,
                   comment=f"[{tag} {level:.{book.digits}f}]", magic=pos.magic)

    def _equity_at(self, sym: int, bid: float, ask: float) -> float:
        """Unrounded equity with ``sym`` at (bid, ask) and every other symbol at its current quote."""
        equity = self.balance + self.swap_sum
        for index, book in enumerate(self.books):
            if book.positions:
                equity += book.floating(bid, ask) if index == sym else book.floating(*self.quote(index))
        return equity

    def _stop_out(self, sym: int, bid: float, ask: float, when: float) -> None:
        """Close the most losing position while margin level <= stop_out_pct (reason 6, at market)."""
        while self.positions:
            equity = self._equity_at(sym, bid, ask)
            if equity > self.margin_sum * self.stop_out_pct / 100.0:
                return
            level = equity / self.margin_sum * 100.0 if self.margin_sum else 0.0

            def price_of(p: Position) -> float:
                return (bid if p.side > 0 else ask) if p.sym == sym else self.current(p)

            def loss(p: Position) -> float:
                return (price_of(p) - p.price_open) * p.side * p.volume * self.books[p.sym].contract

            worst = min(self.positions.values(), key=loss)
            self.close(worst, volume=worst.volume, price=price_of(worst), when=when, reason=mt5.DEAL_REASON_SO,
                       comment=f"[so {level:.2f}%]", magic=worst.magic)

    def rollover(self, weekday_ended: int) -> None:
        """Charge one night's swap on every open position at 00:00 UTC (Exness server midnight)."""
        for pos in self.positions.values():
            book = self.books[pos.sym]
            rate = book.swap_long if pos.side > 0 else book.swap_short
            if not rate or (book.weekend_closed and weekday_ended >= 5):
                continue
            nights = 3 if weekday_ended == book.swap_triple_weekday else 1
            pos.swap = round(pos.swap + money(rate * pos.volume * nights), 2)
        self.swap_sum = sum(p.swap for p in self.positions.values())


PATH_OFFSETS = (0, 15, 30, 59)
"""Seconds after the bar's open at which the four path ticks (open, extreme, extreme, close) occur."""
