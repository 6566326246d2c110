"""The risk core: the single owner of the trading day. Messages in, messages out; no ZeroMQ.

It takes signals, execution reports, adopted positions and executor status (its inbox), heartbeats,
account snapshots and closed deals (the gateway's stream), the gateway's replies (specs, account,
positions, deals) and the owner's requests; it gives order plans for the executor and events to
publish: regime changes, the trade-lock, the new day, refusals, forwarded execution reports and
adoptions, and the periodic ``RiskState``.

Every decision uses MARKET time: the latest ``ts`` seen on a message from the gateway or a strategy (the
clocks of the executor and Telegram are not trusted with it). The injected clock serves only the cadence
of broadcasts, the gateway liveness check and the health line's wall time. Each message is handled in
one store transaction, so a SIGKILL at any moment leaves the state of before or after it, never between.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from services.risk.day import TradingDay, measure_of
from services.risk.health import data_status, format_health_line, heard_ages
from services.risk.quality import take_report
from services.risk.regimes import DAY_S, next_regime, profit_lock_armed, protective, trading_locked, utc_day
from services.risk.rules import HOUR_S, M1_SECONDS, SignalContext, first_refusal
from services.risk.sizing import SizingError, size_order
from services.risk.store import RiskStore, SymbolBook
from shared import topics
from shared.clock import Clock
from shared.config import LoadedConfig
from shared.messages import (
    AccountReply,
    AccountSnapshot,
    DealClosed,
    DealsReply,
    ErrorReply,
    ExecutionReport,
    ExecutorStatus,
    GatewayHeartbeat,
    Message,
    OrderPlan,
    PositionAdopted,
    PositionData,
    PositionsReply,
    Regime,
    RegimeChanged,
    Reply,
    RiskState,
    RiskStateReply,
    RiskStateRequest,
    ServiceHeartbeat,
    SetTrading,
    Signal,
    SignalRejected,
    SymbolRiskState,
    SymbolSpec,
    SymbolSpecReply,
    TradingLocked,
    bar_tag,
)

log = logging.getLogger(__name__)

Channel = Literal["executor", "publish"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message the runner must send: to the executor (an ``OrderPlan``) or published under ``topic``."""

    channel: Channel
    topic: str
    message: Message


def plan_id_for(signal: Signal) -> str:
    """A plan id made from the signal alone, e.g. 'XAU1752080400b': the same bar gives the same id."""
    return f"{bar_tag(signal.symbol, signal.bar_time)}{signal.side[0]}"


def _publish(topic: str, message: Message) -> Outgoing:
    return Outgoing("publish", topic, message)


class RiskCore:
    """Regimes, gates and sizing for every configured symbol, on one account."""

    def __init__(self, config: LoadedConfig, store: RiskStore, clock: Clock) -> None:
        self._config = config
        self._settings = config.system.risk
        self._store = store
        self._clock = clock
        switch = store.load_switch()
        if switch is None:  # the first start ever: trading on
            switch = (True, "first start")
            store.save_switch(*switch)
        self._trading, self._trading_by = switch
        self._day = TradingDay(store, config.symbols)
        saved = store.load_books()
        self._books = {symbol: saved.get(symbol, SymbolBook()) for symbol in config.symbols}
        self._market_now = 0.0
        self._specs: dict[str, SymbolSpec] = {}
        self._heartbeat: GatewayHeartbeat | None = None
        self._heartbeat_at = 0.0
        self._queue_len: int | None = None
        self._heard: dict[str, float] = {}  # service -> injected-clock time of its latest sign of life
        self._last_signal: dict[str, Signal] = {}
        self._armed: set[str] = set()  # symbols whose profit lock was logged as armed today (log only)
        self._next_state_at: float | None = None
        self.ignored: Counter[str] = Counter()  # messages of types risk does not take, by type
        log.info("resumed: trading %s (set by %s), day %s, regimes %s", "on" if self._trading else "off",
                 self._trading_by, self._day.day or "not yet opened",
                 {symbol: book.regime for symbol, book in self._books.items()})

    # ------------------------------------------------------------------ public API

    @property
    def market_now(self) -> float:
        return self._market_now

    @property
    def day(self) -> str | None:
        """The UTC day risk is in ('YYYY-MM-DD'), None before any market time."""
        return self._day.day

    @property
    def awaiting_deals(self) -> bool:
        """A position of ours closed and its exit deal has not come: the runner should fetch the day's deals."""
        return self._day.awaiting_deals

    def missing_broker_info(self) -> list[str]:
        """Symbols whose spec is still unknown, then 'account' if the account is: what to ask the gateway."""
        missing = [symbol for symbol in self._config.symbols if symbol not in self._specs]
        return missing + ([] if self._day.account else ["account"])

    def set_symbol_spec(self, spec: SymbolSpec) -> None:
        """The gateway's symbol_info for a configured symbol (needed before any order on it)."""
        if spec.name not in self._config.symbols:
            log.warning("ignored a spec for %s: not a configured symbol", spec.name)
            return
        if self._specs.get(spec.name) != spec:
            log.info("spec of %s: %s", spec.name, spec.model_dump())
        self._specs[spec.name] = spec

    def set_positions(self, positions: tuple[PositionData, ...] | list[PositionData]) -> None:
        """Make the broker's COMPLETE list of open positions the truth for our counts and floating P&L."""
        with self._store.atomic():
            for symbol in self._config.symbols:
                ours = {p.ticket: p.time for p in positions if p.symbol == symbol and self._day.ours(symbol, p.magic)}
                self._store.replace_positions(symbol, ours)
            self._day.set_positions(positions)

    def handle(self, msg: Message) -> list[Outgoing]:
        """Take one message from the inbox or the gateway's stream (or a gateway reply); return what to send."""
        with self._store.atomic():
            return self._dispatch(msg)

    def handle_request(self, msg: Message) -> tuple[Reply, list[Outgoing]]:
        """Answer a request on risk's ROUTER (the switch, the state); also what to publish after it."""
        if isinstance(msg, SetTrading):
            state = self.set_trading(msg.enabled, msg.by)
            reply = RiskStateReply(ts=self._market_now, parent=msg.id, state=state)
            return reply, [_publish(topics.RISK_STATE, state)]
        if isinstance(msg, RiskStateRequest):
            return RiskStateReply(ts=self._market_now, parent=msg.id, state=self.status()), []
        text = f"risk answers set_trading and risk_state_request, not {type(msg).__name__}"
        return ErrorReply(ts=self._market_now, parent=msg.id, code="unsupported", text=text), []

    def set_trading(self, enabled: bool, by: str) -> RiskState:
        """The owner's Start/Stop switch; persisted at once."""
        self._store.save_switch(enabled, by)
        self._trading, self._trading_by = enabled, by
        log.warning("trading switched %s by %s", "ON" if enabled else "OFF", by)
        return self.status()

    def on_timer(self, now: float) -> list[Outgoing]:
        """Call often with the clock's monotonic time: the ``RiskState`` broadcast when it is due."""
        if self._next_state_at is not None and now < self._next_state_at:
            return []
        self._next_state_at = now + self._settings.state_interval_s
        return [_publish(topics.RISK_STATE, self.status())]

    def status(self) -> RiskState:
        """What risk knows now, per symbol (strategies read the regime from it, Telegram the status)."""
        symbols = {}
        for symbol, book in self._books.items():
            ok, reason = self._data_status(symbol)
            last = self._last_signal.get(symbol)
            symbols[symbol] = SymbolRiskState(
                regime=book.regime, data_ok=ok, data_reason=reason[:64],
                last_signal_confidence=last.confidence if last else None,
                last_signal_side=last.side if last else None, last_signal_at=last.ts if last else None,
                open_positions=self._store.open_positions(symbol),
                trading_locked=trading_locked(book.regime, self._config.symbols[symbol]),
            )
        anchors = self._day.anchors
        result = self._day.result()
        return RiskState(ts=self._market_now, trading_enabled=self._trading, trading_by=self._trading_by,
                         day_start_balance=(anchors.start_balance or 0.0) if anchors else 0.0,
                         day_return=result[1] if result else 0.0, symbols=symbols)

    def health_line(self) -> str:
        """The operators' health line (wall time, per-symbol data state, executor queue, regimes, switch)."""
        return format_health_line(self._clock.now(), {s: self._data_status(s) for s in self._books},
                                  self._queue_len, {s: b.regime for s, b in self._books.items()}, self._trading,
                                  ages=heard_ages(self._heard, self._clock.monotonic()))

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, msg: Message) -> list[Outgoing]:
        if isinstance(msg, Signal):
            return self._on_signal(msg)
        if isinstance(msg, ExecutionReport):
            return self._on_report(msg)
        if isinstance(msg, ExecutorStatus):
            self._queue_len = msg.queue_len
            self._heard["executor"] = self._clock.monotonic()
            return []
        if isinstance(msg, ServiceHeartbeat):
            self._heard[msg.service] = self._clock.monotonic()
            return []
        if isinstance(msg, PositionAdopted):  # the executor's news for the owner; the positions poll counts it
            return [_publish(topics.RISK_EXECUTION, msg)]
        if isinstance(msg, GatewayHeartbeat):
            self._heartbeat, self._heartbeat_at = msg, self._clock.monotonic()
            self._heard["gateway_mt5"] = self._heartbeat_at
            return self._advance(msg.ts)
        if isinstance(msg, AccountSnapshot | AccountReply):
            return self._on_account(msg.account if isinstance(msg, AccountReply) else msg)
        if isinstance(msg, DealClosed):
            return [*self._advance(msg.ts), *self._on_deal(msg, live=True)]
        if isinstance(msg, DealsReply):  # every exit deal since the day's start, fetched just now
            out = [item for deal in msg.deals for item in self._on_deal(deal, live=False)]
            self._day.deals_complete()
            return [*out, *self._evaluate()]
        if isinstance(msg, SymbolSpecReply):
            self.set_symbol_spec(msg.spec)
            return []
        if isinstance(msg, PositionsReply):
            self.set_positions(msg.positions)
            return self._evaluate()
        self.ignored[type(msg).__name__] += 1
        log.warning("ignored a %s (%s): risk does not take this type", type(msg).__name__, msg.id)
        return []

    # ------------------------------------------------------------------ market time, the day, the regimes

    def _advance(self, ts: float) -> list[Outgoing]:
        """Move market time forward to ``ts`` (never back); the first message of a new UTC day resets it."""
        if ts <= self._market_now:
            return []
        self._market_now = ts
        today = utc_day(ts)
        if self._day.day is None or today > self._day.day:
            return self._new_day(today)
        return []

    def _new_day(self, today: str) -> list[Outgoing]:
        """00:00 UTC on the market clock, every day of the week: the day's anchors renewed, every regime back
        to A, the day's signal counters zeroed; DayStarted (with the previous day's result) is published as
        soon as the start balance is known. The very first day of a new state file opens the same way."""
        self._day.open(today)
        self._armed.clear()
        out: list[Outgoing] = []
        for symbol, book in self._books.items():
            old = book.regime
            book.regime, book.signals_today = "A", 0
            self._store.save_book(symbol, book)
            if old != "A":
                out.append(self._regime_event(symbol, old, "A", "new_day"))
        log.warning("new UTC day %s: regimes reset to A", today)
        return [*self._announce(), *out, *self._evaluate(), _publish(topics.RISK_STATE, self.status())]

    def _announce(self) -> list[Outgoing]:
        announcement = self._day.announcement(self._market_now)
        return [] if announcement is None else [_publish(topics.RISK_DAY, announcement)]

    def _on_account(self, account: AccountSnapshot) -> list[Outgoing]:
        self._day.set_account(account)
        out = self._advance(account.ts)  # a reset here takes this account's balance as the day's start
        return [*out, *self._announce(), *self._evaluate()]

    def _on_deal(self, deal: DealClosed, *, live: bool) -> list[Outgoing]:
        """Count an exit deal of ours once. A live one also closes its position in our counts (a deal from a
        reconciliation does not: the position list that came with it is the truth)."""
        if not self._day.add_deal(deal):
            return []
        if live and not self._store.close_position(deal.symbol, deal.position_id):
            log.warning("deal %d closed position %d of %s, which risk did not count as open",
                        deal.ticket, deal.position_id, deal.symbol)
        return self._evaluate()

    def _evaluate(self) -> list[Outgoing]:
        """Move each symbol to the stricter regime its day's figures call for; publish every change."""
        self._day.update_peaks()
        out: list[Outgoing] = []
        for symbol, book in self._books.items():
            config = self._config.symbols[symbol]
            figures = self._day.figures(measure_of(config))
            if figures is not None and symbol not in self._armed and profit_lock_armed(figures, config):
                self._armed.add(symbol)
                log.warning("%s profit lock armed: day return %.4f; back to the target is C", symbol, figures.ret)
            move = None if figures is None else next_regime(book.regime, figures, config)
            if figures is None or move is None:
                continue
            old, (book.regime, reason) = book.regime, move
            self._store.save_book(symbol, book)
            log.warning("%s regime %s -> %s (%s): day return %.4f, peak %.4f", symbol, old, book.regime, reason,
                        figures.ret, figures.peak_ret)
            out.append(self._regime_event(symbol, old, book.regime, reason))
            if trading_locked(book.regime, config):
                out.append(_publish(topics.RISK_LOCK, TradingLocked(ts=self._market_now, symbol=symbol,
                                                                    reason=reason, day_return=figures.ret)))
        return out

    def _regime_event(self, symbol: str, old: Regime, new: Regime, reason: str) -> Outgoing:
        figures = self._day.figures(measure_of(self._config.symbols[symbol]))
        event = RegimeChanged(ts=self._market_now, symbol=symbol, old=old, new=new, reason=reason,
                              day_return=figures.ret if figures else 0.0)
        return _publish(topics.RISK_REGIME, event)

    # ------------------------------------------------------------------ signals

    def _data_status(self, symbol: str) -> tuple[bool, str]:
        interval = self._config.system.gateway.heartbeat_interval_s
        return data_status(self._heartbeat, self._clock.monotonic() - self._heartbeat_at, interval, symbol)

    def _on_signal(self, signal: Signal) -> list[Outgoing]:
        if self._market_now and signal.ts > self._market_now + DAY_S:
            # A signal a day ahead of the gateway's clock is broken or hostile: taking its time would open
            # a future trading day and persist it. Refused without moving market time.
            return [self._reject(signal, "from_the_future", f"ts {signal.ts:.0f} is over a day past market "
                                 f"time {self._market_now:.0f}")]
        out = self._advance(signal.ts)
        symbol = signal.symbol
        self._last_signal[symbol] = signal
        config = self._config.symbols.get(symbol)
        if config is None:
            return [*out, self._reject(signal, "unknown_symbol", "no config file lists this symbol")]
        book = self._books[symbol]
        data_ok, data_reason = self._data_status(symbol)
        health = self._heartbeat.symbols.get(symbol) if self._heartbeat else None
        open_positions = self._store.open_positions(symbol)
        ctx = SignalContext(
            signal=signal, config=config, book=book, market_now=self._market_now, trading_enabled=self._trading,
            data_ok=data_ok, data_reason=data_reason, market_open=None if health is None else health.market_open,
            spec=self._specs.get(symbol), account_known=self._day.account is not None,
            signal_max_age_s=self._settings.signal_max_age_s, open_positions=open_positions,
            fills_last_hour=self._store.fills_since(symbol, self._market_now - HOUR_S),
            plans_last_hour=self._store.plans_since(symbol, self._market_now - HOUR_S),
        )
        refusal = first_refusal(ctx)
        if refusal is not None:
            return [*out, self._reject(signal, *refusal)]
        plan_id = plan_id_for(signal)
        balance = self._day.account.balance if self._day.account else 0.0  # BrokerInfoKnown saw an account
        try:
            sized = size_order(signal, config, self._specs[symbol], balance, plan_id=plan_id,
                               max_legs=config.risk.max_positions - open_positions,
                               reduced=protective(book.regime), expected_slippage_points=book.ewma_slippage)
        except SizingError as exc:
            return [*out, self._reject(signal, "sizing", str(exc))]
        plan = OrderPlan(
            ts=self._market_now, plan_id=plan_id, signal_id=signal.id, symbol=symbol, side=signal.side,
            price=sized.entry, deviation_points=config.execution.deviation_points, magic=config.symbol.magic,
            legs=sized.legs, confidence=signal.confidence, regime=book.regime, reasons=signal.reasons,
            expires_at=signal.bar_time + M1_SECONDS + self._settings.signal_max_age_s,
        )
        book.last_plan_bar_time = signal.bar_time
        book.signals_today += 1
        self._store.save_book(symbol, book)
        self._store.record_plan(plan_id, symbol, self._market_now)
        log.info("plan %s: %s %s %d leg(s) lot %.2f at %s, SL dist %s, TP dist %s (TP %.2f USD), conf %.3f, "
                 "regime %s", plan_id, signal.side, symbol, len(sized.legs), sized.lot, sized.entry,
                 sized.sl_distance, sized.tp_distance, sized.tp_usd, signal.confidence, book.regime)
        return [*out, Outgoing("executor", "", plan)]

    def _reject(self, signal: Signal, rule: str, detail: str) -> Outgoing:
        log.info("refused signal %s (%s %s bar %d): %s: %s", signal.id, signal.side, signal.symbol,
                 signal.bar_time, rule, detail)
        event = SignalRejected(ts=self._market_now, signal_id=signal.id, symbol=signal.symbol, rule=rule,
                               detail=detail[:300])
        return _publish(topics.RISK_REJECTED, event)

    # ------------------------------------------------------------------ execution reports

    def _on_report(self, report: ExecutionReport) -> list[Outgoing]:
        """Forward every report (observers turn fills into messages); take each one once into its book."""
        book = self._books.get(report.symbol)
        if book is not None:
            at = self._market_now or report.ts  # the report's own ts only before any market time is known
            take_report(report, book, self._config.symbols[report.symbol], self._store, at)
        return [_publish(topics.RISK_EXECUTION, report)]
