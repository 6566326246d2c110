"""The risk core: the single owner of the trading day. Messages in, messages out; no ZeroMQ.

It takes signals, execution reports and executor status (its inbox), heartbeats, account snapshots
and closed deals (the gateway's stream), and the owner's requests; it gives order plans for the
executor and events to publish (regime changes, refusals, forwarded execution reports, the periodic
``RiskState``). Every decision uses MARKET time: the latest ``ts`` seen on a message from the gateway
or a strategy (the clocks of the executor and Telegram are not trusted with it). The injected clock
serves only the cadence of broadcasts, the gateway liveness check and the health line's wall time.
What matters across a restart lives in ``RiskStore`` and is written on every change.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from services.risk.regimes import day_return, next_regime, utc_day
from services.risk.rules import HOUR_S, M1_SECONDS, SignalContext, first_refusal
from services.risk.sizing import SizingError, size_order
from services.risk.store import DayAnchors, RiskStore, SymbolBook
from shared import topics
from shared.clock import Clock
from shared.config import LoadedConfig
from shared.messages import (
    AccountReply,
    AccountSnapshot,
    DealClosed,
    ErrorReply,
    ExecutionReport,
    ExecutorStatus,
    GatewayHeartbeat,
    Message,
    OrderPlan,
    PositionData,
    PositionsReply,
    Regime,
    RegimeChanged,
    Reply,
    RiskState,
    RiskStateReply,
    RiskStateRequest,
    SetTrading,
    Signal,
    SignalRejected,
    SymbolRiskState,
    SymbolSpec,
    SymbolSpecReply,
)
from shared.mt5 import DEAL_ENTRY_OUT, DEAL_ENTRY_OUT_BY

log = logging.getLogger(__name__)

Channel = Literal["executor", "publish"]
GATEWAY_SILENT_BEATS = 5  # heartbeats missed (injected clock) before the gateway counts as silent


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message the runner must send: to the executor (an ``OrderPlan``) or published under ``topic``."""

    channel: Channel
    topic: str
    message: Message


def plan_id_for(signal: Signal) -> str:
    """A plan id made from the signal alone, e.g. 'XAU1752080400b': the same bar gives the same id."""
    prefix = re.sub(r"[^A-Za-z0-9]", "", signal.symbol)[:3]
    return f"{prefix}{signal.bar_time}{signal.side[0]}"


def health_key(symbol: str) -> str:
    """'xau' / 'btc' for the health line by the symbol's prefix; any other symbol its lower-case name."""
    for prefix in ("xau", "btc"):
        if symbol.lower().startswith(prefix):
            return prefix
    return symbol.lower()


def _one_word(text: str) -> str:
    """A reason as one token for the space-separated health line."""
    return re.sub(r"\s+", "_", text.strip()) or "ok"


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
        self._day: DayAnchors | None = store.load_day()
        saved = store.load_books()
        self._books = {symbol: saved.get(symbol, SymbolBook()) for symbol in config.symbols}
        self._market_now = 0.0
        self._account: AccountSnapshot | None = None
        self._specs: dict[str, SymbolSpec] = {}
        self._heartbeat: GatewayHeartbeat | None = None
        self._heartbeat_at = 0.0
        self._queue_len: int | None = None
        self._last_confidence: dict[str, float] = {}
        self._next_state_at: float | None = None
        self.ignored: Counter[str] = Counter()  # messages of types risk does not take, by type
        log.info("resumed: trading %s (set by %s), day %s, regimes %s", "on" if self._trading else "off",
                 self._trading_by, self._day.day if self._day else "not yet opened",
                 {symbol: book.regime for symbol, book in self._books.items()})

    # ------------------------------------------------------------------ public API

    @property
    def market_now(self) -> float:
        return self._market_now

    def missing_broker_info(self) -> list[str]:
        """Symbols whose spec is still unknown, then 'account' if the account is: what to ask the gateway."""
        missing = [symbol for symbol in self._config.symbols if symbol not in self._specs]
        return missing + ([] if self._account else ["account"])

    def set_symbol_spec(self, spec: SymbolSpec) -> None:
        """The gateway's symbol_info for a configured symbol (needed before any order on it)."""
        if spec.name not in self._config.symbols:
            log.warning("ignored a spec for %s: not a configured symbol", spec.name)
            return
        self._specs[spec.name] = spec
        log.info("spec of %s: %s", spec.name, spec.model_dump())

    def set_positions(self, positions: tuple[PositionData, ...] | list[PositionData]) -> None:
        """Make the broker's COMPLETE list of open positions the truth for our open-position counts."""
        for symbol, cfg in self._config.symbols.items():
            ours = {p.ticket: p.time for p in positions if p.symbol == symbol and p.magic == cfg.symbol.magic}
            self._store.replace_positions(symbol, ours)
            log.info("positions of %s from the broker: %d open", symbol, len(ours))

    def handle(self, msg: Message) -> list[Outgoing]:
        """Take one message from the inbox or the gateway's stream; return what to send."""
        if isinstance(msg, Signal):
            return self._on_signal(msg)
        if isinstance(msg, ExecutionReport):
            return self._on_report(msg)
        if isinstance(msg, ExecutorStatus):
            self._queue_len = msg.queue_len
            return []
        if isinstance(msg, GatewayHeartbeat):
            self._heartbeat, self._heartbeat_at = msg, self._clock.monotonic()
            return self._advance(msg.ts)
        if isinstance(msg, AccountSnapshot | AccountReply):
            return self._on_account(msg.account if isinstance(msg, AccountReply) else msg)
        if isinstance(msg, DealClosed):
            return self._on_deal(msg)
        if isinstance(msg, SymbolSpecReply):
            self.set_symbol_spec(msg.spec)
            return []
        if isinstance(msg, PositionsReply):
            self.set_positions(msg.positions)
            return []
        self.ignored[type(msg).__name__] += 1
        log.warning("ignored a %s (%s): risk does not take this type", type(msg).__name__, msg.id)
        return []

    def handle_request(self, msg: Message) -> tuple[Reply, list[Outgoing]]:
        """Answer a request on risk's ROUTER (the switch, the state); also what to publish after it."""
        if isinstance(msg, SetTrading):
            state = self.set_trading(msg.enabled, msg.by)
            reply = RiskStateReply(ts=self._market_now, parent=msg.id, state=state)
            return reply, [Outgoing("publish", topics.RISK_STATE, state)]
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
        return [Outgoing("publish", topics.RISK_STATE, self.status())]

    def status(self) -> RiskState:
        """What risk knows now, per symbol (strategies read the regime from it, Telegram the status)."""
        symbols = {}
        for symbol, book in self._books.items():
            ok, reason = self._data_status(symbol)
            symbols[symbol] = SymbolRiskState(
                regime=book.regime, data_ok=ok, data_reason=reason[:64],
                last_signal_confidence=self._last_confidence.get(symbol),
                open_positions=self._store.open_positions(symbol),
            )
        start = self._day.start_balance if self._day and self._day.start_balance else 0.0
        return RiskState(ts=self._market_now, trading_enabled=self._trading, day_start_balance=start,
                         day_return=self._day_return() or 0.0, symbols=symbols)

    def health_line(self) -> str:
        """The operators' health line (wall time, per-symbol data state, executor queue, regimes, switch)."""
        wall = datetime.fromtimestamp(self._clock.now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        data = {health_key(symbol): self._data_status(symbol) for symbol in self._books}
        regimes = {health_key(symbol): book.regime for symbol, book in self._books.items()}
        parts = [wall]
        parts += [f"ok_{key}={int(ok)}" for key, (ok, _) in data.items()]
        parts += [f"reason_{key}={_one_word(reason)}" for key, (_, reason) in data.items()]
        parts.append(f"q={-1 if self._queue_len is None else self._queue_len}")
        parts += [f"regime_{key}={regime}" for key, regime in regimes.items()]
        parts.append(f"trading={'on' if self._trading else 'off'}")
        return " ".join(parts)

    # ------------------------------------------------------------------ market time and the day

    def _advance(self, ts: float) -> list[Outgoing]:
        """Move market time forward to ``ts`` (never back); the first message of a new UTC day resets it."""
        if ts <= self._market_now:
            return []
        self._market_now = ts
        today = utc_day(ts)
        if self._day is None:  # the very first market time: open the day without a reset
            self._open_day(today)
            return []
        if today > self._day.day:
            return self._new_day(today)
        return []

    def _open_day(self, today: str) -> None:
        account = self._account
        balance, equity = (account.balance, account.equity) if account else (None, None)
        self._day = DayAnchors(today, balance, equity)
        self._store.save_day(self._day)
        log.info("day %s: start balance %s, peak equity %s", today, self._day.start_balance,
                 self._day.peak_equity)

    def _new_day(self, today: str) -> list[Outgoing]:
        """00:00 UTC on the market clock: every regime back to A, day counters zeroed, anchors renewed."""
        previous = self._day.day if self._day else "?"
        self._open_day(today)
        out: list[Outgoing] = []
        for symbol, book in self._books.items():
            old = book.regime
            book.regime, book.signals_today = "A", 0
            self._store.save_book(symbol, book)
            if old != "A":
                out.append(self._regime_event(symbol, old, "A", "new_day"))
        log.warning("new UTC day %s (after %s): regimes reset to A", today, previous)
        out.append(Outgoing("publish", topics.RISK_STATE, self.status()))
        return out

    def _day_return(self) -> float | None:
        if self._account is None or self._day is None or not self._day.start_balance:
            return None
        if self._day.start_balance <= 0:
            return None
        return day_return(self._account.equity, self._day.start_balance)

    def _on_account(self, account: AccountSnapshot) -> list[Outgoing]:
        self._account = account
        out = self._advance(account.ts)
        day = self._day
        if day is not None:
            if day.start_balance is None:  # the day opened before any account was known
                self._open_day(day.day)
            elif day.peak_equity is None or account.equity > day.peak_equity:
                self._day = DayAnchors(day.day, day.start_balance, account.equity)
                self._store.save_day(self._day)
        return out + self._evaluate_regimes()

    def _evaluate_regimes(self) -> list[Outgoing]:
        ret = self._day_return()
        if ret is None:
            return []
        out = []
        for symbol, book in self._books.items():
            move = next_regime(book.regime, ret, self._config.symbols[symbol])
            if move is None:
                continue
            old, (book.regime, reason) = book.regime, move
            self._store.save_book(symbol, book)
            log.warning("%s regime %s -> %s (%s, day return %.4f)", symbol, old, book.regime, reason, ret)
            out.append(self._regime_event(symbol, old, book.regime, reason))
        return out

    def _regime_event(self, symbol: str, old: Regime, new: Regime, reason: str) -> Outgoing:
        event = RegimeChanged(ts=self._market_now, symbol=symbol, old=old, new=new, reason=reason,
                              day_return=self._day_return() or 0.0)
        return Outgoing("publish", topics.RISK_REGIME, event)

    # ------------------------------------------------------------------ signals

    def _data_status(self, symbol: str) -> tuple[bool, str]:
        """Whether the symbol's data is fresh enough to trade on, and why not ('ok' when it is)."""
        beat = self._heartbeat
        if beat is None:
            return False, "no_heartbeat"
        silent_after = GATEWAY_SILENT_BEATS * self._config.system.gateway.heartbeat_interval_s
        if self._clock.monotonic() - self._heartbeat_at > silent_after:
            return False, "gateway_silent"
        if not beat.connected:
            return False, "broker_disconnected"
        health = beat.symbols.get(symbol)
        if health is None:
            return False, "not_in_heartbeat"
        return health.ok, health.reason

    def _on_signal(self, signal: Signal) -> list[Outgoing]:
        out = self._advance(signal.ts)
        symbol = signal.symbol
        self._last_confidence[symbol] = signal.confidence
        config = self._config.symbols.get(symbol)
        if config is None:
            return [*out, self._reject(signal, "unknown_symbol", "no config file lists this symbol")]
        book = self._books[symbol]
        data_ok, data_reason = self._data_status(symbol)
        health = self._heartbeat.symbols.get(symbol) if self._heartbeat else None
        open_positions = self._store.open_positions(symbol)
        ctx = SignalContext(
            signal=signal, config=config, market_now=self._market_now, trading_enabled=self._trading,
            regime=book.regime, data_ok=data_ok, data_reason=data_reason,
            market_open=None if health is None else health.market_open,
            spec_known=symbol in self._specs, account_known=self._account is not None,
            signal_max_age_s=self._settings.signal_max_age_s, cooldown_until=book.cooldown_until,
            last_plan_bar_time=book.last_plan_bar_time, open_positions=open_positions,
            signals_today=book.signals_today,
            fills_last_hour=self._store.fills_since(symbol, self._market_now - HOUR_S),
        )
        refusal = first_refusal(ctx)
        if refusal is not None:
            return [*out, self._reject(signal, *refusal)]
        plan_id = plan_id_for(signal)
        balance = self._account.balance if self._account else 0.0  # BrokerInfoKnown saw an account
        try:
            sized = size_order(signal, config, self._specs[symbol], balance,
                               max_legs=config.risk.max_positions - open_positions, plan_id=plan_id)
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
        log.info("plan %s: %s %s %d leg(s) lot %.2f at %s, SL dist %s, TP dist %s (TP %.2f USD), conf %.3f",
                 plan_id, signal.side, symbol, len(sized.legs), sized.lot, sized.entry, sized.sl_distance,
                 sized.tp_distance, sized.tp_usd, signal.confidence)
        return [*out, Outgoing("executor", "", plan)]

    def _reject(self, signal: Signal, rule: str, detail: str) -> Outgoing:
        log.info("refused signal %s (%s %s bar %d): %s: %s", signal.id, signal.side, signal.symbol,
                 signal.bar_time, rule, detail)
        event = SignalRejected(ts=self._market_now, signal_id=signal.id, symbol=signal.symbol, rule=rule,
                               detail=detail)
        return Outgoing("publish", topics.RISK_REJECTED, event)

    # ------------------------------------------------------------------ fills and closes

    def _on_report(self, report: ExecutionReport) -> list[Outgoing]:
        """Forward every report (observers turn fills into messages); count fills for the gates."""
        book = self._books.get(report.symbol)
        at = self._market_now or report.ts  # the report's own ts only before any market time is known
        if report.status == "filled" and book is not None:
            if self._store.record_fill(report.leg_id, report.symbol, report.ticket, at):
                cooldown = self._config.symbols[report.symbol].limits.cooldown_seconds
                book.cooldown_until = max(book.cooldown_until, at + cooldown)
                self._store.save_book(report.symbol, book)
            else:
                log.warning("execution report for %s seen before; not counted twice", report.leg_id)
        return [Outgoing("publish", topics.RISK_EXECUTION, report)]

    def _on_deal(self, deal: DealClosed) -> list[Outgoing]:
        out = self._advance(deal.ts)
        config = self._config.symbols.get(deal.symbol)
        ours = config is not None and deal.magic == config.symbol.magic
        closing = deal.entry in (DEAL_ENTRY_OUT, DEAL_ENTRY_OUT_BY)
        if ours and closing and not self._store.close_position(deal.symbol, deal.position_id):
            log.warning("deal %d closed position %d of %s, which risk did not count as open",
                        deal.ticket, deal.position_id, deal.symbol)
        return out
