"""A fake MetaTrader5 module: our test double of the package's API, over the simulated broker.

It is the edge the tests may fake (the terminal), so the real adapter (``TerminalBroker``) is tested
against it. Every constant of the real package is an attribute with its real value
(``fake_mt5_constants``); the calls take the package's arguments and return its records
(``fake_mt5_records``) or, like the package, None / False with the reason in ``last_error()``. The
market underneath is a ``SimBroker``: prices, fills, SL/TP hits, retcodes and the sim's own faults are
real, and ``advance_to`` moves it. As a live terminal, position 0 of copy_rates_from_pos is the bar of the
latest tick, still forming.

Injected faults: ``fail_next`` (the next N calls return None/False with a last_error, e.g. -10005 IPC
timeout), ``disconnect``/``reconnect`` (no IPC at all, the market runs on; the sim's configured
disconnect windows act the same), ``hang_initialize`` / ``hang_order_send`` (the call blocks until
released) and ``raise_next`` (calls raise, as a broken mt5linux bridge does).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.gateway_mt5.aggregate import aggregate_bars
from services.gateway_mt5.broker import BrokerUnavailable
from services.gateway_mt5.sim.broker import SimBroker
from shared.messages import TIMEFRAME_MINUTES, Bar, Timeframe, TradeRequest
from tests.fakes import fake_mt5_constants, fake_mt5_records
from tests.fakes.fake_mt5_records import (
    AccountInfo,
    OrderSendResult,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeDeal,
    TradePosition,
)

OK = (1, "Success")
NO_IPC = (-10004, "No IPC connection")
INIT_FAILED = (-10003, "IPC initialize failed, MetaTrader 5 x64 not found")
AUTH_FAILED = (-6, "Terminal: Authorization failed")
CALL_FAILED = (-1, "Terminal: Call failed")
REQUEST_KEYS = frozenset({"action", "magic", "order", "symbol", "volume", "price", "stoplimit", "sl", "tp", "deviation",
                          "type", "type_filling", "type_time", "expiration", "comment", "position", "position_by"})
TIMEFRAMES: dict[int, Timeframe] = {1: "M1", 5: "M5", 15: "M15"}
HANG_LIMIT_S = 30.0  # a hung initialize gives up by itself, so a failing test cannot hang the suite


def _epoch(value: int | float | datetime) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


class FakeMetaTrader5:
    """The MetaTrader5 API over a simulated market, with fault injection. One terminal, one account."""

    def __init__(self, sim: SimBroker, *, login: int = 5550001, password: str = "fake-password",
                 server: str = "Exness-MT5Trial") -> None:
        self.__version__ = fake_mt5_constants.PACKAGE_VERSION
        self.sim = sim
        sim.connect()
        self.login_id, self.server = login, server
        self._password = password
        self.account_login = login
        """What account_info() reports: set it to another number to fake a terminal on another account."""
        self.trade_allowed = True
        self.calls: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._initialized = False
        self._selected: set[str] = set()
        self._error: tuple[int, str] = OK
        self._failures: list[tuple[frozenset[str] | None, tuple[int, str]]] = []
        self._raises: list[BaseException] = []
        self._unreachable = False
        self._hang: threading.Event | None = None
        self._hang_send: threading.Event | None = None
        self._deals: list[TradeDeal] = [fake_mt5_records.balance_deal(1, sim.now - 86_400, 1000.0)]

    def __getattr__(self, name: str) -> Any:
        """The package's constants (TRADE_ACTION_DEAL, RES_E_INTERNAL_FAIL_TIMEOUT, ...), real values."""
        if name.isupper() and hasattr(fake_mt5_constants, name):
            return getattr(fake_mt5_constants, name)
        raise AttributeError(f"module 'MetaTrader5' has no attribute {name!r}")

    # ------------------------------------------------------------------ fault injection and market

    def advance_to(self, t: float) -> None:
        """Move the market to time ``t`` (it moves on through any outage)."""
        # Around a disconnect window configured in the sim, advance_to stops at its start and raises
        # inside it, but the market runs on: a second call gets past it.
        with self._lock:
            for _ in range(3):
                with contextlib.suppress(BrokerUnavailable):
                    self.sim.advance_to(t)
                if self.sim.now >= t:
                    return

    def fail_next(self, count: int, error: tuple[int, str] = (-10005, "IPC timeout"),
                  calls: set[str] | None = None) -> None:
        """The next ``count`` calls (of the names in ``calls``, or any) fail with ``error``."""
        names = None if calls is None else frozenset(calls)
        self._failures.extend([(names, error)] * count)

    def raise_next(self, count: int, exc: BaseException) -> None:
        """The next ``count`` calls raise ``exc`` (a broken bridge)."""
        self._raises.extend([exc] * count)

    def disconnect(self) -> None:
        """The terminal becomes unreachable: every call fails with -10004 until ``reconnect``."""
        self._unreachable = True
        self._initialized = False

    def reconnect(self) -> None:
        """The terminal is reachable again; the client must initialize() again."""
        self._unreachable = False

    def hang_initialize(self) -> threading.Event:
        """initialize() blocks until the returned event is set (or HANG_LIMIT_S passes)."""
        self._hang = threading.Event()
        return self._hang

    def hang_order_send(self) -> threading.Event:
        """The next order_send blocks until the event is set, then executes: a fill the client never hears of."""
        self._hang_send = threading.Event()
        return self._hang_send

    def _reachable(self) -> bool:
        if self._unreachable:
            return False
        try:
            self.sim.symbols()  # raises inside a disconnect window configured in the sim
        except BrokerUnavailable:
            return False
        return True

    def _enter(self, name: str) -> bool:
        """Count the call and decide whether it may proceed; when not, last_error says why."""
        self.calls[name] += 1
        if self._raises:
            raise self._raises.pop(0)
        if not self._reachable() or not self._initialized:
            self._error = NO_IPC
            return False
        for index, (names, error) in enumerate(self._failures):
            if names is None or name in names:
                del self._failures[index]
                self._error = error
                return False
        self._error = OK
        return True

    def _fail(self, error: tuple[int, str]) -> None:
        self._error = error

    # ------------------------------------------------------------------ connection

    def initialize(self, path: str = "", *, login: int = 0, password: str = "", server: str = "",
                   timeout: int = 60_000, portable: bool = False) -> bool:
        """Connect (and log in when credentials are given)."""
        self.calls["initialize"] += 1
        hang, self._hang = self._hang, None
        if hang is not None:
            hang.wait(HANG_LIMIT_S)
        with self._lock:
            if self._raises:
                raise self._raises.pop(0)
            if not self._reachable():
                self._error = INIT_FAILED
                return False
            for index, (names, error) in enumerate(self._failures):
                if names is None or "initialize" in names:
                    del self._failures[index]
                    self._error = error
                    return False
            if login and (login, password, server) != (self.login_id, self._password, self.server):
                self._error = AUTH_FAILED
                return False
            self._initialized = True
            self._error = OK
            return True

    def shutdown(self) -> None:
        """Close the IPC link (Market Watch keeps its symbols)."""
        self.calls["shutdown"] += 1
        self._initialized = False

    def last_error(self) -> tuple[int, str]:
        """(code, description) of the last call."""
        return self._error

    def version(self) -> tuple[int, int, str] | None:
        with self._lock:
            return (500, 5120, "20 Jun 2025") if self._enter("version") else None

    def terminal_info(self) -> TerminalInfo | None:
        with self._lock:
            if not self._enter("terminal_info"):
                return None
            return TerminalInfo(
                community_account=False, community_connection=False, connected=True, dlls_allowed=False,
                trade_allowed=self.trade_allowed, tradeapi_disabled=False, email_enabled=False, ftp_enabled=False,
                notifications_enabled=False, mqid=False, build=5120, maxbars=100_000, codepage=0, ping_last=40_000,
                community_balance=0.0, retransmission=0.0, company="Fake Broker", name="MetaTrader 5",
                language="English", path="C:/fake", data_path="C:/fake", commondata_path="C:/fake",
            )

    def account_info(self) -> AccountInfo | None:
        with self._lock:
            if not self._enter("account_info"):
                return None
            a = self.sim.account()
            return AccountInfo(
                login=self.account_login, trade_mode=0, leverage=a.leverage, limit_orders=1024, margin_so_mode=0,
                trade_allowed=True, trade_expert=True, margin_mode=2, currency_digits=2, fifo_close=False,
                balance=a.balance, credit=0.0, profit=a.profit, equity=a.equity, margin=a.margin,
                margin_free=a.margin_free, margin_level=a.margin_level, margin_so_call=60.0, margin_so_so=0.0,
                margin_initial=0.0, margin_maintenance=0.0, assets=0.0, liabilities=0.0, commission_blocked=0.0,
                name="Fake Trader", server=self.server, currency=a.currency, company="Fake Broker",
            )

    # ------------------------------------------------------------------ symbols and quotes

    def _known(self, symbol: str) -> bool:
        if symbol in self.sim.symbols():
            return True
        self._fail(CALL_FAILED)
        return False

    def symbol_select(self, symbol: str, enable: bool = True) -> bool:
        with self._lock:
            if not self._enter("symbol_select") or not self._known(symbol):
                return False
            (self._selected.add if enable else self._selected.discard)(symbol)
            return True

    def symbol_info(self, symbol: str) -> SymbolInfo | None:
        with self._lock:
            if not self._enter("symbol_info") or not self._known(symbol):
                return None
            bid, ask, when = fake_mt5_records.quote(self.sim, symbol)
            return fake_mt5_records.symbol_info(self.sim.symbol_spec(symbol), bid, ask, when)

    def _watched(self, symbol: str) -> bool:
        if self._known(symbol) and symbol in self._selected:
            return True
        self._fail(CALL_FAILED)
        return False

    def symbol_info_tick(self, symbol: str) -> Tick | None:
        with self._lock:
            if not self._enter("symbol_info_tick") or not self._watched(symbol):
                return None
            forming = self.sim.forming(symbol)
            if forming is not None:  # the first tick of the minute in progress
                spec = self.sim.symbol_spec(symbol)
                ask = round(forming.open + forming.spread * spec.point, spec.digits)
                return Tick(forming.time, forming.open, ask, 0.0, 1, forming.time * 1000, 6, 0.0)
            tick = self.sim.tick(symbol)
            if tick is None:
                return Tick(0, 0.0, 0.0, 0.0, 0, 0, 0, 0.0)
            return Tick(tick.time_msc // 1000, tick.bid, tick.ask, 0.0, 1, tick.time_msc, 6, 0.0)

    def _series(self, symbol: str, timeframe: Timeframe, windows: int) -> list[Bar]:
        """The last ``windows`` closed bars and, last, the one of the latest tick (position 0)."""
        forming = self.sim.forming(symbol)
        if timeframe == "M1":
            closed = self.sim.history(symbol, "M1", windows)
            return closed + ([forming] if forming else [])
        closed = self.sim.history(symbol, timeframe, windows)
        end = closed[-1].close_time if closed else 0
        tail = [b for b in self.sim.history(symbol, "M1", TIMEFRAME_MINUTES[timeframe]) if b.time >= end]
        tail += [forming] if forming else []
        return closed + aggregate_bars(tail, timeframe)

    def copy_rates_from_pos(self, symbol: str, timeframe: int, start_pos: int, count: int) -> Any:
        with self._lock:
            if not self._enter("copy_rates_from_pos") or not self._watched(symbol):
                return None
            if timeframe not in TIMEFRAMES or start_pos < 0 or count < 1:
                self._fail((-2, "Terminal: Invalid params"))
                return None
            series = self._series(symbol, TIMEFRAMES[timeframe], start_pos + count)
            end = len(series) - start_pos
            return fake_mt5_records.rates(series[max(0, end - count):max(0, end)])

    def copy_rates_range(self, symbol: str, timeframe: int, date_from: int | datetime,
                         date_to: int | datetime) -> Any:
        with self._lock:
            if not self._enter("copy_rates_range") or not self._watched(symbol):
                return None
            if timeframe not in TIMEFRAMES:
                self._fail((-2, "Terminal: Invalid params"))
                return None
            first, last = _epoch(date_from), _epoch(date_to)
            size = TIMEFRAME_MINUTES[TIMEFRAMES[timeframe]] * 60
            windows = max(1, int((self.sim.now - first) // size) + 2)
            series = self._series(symbol, TIMEFRAMES[timeframe], windows)
            return fake_mt5_records.rates([bar for bar in series if first <= bar.time <= last])

    # ------------------------------------------------------------------ trading

    def positions_get(self, *, symbol: str | None = None, group: str | None = None,
                      ticket: int | None = None) -> tuple[TradePosition, ...] | None:
        with self._lock:
            if not self._enter("positions_get"):
                return None
            return tuple(
                fake_mt5_records.position(p) for p in self.sim.positions(symbol)
                if ticket is None or p.ticket == ticket
            )

    def history_deals_get(self, date_from: int | datetime, date_to: int | datetime, *, group: str | None = None,
                          position: int | None = None) -> tuple[TradeDeal, ...] | None:
        with self._lock:
            if not self._enter("history_deals_get"):
                return None
            first, last = _epoch(date_from), _epoch(date_to)
            deals = self._deals + [fake_mt5_records.exit_deal(d) for d in self.sim.deals(0)]
            return tuple(sorted(
                (d for d in deals if first <= d.time <= last and (position is None or d.position_id == position)),
                key=lambda d: (d.time, d.ticket),
            ))

    def order_send(self, request: Mapping[str, Any]) -> OrderSendResult | None:
        hang, self._hang_send = self._hang_send, None
        if hang is not None:
            hang.wait(HANG_LIMIT_S)
        with self._lock:
            if not self._enter("order_send"):
                return None
            unknown = set(request) - REQUEST_KEYS
            if unknown:
                self._fail((-2, "Invalid arguments"))
                return None
            fields = {k: v for k, v in request.items() if k in TradeRequest.model_fields}
            try:
                parsed = TradeRequest(**fields)
            except ValidationError as exc:
                self._fail((-2, f'Invalid "{exc.errors()[0]["loc"][0]}" argument'))
                return None
            result = self.sim.order_send(parsed)
            if result is None:
                self._fail(self.sim.last_error())
                return None
            if result.retcode == 10009 and parsed.action == self.TRADE_ACTION_DEAL and not parsed.position:
                self._deals.append(fake_mt5_records.entry_deal(parsed, result, self.sim.now))
            return fake_mt5_records.order_result(result, parsed)
