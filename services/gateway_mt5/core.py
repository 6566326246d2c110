"""The gateway's core: broker updates in, market data out; requests in, replies out. No ZeroMQ here.

It is the only code that talks to the broker. It publishes closed M1 bars and the M5/M15 bars built
from them (one aggregation for every backend, so the sim and a real terminal publish the same way),
the latest tick per symbol, exit deals, account snapshots and a heartbeat saying per symbol whether
the data is fresh and, if not, why. Only the executor's identity may send broker-mutating requests.

Every M1 rate the broker hands over goes through ``DataQuality.check`` (data_quality.py) before it is
published or folded into M5/M15: a duplicate, an impossible bar or a zero price is dropped and counted,
a gap or a frozen run is published but makes the symbol's heartbeat not ok until the stream recovers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from pydantic import BaseModel

from services.gateway_mt5.aggregate import BarAggregator
from services.gateway_mt5.broker import Broker, BrokerUnavailable
from services.gateway_mt5.data_quality import PUBLISHED, DataQuality, schedule_of
from shared import topics
from shared.clock import Clock
from shared.config import GatewaySection
from shared.messages import (
    AccountReply,
    AccountRequest,
    AccountSnapshot,
    Bar,
    DealsReply,
    DealsRequest,
    ErrorReply,
    GatewayHeartbeat,
    HistoryReply,
    HistoryRequest,
    Message,
    OrderSendReply,
    OrderSendRequest,
    PositionsReply,
    PositionsRequest,
    SymbolHealth,
    SymbolSpecReply,
    SymbolSpecRequest,
    Tick,
)

log = logging.getLogger(__name__)

MUTATING_CALLER = "executor"
Publication = tuple[str, Message]


class GatewayCore:
    """Drives one broker. ``poll`` and ``heartbeat`` produce publications; ``handle_request`` replies."""

    def __init__(self, broker: Broker, settings: GatewaySection, clock: Clock) -> None:
        self.broker = broker
        self.settings = settings
        self.clock = clock
        self.connected = False
        self.market_now = 0.0
        self._last_tick: dict[str, Tick] = {}
        self.quality = DataQuality(schedule_of(broker))
        self._aggregator = BarAggregator(("M5", "M15"), expected=self.quality.expected)
        self._last_bar_time: dict[tuple[str, str], int] = {}
        self._symbols: list[str] = []
        self._connect_error = ""
        self.duplicate_bars = 0
        self.refused_requests = 0

    # ------------------------------------------------------------------ market data

    def connect(self) -> bool:
        """(Re)connect the broker; the same failure is logged once, not at every poll."""
        try:
            self.broker.connect()
        except BrokerUnavailable as exc:
            if str(exc) != self._connect_error:
                log.warning("broker unavailable: %s", exc)
                self._connect_error = str(exc)
            self.connected = False
            return False
        if self._connect_error:
            log.info("broker connected again")
        self._connect_error = ""
        self.connected = True
        return True

    def poll(self) -> list[Publication]:
        """Ask the broker what is new and turn it into publications, bars strictly in order."""
        if not self.connected and not self.connect():
            return []
        try:
            update = self.broker.poll()
        except BrokerUnavailable as exc:
            log.warning("broker poll failed: %s", exc)
            self.connected = False
            return []
        self.market_now = max(self.market_now, update.now)
        out: list[Publication] = []
        for bar in update.bars:
            if not self._admitted(bar):
                continue
            published = self._publish_bar(bar)
            if published:  # a repeated M1 bar must not reach the aggregator either
                out.extend(published)
                out.extend(self._publish_bars(self._aggregator.add(bar)))
        if update.horizons is not None:
            for symbol, horizon in update.horizons.items():
                out.extend(self._publish_bars(self._aggregator.flush_symbol(symbol, horizon)))
        else:
            out.extend(self._publish_bars(self._aggregator.flush(update.now)))
        for tick in update.ticks:
            self._last_tick[tick.symbol] = tick
            out.append((topics.tick(tick.symbol), tick))
        out.extend((topics.DEAL, deal) for deal in update.deals)
        self.quality.log_if_changed(self.market_now)
        return out

    def _admitted(self, bar: Bar) -> bool:
        """The data-quality check of one broker rate: True to publish it (good, after a gap, or frozen)."""
        if bar.timeframe != "M1":
            return True  # brokers hand over M1 only (MarketUpdate); M5/M15 are built here from checked M1
        problem = self.quality.check(bar.symbol, bar.time, (bar.open, bar.high, bar.low, bar.close))
        return problem is None or problem in PUBLISHED

    def _publish_bars(self, bars: Iterable[Bar]) -> list[Publication]:
        out: list[Publication] = []
        for bar in bars:
            out.extend(self._publish_bar(bar))
        return out

    def _publish_bar(self, bar: Bar) -> list[Publication]:
        """A bar is published once: never one older than or equal to the last of its stream."""
        key = (bar.symbol, bar.timeframe)
        if bar.time <= self._last_bar_time.get(key, -1):
            self.duplicate_bars += 1
            return []
        self._last_bar_time[key] = bar.time
        return [(topics.bar(bar.symbol, bar.timeframe), bar)]

    def symbol_health(self, symbol: str) -> SymbolHealth:
        """The first that holds: disconnected, market_closed, replay_ended, no_data, stale, then the data-quality
        problem (gap, duplicate_bar, bad_bar, zero_price, frozen) until the stream has recovered, else ok.

        The first five say the feed as a whole gives nothing to trade on right now; a quality problem says
        what the live feed delivered lately, so it is named once the feed is up, open and ticking. A problem
        seen before a close is still reported after the reopen until clean bars follow it. Risk refuses every
        signal while ok is False (market_closed under its own rule, every other reason under data_stale), so
        the order decides only which word the operator reads."""
        tick = self._last_tick.get(symbol)
        age = None if tick is None else max(0.0, self.market_now - tick.time_msc / 1000)
        if not self.connected:
            return SymbolHealth(ok=False, reason="disconnected", market_open=False, last_tick_age_s=age)
        is_open = self.broker.market_open(symbol)
        if not is_open:
            return SymbolHealth(ok=False, reason="market_closed", market_open=False, last_tick_age_s=age)
        if getattr(self.broker, "finished", False):
            return SymbolHealth(ok=False, reason="replay_ended", market_open=True, last_tick_age_s=age)
        if age is None:
            return SymbolHealth(ok=False, reason="no_data", market_open=True)
        if age > self.settings.stale_after_s:
            return SymbolHealth(ok=False, reason="stale", market_open=True, last_tick_age_s=age)
        ok, reason = self.quality.status(symbol)
        return SymbolHealth(ok=ok, reason=reason, market_open=True, last_tick_age_s=age)

    def heartbeat(self) -> Publication:
        """Per symbol: fresh or not, and why. Works while the broker is unreachable (that is when it matters)."""
        try:
            self._symbols = self.broker.symbols()
        except BrokerUnavailable:
            self.connected = False  # the symbols seen last are still the ones served
        symbols = {symbol: self.symbol_health(symbol) for symbol in self._symbols}
        beat = GatewayHeartbeat(ts=self.market_now, backend=self.broker.backend, connected=self.connected,
                                symbols=symbols, dropped_requests=self.refused_requests)
        return topics.HEARTBEAT, beat

    def account_snapshot(self) -> Publication | None:
        account = self._call(self.broker.account)
        if account is None:
            return None
        return topics.ACCOUNT, account.model_copy(update={"ts": self.market_now})

    # ------------------------------------------------------------------ requests

    def handle_request(self, caller: str, request: BaseModel) -> Message:
        """Answer one request. Broker state changes only for the executor."""
        parent = getattr(request, "id", "?")
        ts = self.market_now
        if isinstance(request, OrderSendRequest):
            if caller != MUTATING_CALLER:
                self.refused_requests += 1
                log.warning("refused order_send from %r: only the executor may change broker state", caller)
                return ErrorReply(ts=ts, parent=parent, code="forbidden",
                                  text="only the executor may send broker-mutating requests")
            return self._order_send(request)
        if not self.connected and not self.connect():
            return ErrorReply(ts=ts, parent=parent, code="broker_unavailable", text="broker not connected")
        try:
            symbol = getattr(request, "symbol", None)
            if symbol is not None and symbol not in self.broker.symbols():
                return ErrorReply(ts=ts, parent=parent, code="unknown_symbol", text=symbol)
            if isinstance(request, HistoryRequest):
                bars = self.broker.history(request.symbol, request.timeframe, request.count)
                return HistoryReply(ts=ts, parent=parent, bars=tuple(bars))
            if isinstance(request, SymbolSpecRequest):
                return SymbolSpecReply(ts=ts, parent=parent, spec=self.broker.symbol_spec(request.symbol))
            if isinstance(request, AccountRequest):
                account = self.broker.account().model_copy(update={"ts": ts})
                return AccountReply(ts=ts, parent=parent, account=account)
            if isinstance(request, DealsRequest):
                deals = [d for d in self.broker.deals(request.since)
                         if (request.symbol is None or d.symbol == request.symbol)
                         and (request.magic is None or d.magic == request.magic)]
                return DealsReply(ts=ts, parent=parent, deals=tuple(deals))
            if isinstance(request, PositionsRequest):
                positions = self.broker.positions(request.symbol, request.magic)
                return PositionsReply(ts=ts, parent=parent, positions=tuple(positions))
        except BrokerUnavailable as exc:
            self.connected = False
            return ErrorReply(ts=ts, parent=parent, code="broker_unavailable", text=str(exc))
        return ErrorReply(ts=ts, parent=parent, code="unsupported",
                          text=f"the gateway does not answer {type(request).__name__}")

    def _order_send(self, request: OrderSendRequest) -> Message:
        try:
            result = self.broker.order_send(request.request)
            code, text = self.broker.last_error() if result is None else (1, "")
        except BrokerUnavailable as exc:
            self.connected = False
            result, code, text = None, -10004, str(exc)
        log.info("order_send %s %s vol=%s -> %s", request.request.symbol, request.request.comment,
                 request.request.volume, result.retcode if result else f"None ({code} {text})")
        return OrderSendReply(ts=self.market_now, parent=request.id, result=result,
                              last_error_code=code, last_error_text=text)

    def _call(self, fn: Callable[[], AccountSnapshot]) -> AccountSnapshot | None:
        if not self.connected:
            return None
        try:
            return fn()
        except BrokerUnavailable:
            self.connected = False
            return None

