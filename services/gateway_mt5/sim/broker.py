"""SimBroker: the embedded, MT5-faithful broker that replays real M1 history (backend "sim").

Everything it reports is in MARKET time. The injected clock only paces the replay: at ``speed`` s the
market time is ``start + (clock.monotonic() - first connect) * s``; at speed 0 each poll replays up to
``max_bars_per_poll`` M1 bars. Symbols are merged on one clock: bars are replayed in order of close
time, then of the symbol's place in the config.

Each M1 bar is walked as a tick path open -> nearer extreme -> other extreme -> close (see
``ledger.Ledger.on_bar``; ties go low first on an up bar, high first otherwise) at 0/15/30/59 s into
the bar, bid = path price, ask = bid + spread * point. The path is only walked for a symbol with open
positions; otherwise the quote is just the bar's close. A poll returns the bars it closed, the LATEST
tick per symbol (the close tick of its last bar; intermediate path ticks stay inside) and the exit
deals produced.

Faults: during an IPC disconnect window every call raises BrokerUnavailable (order_send returns None
with last_error -10004) while the market runs on; what a poll replays then is handed over, in order,
by the first poll after the window, as the gateway's catch-up would. During a stale window a symbol's
bars and ticks are held back (history stops at the window start) and released when it ends.

Persistence (optional, off without ``state_path``): what a real trade server keeps across a terminal
restart (market time, account, positions, deals, tickets, fault RNG) is saved to SQLite after every
order_send and every ``save_every_bars`` replayed bars (persist.py); a new SimBroker on the same file
resumes there, and its wall-clock pacing starts again from the saved market time.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from services.gateway_mt5.aggregate import bar_id
from services.gateway_mt5.broker import BrokerUnavailable, MarketUpdate
from services.gateway_mt5.sim.config import SimConfig, epoch
from services.gateway_mt5.sim.faults import FaultInjector
from services.gateway_mt5.sim.feed import Feed, int_column
from services.gateway_mt5.sim.history import load_m1
from services.gateway_mt5.sim.ledger import Book, Ledger, Position
from services.gateway_mt5.sim.orders import OrderDesk
from services.gateway_mt5.sim.persist import SimStore
from shared.messages import (
    AccountSnapshot,
    Bar,
    DealClosed,
    PositionData,
    SymbolSpec,
    Tick,
    Timeframe,
    TradeRequest,
    TradeResult,
)

DAY = 86_400
# A position is saved as the list of its fields (all scalars): a shallow read, because dataclasses.astuple
# deep-copies every field and made each save cost ~50 us per open position, in every order's round trip.
_POSITION_FIELDS = tuple(field.name for field in dataclasses.fields(Position))
_set = object.__setattr__


class PacingClock(Protocol):
    """Wall time in seconds, used only to pace the replay (a fake with a settable value in tests)."""

    def monotonic(self) -> float: ...


class SimBroker:
    """The simulated MetaTrader 5 terminal + trade server behind the ``Broker`` interface."""

    backend = "sim"

    def __init__(
        self, config: SimConfig, clock: PacingClock, data_dir: Path | None = None, *,
        state_path: Path | None = None, save_every_bars: int = 20,
    ) -> None:
        """Load every symbol's history (relative paths from ``data_dir``, default ./data); HistoryError.

        With ``state_path`` the trade server's state is kept there and resumed from it (SimStateError when
        it was saved under another configuration)."""
        self._config = config
        self._clock = clock
        base = data_dir if data_dir is not None else Path("data")
        self._feeds: list[Feed] = []
        for index, (name, sym) in enumerate(config.symbols.items()):
            path = sym.data if sym.data.is_absolute() else base / sym.data
            self._feeds.append(Feed(index, name, sym, load_m1(path, sym.format)))
        self._by_name = {feed.name: feed for feed in self._feeds}
        closes = np.concatenate([feed.m1.time + 60 for feed in self._feeds])
        symbols = np.concatenate([np.full(len(feed.t), feed.index) for feed in self._feeds])
        rows = np.concatenate([np.arange(len(feed.t)) for feed in self._feeds])
        order = np.lexsort((symbols, closes))
        self._ev_close = int_column(closes[order])
        self._ev_sym = int_column(symbols[order])
        self._ev_row = int_column(rows[order])
        first = min(feed.t[0] for feed in self._feeds)
        self.start = epoch(config.start) if config.start else float(first + config.warmup_minutes * 60)
        self._now = self.start
        self._cursor = int(np.searchsorted(closes[order], self.start, side="right"))
        for feed in self._feeds:
            feed.cursor = feed.position_at(self.start)
        self._next_rollover = (math.floor(self.start / DAY) + 1) * DAY
        books = [self._book(feed) for feed in self._feeds]
        self._ledger = Ledger(books, config.initial_balance, config.leverage, config.stop_out_level_pct,
                              lambda index: self._feeds[index].quote())
        self._faults = FaultInjector(config.faults)
        self._desk = OrderDesk(self._feeds, self._ledger, self._faults)
        self._connected = False
        self._mono0: float | None = None
        self._pending_bars: list[Bar] = []
        self._pending_deals: list[DealClosed] = []
        self._store: SimStore | None = None
        self._save_every = save_every_bars
        self._saved_cursor = self._cursor
        self.resumed = False
        """True when this broker resumed a saved trade server instead of opening a new account."""
        if state_path is not None:
            self._store = SimStore(state_path, config)
            state = self._store.load()
            if state is not None:
                self._restore(state)
                self.resumed = True

    @staticmethod
    def _book(feed: Feed) -> Book:
        cfg = feed.config
        return Book(
            symbol=feed.name, digits=feed.digits, point=feed.point, contract=cfg.spec.trade_contract_size,
            margin_rate=cfg.spec.margin_rate, commission=cfg.commission_per_lot,
            sl_slip=cfg.sl_slippage_points * feed.point, tp_slip=cfg.tp_slippage_points * feed.point,
            swap_long=cfg.swap_long_per_lot, swap_short=cfg.swap_short_per_lot,
            swap_triple_weekday=cfg.swap_triple_weekday, weekend_closed=feed.schedule.weekend_closed,
        )

    # ------------------------------------------------------------------ state

    @property
    def now(self) -> float:
        """The market time reached (epoch seconds)."""
        return self._now

    @property
    def finished(self) -> bool:
        """True once every bar of every symbol has been replayed."""
        return self._cursor >= len(self._ev_close)

    def _link(self) -> None:
        """Raise BrokerUnavailable unless the terminal is reachable now."""
        if not self._connected:
            raise BrokerUnavailable("sim broker not connected: call connect()")
        if self._faults.disconnected(self._now):
            raise BrokerUnavailable("sim: IPC disconnected (injected fault, last_error -10004)")

    def _feed(self, symbol: str) -> Feed:
        feed = self._by_name.get(symbol)
        if feed is None:
            raise ValueError(f"unknown symbol {symbol!r}; the sim replays {sorted(self._by_name)}")
        return feed

    def _visible(self, feed: Feed) -> float:
        since = self._faults.stale_since(feed.name, self._now) if self._faults.has_stale else None
        return self._now if since is None else since

    # ------------------------------------------------------------------ Broker interface

    def connect(self) -> None:
        """initialize + login; the replay clock starts at the first successful connect.

        Inside a disconnect window each attempt first lets the market run on as far as a poll would
        (what it replays is handed over by the first poll after the window), so a gateway retrying
        its connection sees the window end, as it would with a real terminal.
        """
        if self._mono0 is not None and self._faults.disconnected(self._now):
            self._run_unreachable()
        if self._faults.disconnected(self._now):
            raise BrokerUnavailable("sim: IPC disconnected (injected fault): terminal not reachable")
        self._connected = True
        if self._mono0 is None:
            self._mono0 = self._clock.monotonic()

    def _run_unreachable(self) -> None:
        try:
            update = self._step()
        except BrokerUnavailable:
            return  # still inside the window: the replayed bars and deals are pending
        self._pending_bars, self._pending_deals = update.bars, update.deals
        for tick in update.ticks:  # deliver the latest quotes again with the first poll
            self._by_name[tick.symbol].delivered_msc = -1

    def shutdown(self) -> None:
        """Disconnect; the market keeps running and a later connect() catches up."""
        self._connected = False
        if self._store is not None:
            self._save()

    def symbols(self) -> list[str]:
        """The replayed symbols, in config order."""
        self._link()
        return [feed.name for feed in self._feeds]

    def symbol_spec(self, symbol: str) -> SymbolSpec:
        """symbol_info() with the current spread."""
        self._link()
        return self._feed(symbol).symbol_spec()

    def market_open(self, symbol: str) -> bool:
        """Whether the symbol trades now, from its configured hours (needs no connection)."""
        return self._feed(symbol).schedule.is_open(self._now)

    def tick(self, symbol: str) -> Tick | None:
        """symbol_info_tick(): the server's current quote (even while the feed is stale)."""
        self._link()
        return self._feed(symbol).tick()

    def forming(self, symbol: str) -> Bar | None:
        """The M1 bar in progress at the market time as a live terminal shows it after its first tick.

        Open = high = low = close = the bar's open, one tick: what copy_rates_from_pos(.., 0, ..) returns
        as position 0 a moment into a minute. None between bars, past the data or while the feed is
        stale. The fake MetaTrader5 of the tests uses it to show the adapter a real forming bar.
        """
        self._link()
        feed = self._feed(symbol)
        i = feed.cursor + 1
        if i >= len(feed.t) or not feed.t[i] <= self._now < feed.t[i] + 60 or self._visible(feed) < self._now:
            return None
        t = feed.t[i]
        return Bar(id=bar_id(symbol, "M1", t), ts=float(t + 60), symbol=symbol, timeframe="M1", time=t,
                   open=feed.o[i], high=feed.o[i], low=feed.o[i], close=feed.o[i], tick_volume=1, spread=feed.s[i])

    def account(self) -> AccountSnapshot:
        """account_info(): equity = balance + sum of position profit and swap, at this instant."""
        self._link()
        ledger = self._ledger
        floating, swap, margin = ledger.totals()
        equity = round(ledger.balance + floating + swap, 2)
        level = round(equity / margin * 100.0, 2) if margin else 0.0
        return AccountSnapshot(
            ts=self._now, login=self._config.login, currency=self._config.currency,
            leverage=self._config.leverage, balance=ledger.balance, equity=equity, margin=margin,
            margin_free=round(equity - margin, 2), margin_level=max(level, 0.0), profit=floating,
        )

    def positions(self, symbol: str | None = None, magic: int | None = None) -> list[PositionData]:
        """positions_get(), oldest ticket first, optionally filtered."""
        self._link()
        if symbol is not None:
            self._feed(symbol)
        return [
            self._ledger.position_data(pos) for pos in self._ledger.positions.values()
            if (symbol is None or pos.symbol == symbol) and (magic is None or pos.magic == magic)
        ]

    def deals(self, since: float) -> list[DealClosed]:
        """Exit deals with time >= since, oldest first."""
        self._link()
        return [deal for deal in self._ledger.exits if deal.time >= since]

    def history(self, symbol: str, timeframe: Timeframe, count: int) -> list[Bar]:
        """The last ``count`` closed bars (M5/M15 aggregated from M1), oldest first."""
        self._link()
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        feed = self._feed(symbol)
        return feed.history(timeframe, count, self._visible(feed))

    def order_send(self, request: TradeRequest) -> TradeResult | None:
        """MT5 order_send; None is an unknown outcome (see last_error())."""
        connected = self._connected and not self._faults.disconnected(self._now)
        result = self._desk.send(request, self._now, connected)
        if self._store is not None:
            self._save()  # before the gateway replies: a fill the executor journals survives a gateway SIGKILL
            self._store.quiet.busy(self._clock.monotonic())
        return result

    def last_error(self) -> tuple[int, str]:
        """MT5 last_error() after the last order_send."""
        return self._desk.last_error

    def poll(self) -> MarketUpdate:
        """Replay up to the paced market time (speed 0: the next max_bars_per_poll bars)."""
        if not self._connected:
            raise BrokerUnavailable("sim broker not connected: call connect()")
        return self._step()

    def _step(self) -> MarketUpdate:
        speed = self._config.speed
        if speed == 0 or self._mono0 is None:
            return self._advance(None, self._config.max_bars_per_poll)
        target = self.start + (self._clock.monotonic() - self._mono0) * speed
        return self._advance(max(target, self._now), None)

    def advance_to(self, t: float) -> MarketUpdate:
        """Replay every bar closing at or before market time ``t`` (tests, lockstep backtest)."""
        if not self._connected:
            raise BrokerUnavailable("sim broker not connected: call connect()")
        return self._advance(max(t, self._now), None)

    # ------------------------------------------------------------------ replay

    def _advance(self, target: float | None, limit: int | None) -> MarketUpdate:
        bound = math.inf if target is None else target
        cut = self._faults.next_disconnect(self._now)
        if cut is not None and cut < bound:
            bound = cut  # stop at a disconnect window so that it is always seen
        bars, last = self._replay(bound, limit)
        if target is not None:
            now = bound
        elif last is not None:
            now = last
        else:  # speed 0: nothing before the next disconnect window (or the data is exhausted)
            now = bound if bound != math.inf else self._now
        self._now = max(now, self._now)
        while self._now >= self._next_rollover:
            self._ledger.rollover(int((self._next_rollover - DAY) // DAY + 3) % 7)
            self._next_rollover += DAY
        deals = self._ledger.fresh
        self._ledger.fresh = []
        if self._faults.disconnected(self._now):
            self._pending_bars.extend(bars)
            self._pending_deals.extend(deals)
            if self._store is not None and (deals or self._cursor - self._saved_cursor >= self._save_every):
                self._save()
            raise BrokerUnavailable("sim: IPC disconnected (injected fault, last_error -10004)")
        if self._pending_bars or self._pending_deals:
            bars = self._pending_bars + bars
            deals = self._pending_deals + deals
            self._pending_bars, self._pending_deals = [], []
        released = False
        ticks: list[Tick] = []
        for feed in self._feeds:
            if self._faults.has_stale and self._faults.stale_since(feed.name, self._now) is not None:
                continue
            if feed.held:
                bars.extend(feed.held)
                feed.held = []
                released = True
            tick = feed.tick()
            if tick is not None and tick.time_msc > feed.delivered_msc:
                feed.delivered_msc = tick.time_msc
                ticks.append(tick)
        if released:
            order = {feed.name: feed.index for feed in self._feeds}
            bars.sort(key=lambda bar: (bar.time, order[bar.symbol]))
        if self._store is not None:
            if deals or self._cursor - self._saved_cursor >= self._save_every:
                self._save()
            if bars or deals:
                self._store.quiet.busy(self._clock.monotonic())
            else:  # a poll that replayed nothing: maybe a quiet moment for the WAL checkpoint
                self._store.quiet.poll(self._clock.monotonic())
        return MarketUpdate(now=self._now, bars=bars, ticks=ticks, deals=deals)

    def _replay(self, bound: float, limit: int | None) -> tuple[list[Bar], int | None]:
        """Replay events closing at or before ``bound`` (at most ``limit``, same-time bars kept together).

        This is the hot loop: plain lists and floats, Bars built without validation (trusted.py).
        """
        ev_close, ev_sym, ev_row = self._ev_close, self._ev_sym, self._ev_row
        total = len(ev_close)
        cur = self._cursor
        end = total if limit is None else min(total, cur + limit)
        while 0 < end < total and end > cur and ev_close[end] == ev_close[end - 1]:
            end += 1
        feeds = self._feeds
        books = self._ledger.books
        ledger = self._ledger
        faults = self._faults
        stale = faults.has_stale
        out: list[Bar] = []
        append = out.append
        fields = set(Bar.model_fields)
        new = Bar.__new__
        last: int | None = None
        while cur < end:
            close = ev_close[cur]
            if close > bound:
                break
            while close > self._next_rollover:
                ledger.rollover(int((self._next_rollover - DAY) // DAY + 3) % 7)
                self._next_rollover += DAY
            s = ev_sym[cur]
            i = ev_row[cur]
            feed = feeds[s]
            t = feed.t[i]
            if books[s].positions:
                ledger.on_bar(s, t, feed.o[i], feed.h[i], feed.lo[i], feed.c[i], feed.s[i] * feed.point)
            feed.cursor = i
            name = feed.name
            bar = new(Bar)
            _set(bar, "__dict__", {
                "v": 1, "id": bar_id(name, "M1", t), "ts": float(close), "type": "bar", "symbol": name,
                "timeframe": "M1", "time": t, "open": feed.o[i], "high": feed.h[i], "low": feed.lo[i],
                "close": feed.c[i], "tick_volume": feed.v[i], "spread": feed.s[i],
            })
            _set(bar, "__pydantic_fields_set__", fields)
            _set(bar, "__pydantic_extra__", None)
            _set(bar, "__pydantic_private__", None)
            since = faults.stale_since(name, close) if stale else None
            if since is not None and close > since:  # a bar closing at the window start is still seen
                feed.held.append(bar)
            else:
                append(bar)
            last = close
            cur += 1
        self._cursor = cur
        return out, last

    # ------------------------------------------------------------------ persistence

    def _save(self) -> None:
        """Commit the trade server's state and the deals since the last save (one transaction)."""
        assert self._store is not None
        ledger = self._ledger
        state: dict[str, Any] = {
            "now": self._now,
            "cursor": self._cursor,
            "next_rollover": self._next_rollover,
            "feeds": [{"cursor": f.cursor, "held": [b.model_dump() for b in f.held]} for f in self._feeds],
            "pending_bars": [b.model_dump() for b in self._pending_bars],
            "pending_deals": [d.model_dump() for d in self._pending_deals],
            "fresh": [d.model_dump() for d in ledger.fresh],
            "balance": ledger.balance,
            "ticket": ledger.ticket,
            "positions": [[getattr(p, name) for name in _POSITION_FIELDS] for p in ledger.positions.values()],
            "rng": self._faults.rng_state(),
            "faults_injected": self._faults.injected,
        }
        rows = [
            (d["ticket"], d["entry"], d["position_id"], d["symbol"], d["comment"], d["magic"], d["time"],
             json.dumps(d, separators=(",", ":")))
            for d in ledger.deal_log
        ]
        self._store.save(state, rows)
        ledger.deal_log.clear()
        self._saved_cursor = self._cursor

    def _restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved state: the market resumes at its saved time, the account as it was."""
        assert self._store is not None
        self.start = self._now = float(state["now"])
        self._cursor = self._saved_cursor = int(state["cursor"])
        self._next_rollover = int(state["next_rollover"])
        for feed, saved in zip(self._feeds, state["feeds"], strict=True):
            feed.cursor = int(saved["cursor"])
            feed.held = [Bar.model_validate(b) for b in saved["held"]]
        self._pending_bars = [Bar.model_validate(b) for b in state["pending_bars"]]
        self._pending_deals = [DealClosed.model_validate(d) for d in state["pending_deals"]]
        ledger = self._ledger
        ledger.fresh = [DealClosed.model_validate(d) for d in state["fresh"]]
        ledger.balance = float(state["balance"])
        ledger.ticket = int(state["ticket"])
        for fields in state["positions"]:
            pos = Position(*fields)
            ledger.positions[pos.ticket] = pos
            ledger.books[pos.sym].positions.append(pos)
        ledger.exits = [DealClosed.model_validate(d) for d in self._store.exits()]
        # A closed position is one with an exit deal that is no longer open (a partial close leaves it open);
        # rebuilt from the deals rather than saved, since the set only grows and every save would re-encode it.
        ledger.closed = {deal.position_id for deal in ledger.exits} - set(ledger.positions)
        for index in range(len(self._feeds)):
            ledger.refresh(index)
        self._faults.set_rng_state(state["rng"])
        self._faults.injected = {str(k): int(v) for k, v in state["faults_injected"].items()}
