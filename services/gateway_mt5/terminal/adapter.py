"""TerminalBroker: the ``Broker`` over an object with the MetaTrader5 API (backends mt5 and mt5linux).

One adapter for the MetaTrader5 module, an mt5linux bridge proxy and the tests' fake terminal. It
- logs in with EXNESS_LOGIN/PASSWORD/SERVER (never logged) and checks the terminal is on that account,
  selects every symbol and reads its spec at start-up (nothing about a symbol is hard-coded);
- runs every call on the terminal thread with a hard deadline; opening the session (initialize, which
  can take minutes) runs there too while the gateway keeps serving (``session``);
- treats a None result as a failure of that call, and an IPC error (-10000..-10005), a deadline or a
  broken bridge as a lost link: it reconnects (shutdown, initialize, login, select, specs) with
  exponential backoff, in this process, without losing its bar and deal cursors;
- converts every result to a validated ``shared.messages`` record on the terminal thread, at once;
- holds a lock per terminal and per account in paths.run_dir (a second gateway stops at start-up);
- publishes each closed M1 bar and each exit deal exactly once (``cursors``), back-filling after a gap.
Market time is the latest tick's time, or the clock when it is later (Exness servers run UTC: MT5-FACTS);
market hours come from config, as MT5 has no trading-hours call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import Any, NoReturn, TypeVar

from services.gateway_mt5.broker import BrokerUnavailable, MarketUpdate
from services.gateway_mt5.hours import MarketSchedule
from services.gateway_mt5.terminal import convert
from services.gateway_mt5.terminal.api import Mt5Api
from services.gateway_mt5.terminal.cursors import DealCursor, M1Cursor, closed_bars
from services.gateway_mt5.terminal.guard import CallTimeout, TerminalThread
from services.gateway_mt5.terminal.lock import gateway_locks
from services.gateway_mt5.terminal.session import Session, open_session
from services.gateway_mt5.terminal.settings import Credentials, TerminalSettings
from shared import mt5
from shared.clock import Clock
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

log = logging.getLogger(__name__)
T = TypeVar("T")
DAY = 86_400
LINK_ERRORS = mt5.IPC_ERRORS | {mt5.RES_E_INTERNAL_FAIL, mt5.RES_E_INTERNAL_FAIL_INIT}
NO_IPC = (mt5.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
RECENT_BARS = 3  # position 0 (forming) and two closed bars per poll


class TerminalBroker:
    """The Broker over one MetaTrader 5 terminal. See the module docstring for what it guarantees."""

    def __init__(
        self, settings: TerminalSettings, credentials: Credentials, make_api: Callable[[], Mt5Api], clock: Clock,
    ) -> None:
        """Take the single-instance locks (LockHeld if another gateway has them); does not connect yet."""
        self.backend: str = settings.backend
        self._settings = settings
        self._credentials = credentials
        self._make_api = make_api
        self._clock = clock
        self._schedules = {symbol: MarketSchedule(settings.hours[symbol]) for symbol in settings.symbols}
        self._order = {symbol: index for index, symbol in enumerate(settings.symbols)}
        self._locks = gateway_locks(settings.run_dir, backend=settings.backend, path=settings.path,
                                    host=settings.host, port=settings.port, login=credentials.login,
                                    server=credentials.server)
        self._thread = TerminalThread(f"{settings.backend}-terminal")
        self._api: Mt5Api | None = None
        self._specs: dict[str, SymbolSpec] = {}
        self._cursors = {symbol: M1Cursor(symbol) for symbol in settings.symbols}
        self._deals = DealCursor()
        self._deals_due = 0.0
        self._ticks: dict[str, Tick] = {}
        self._delivered: dict[str, int] = {}
        self._last_error: tuple[int, str] = (mt5.RES_S_OK, "Success")
        self._delay = 0.0
        self._next_attempt = 0.0
        self._opening: Future[Session] | None = None
        self._opening_started = 0.0
        self._why = ""
        self.reconnects = 0

    # ------------------------------------------------------------------ the link

    @property
    def busy(self) -> str | None:
        """An abandoned terminal call that has not returned yet (initialize, order_send...), if any."""
        return self._thread.hanging

    @property
    def connected(self) -> bool:
        """Whether the terminal is initialised and logged in, as far as this adapter knows."""
        return self._api is not None

    def _call(self, what: str, fn: Callable[[], T], deadline: float | None = None) -> T:
        """``fn`` on the terminal thread; a deadline or an exception there is a lost link."""
        try:
            return self._thread.call(fn, deadline or self._settings.call_deadline_s, what)
        except convert.RecordError as exc:
            log.error("%s", exc)
            raise BrokerUnavailable(f"{self.backend}: {exc}") from None
        except CallTimeout as exc:
            self._lost(str(exc))
        except Exception as exc:  # a broken bridge: EOFError, ConnectionError, a remote exception...
            self._lost(f"{what} raised {type(exc).__name__}: {exc}")
        raise AssertionError("unreachable")  # _lost raises

    def _lost(self, why: str) -> None:
        if self._api is not None:
            log.warning("%s link lost: %s", self.backend, why)
        self._api = None
        self._why = why
        raise BrokerUnavailable(f"{self.backend}: {why}")

    def _read(self, what: str, fn: Callable[[Mt5Api], T | None], empty: T | None = None) -> T:
        """A read: ``fn(api)`` converts on the terminal thread; None is a failure (``empty`` if last_error is OK)."""
        api = self._api
        if api is None:
            raise BrokerUnavailable(f"{self.backend}: not connected ({self._why or 'connect() first'})")

        def job() -> tuple[T | None, tuple[int, str]]:
            value = fn(api)
            if value is not None:
                return value, (mt5.RES_S_OK, "Success")
            code, text = api.last_error()
            return None, (int(code), str(text))

        value, (code, text) = self._call(what, job)
        if value is not None:
            return value
        if code == mt5.RES_S_OK and empty is not None:
            return empty
        if code in LINK_ERRORS:
            self._lost(f"{what} failed: last_error ({code}, {text!r})")
        raise BrokerUnavailable(f"{self.backend}: {what} returned None: last_error ({code}, {text!r})")

    def connect(self) -> None:
        """Start, or finish, opening a session; the loop waits at most connect_wait_s for it.

        A new attempt starts at most once per backoff delay (doubling from reconnect_min_s to
        reconnect_max_s after each failure); a session still opening after init_deadline_s is abandoned
        (the terminal thread refuses every call until it returns) and counts as a failure.
        """
        if self._api is not None:
            return
        if self._opening is None:
            if self._clock.monotonic() < self._next_attempt:
                raise BrokerUnavailable(f"{self.backend}: waiting to reconnect (last failure: {self._why})")
            try:
                self._opening = self._thread.submit(self._open, "connect")
            except CallTimeout as exc:
                self._failed(str(exc))
            self._opening_started = self._clock.monotonic()
            wait([self._opening], timeout=self._settings.connect_wait_s)
        opening = self._opening
        if not opening.done():
            if self._clock.monotonic() - self._opening_started < self._settings.init_deadline_s:
                raise BrokerUnavailable(f"{self.backend}: connecting (initialize has not returned yet)")
            self._opening = None
            self._failed(f"initialize did not return within {self._settings.init_deadline_s:g} s")
        self._opening = None
        error = opening.exception()
        if error is not None:
            self._failed(str(error) if isinstance(error, BrokerUnavailable)
                         else f"connecting raised {type(error).__name__}: {error}")
        session = opening.result()
        self._api = session.api
        self._specs.update(session.specs)
        if self._deals.since is None:
            self._deals.since = self._market_now()
        if self._delay:
            self.reconnects += 1
        self._delay = 0.0
        log.info("%s: connected, symbols %s", self.backend, ", ".join(self._settings.symbols))

    def _open(self) -> Session:
        return open_session(self._make_api(), self._settings, self._credentials)

    def _failed(self, why: str) -> NoReturn:
        self._why = why
        self._delay = min(max(self._delay * 2, self._settings.reconnect_min_s), self._settings.reconnect_max_s)
        self._next_attempt = self._clock.monotonic() + self._delay
        log.warning("%s: connection failed (next attempt in %.1f s): %s", self.backend, self._delay, why)
        raise BrokerUnavailable(f"{self.backend}: {why}")

    def shutdown(self) -> None:
        """Close the terminal connection (the market goes on; a later connect() catches up)."""
        api, self._api = self._api, None
        if api is not None:
            try:
                self._thread.call(api.shutdown, self._settings.call_deadline_s, "shutdown")
            except Exception as exc:  # leaving anyway
                log.warning("%s: shutdown failed: %s", self.backend, exc)
        self._why = "shut down"

    def close(self) -> None:
        """Shut down, stop the terminal thread and release the single-instance locks."""
        self.shutdown()
        self._thread.close()
        for lock in self._locks:
            lock.release()

    # ------------------------------------------------------------------ market time and hours

    def _market_now(self) -> float:
        latest = max((tick.time_msc / 1000 for tick in self._ticks.values()), default=0.0)
        return max(self._clock.now(), latest)

    def _closed_by(self, symbol: str, clock_now: float) -> float:
        """How far the symbol's bars are proven closed (see cursors.py)."""
        tick = self._ticks.get(symbol)
        proven = tick.time_msc / 1000 if tick is not None else 0.0
        after_grace = clock_now - self._settings.close_grace_s
        if not self._schedules[symbol].is_open(after_grace):
            proven = max(proven, after_grace)
        return proven

    def symbols(self) -> list[str]:
        """The configured symbols (no terminal call)."""
        return list(self._settings.symbols)

    def market_open(self, symbol: str) -> bool:
        """From the configured hours at the market time (needs no connection)."""
        return self._schedule(symbol).is_open(self._market_now())

    def market_open_at(self, symbol: str, t: float) -> bool:
        """Whether the symbol trades at market time ``t``, by the same configured hours (data-quality gaps)."""
        return self._schedule(symbol).is_open(t)

    def _schedule(self, symbol: str) -> MarketSchedule:
        schedule = self._schedules.get(symbol)
        if schedule is None:
            raise ValueError(f"unknown symbol {symbol!r}; this gateway serves {list(self._settings.symbols)}")
        return schedule

    # ------------------------------------------------------------------ Broker reads

    def symbol_spec(self, symbol: str) -> SymbolSpec:
        """symbol_info(), fresh (the spread moves)."""
        self._schedule(symbol)
        return self._read(f"symbol_info({symbol!r})",
                          lambda a: None if (r := a.symbol_info(symbol)) is None else convert.symbol_spec(r))

    def account(self) -> AccountSnapshot:
        """account_info() at the market time."""
        now = self._market_now()
        return self._read("account_info",
                          lambda a: None if (r := a.account_info()) is None else convert.account(r, now))

    def positions(self, symbol: str | None = None, magic: int | None = None) -> list[PositionData]:
        """positions_get(), oldest ticket first, optionally filtered."""
        def read(api: Mt5Api) -> list[PositionData] | None:
            raw = api.positions_get()
            return None if raw is None else [convert.position(p) for p in raw]

        found: list[PositionData] = self._read("positions_get", read, empty=[])
        return sorted((p for p in found if (symbol is None or p.symbol == symbol)
                       and (magic is None or p.magic == magic)), key=lambda p: p.ticket)

    def deals(self, since: float) -> list[DealClosed]:
        """Exit deals with time >= since, oldest first (history_deals_get)."""
        until = int(self._market_now()) + DAY

        def read(api: Mt5Api) -> list[DealClosed] | None:
            raw = api.history_deals_get(int(since), until)
            return None if raw is None else [d for d in (convert.exit_deal(x) for x in raw) if d is not None]

        found: list[DealClosed] = self._read("history_deals_get", read, empty=[])
        return sorted((d for d in found if d.time >= since), key=lambda d: (d.time, d.ticket))

    def _rates(self, symbol: str, timeframe: Timeframe, what: str, fetch: Callable[[Mt5Api], Any], *,
               quarantine: bool = False) -> list[Bar]:
        """copy_rates_*; ``quarantine``: broken rates come back unvalidated for the gateway's checks (convert.py)."""
        digits = self._specs[symbol].digits if symbol in self._specs else 8
        return self._read(what, lambda a: None if (r := fetch(a)) is None
                          else convert.bars(symbol, timeframe, r, digits, quarantine=quarantine), empty=[])

    def history(self, symbol: str, timeframe: Timeframe, count: int) -> list[Bar]:
        """The last ``count`` closed bars, oldest first (copy_rates_from_pos from position 0, forming one dropped)."""
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self._schedule(symbol)
        self._refresh_tick(symbol)
        frame = mt5.TIMEFRAMES[timeframe]
        recent = self._rates(symbol, timeframe, f"copy_rates_from_pos({symbol!r}, {timeframe})",
                             lambda a: a.copy_rates_from_pos(symbol, frame, 0, count + 1))
        return closed_bars(recent, self._closed_by(symbol, self._clock.now()))[-count:]

    def _refresh_tick(self, symbol: str) -> None:
        """symbol_info_tick(); remembers the quote when it is newer than the last one known."""
        try:
            tick = self._read(f"symbol_info_tick({symbol!r})", lambda a: None if (r := a.symbol_info_tick(symbol))
                              is None else (convert.tick(symbol, r),))[0]
        except BrokerUnavailable:
            if self._api is None:
                raise
            return  # no quote this time (the link is fine)
        last = self._ticks.get(symbol)
        if tick is not None and (last is None or tick.time_msc > last.time_msc):
            self._ticks[symbol] = tick

    # ------------------------------------------------------------------ orders

    def order_send(self, request: TradeRequest) -> TradeResult | None:
        """order_send; None is an unknown outcome with last_error() saying why (a lost link included)."""
        api = self._api
        if api is None:
            self._last_error = NO_IPC
            return None
        payload = convert.request_dict(request)

        def job() -> tuple[TradeResult | None, tuple[int, str]]:
            raw = api.order_send(payload)
            if raw is None:
                code, text = api.last_error()
                return None, (int(code), str(text))
            return convert.trade_result(raw), (mt5.RES_S_OK, "Success")

        try:
            result, self._last_error = self._call("order_send", job)
        except BrokerUnavailable as exc:
            timed_out = self._thread.hanging == "order_send"
            self._last_error = (mt5.RES_E_INTERNAL_FAIL_TIMEOUT if timed_out else mt5.RES_E_INTERNAL_FAIL, str(exc))
            return None
        # A None with an IPC code leaves the link up: the caller's next read (positions, deals) both
        # settles the outcome and shows whether the link is really gone.
        return result

    def last_error(self) -> tuple[int, str]:
        """last_error() of the last order_send (kept: asking the terminal again could block)."""
        return self._last_error

    # ------------------------------------------------------------------ poll

    def poll(self) -> MarketUpdate:
        """New ticks, newly closed M1 bars (back-filled after a gap) and new exit deals.

        A symbol whose call fails without losing the link is skipped this time. When the link is lost
        half-way, what was already taken is returned (the cursors have moved past it, so it must not be
        dropped) and the next poll finds the adapter disconnected.
        """
        if self._api is None:
            raise BrokerUnavailable(f"{self.backend}: not connected ({self._why or 'connect() first'})")
        clock_now = self._clock.now()
        update = MarketUpdate(now=clock_now, horizons={})
        try:
            for symbol in self._settings.symbols:
                self._unless_link_lost(f"{symbol} skipped this poll", self._poll_symbol, symbol, clock_now, update)
            mono = self._clock.monotonic()
            if mono >= self._deals_due and self._deals.since is not None:
                self._deals_due = mono + self._settings.deals_interval_s
                self._unless_link_lost("deals not read this poll", self._poll_deals, update)
        except BrokerUnavailable:
            if not (update.bars or update.ticks):
                raise
        update.bars.sort(key=lambda bar: (bar.time, self._order[bar.symbol]))
        update.now = self._market_now()
        return update

    def _unless_link_lost(self, what: str, step: Callable[..., None], *args: Any) -> None:
        """Run one step of a poll; a failure that leaves the link up only skips it (logged)."""
        try:
            step(*args)
        except BrokerUnavailable as exc:
            if self._api is None:
                raise
            log.warning("%s: %s: %s", self.backend, what, exc)

    def _poll_deals(self, update: MarketUpdate) -> None:
        assert self._deals.since is not None
        update.deals = self._deals.take(self.deals(self._deals.since - self._deals.OVERLAP))

    def _poll_symbol(self, symbol: str, clock_now: float, update: MarketUpdate) -> None:
        self._refresh_tick(symbol)  # BEFORE the rates: see cursors.py
        tick = self._ticks.get(symbol)
        if tick is not None and tick.time_msc > self._delivered.get(symbol, -1):
            self._delivered[symbol] = tick.time_msc
            update.ticks.append(tick)
        closed_by = self._closed_by(symbol, clock_now)
        cursor = self._cursors[symbol]
        assert update.horizons is not None
        if not cursor.due(closed_by):
            update.horizons[symbol] = closed_by
            return
        recent = self._rates(symbol, "M1", f"copy_rates_from_pos({symbol!r}, M1)",
                             lambda a: a.copy_rates_from_pos(symbol, mt5.TIMEFRAME_M1, 0, RECENT_BARS), quarantine=True)

        def fetch_back(count: int) -> list[Bar]:
            return self._rates(symbol, "M1", f"copy_rates_from_pos({symbol!r}, M1, 0, {count})",
                               lambda a: a.copy_rates_from_pos(symbol, mt5.TIMEFRAME_M1, 0, count), quarantine=True)

        fresh, update.horizons[symbol] = cursor.take(recent, closed_by, fetch_back)
        update.bars.extend(fresh)
