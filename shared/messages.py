"""Every message the services exchange: one module, one version, one discriminated union.

Each message is a frozen pydantic model with a ``type`` tag, the protocol version ``v``, an ``id`` and
``ts``: the MARKET time (epoch seconds, broker server clock = UTC for Exness) the message speaks of.
Decisions use ``ts``, never the wall clock, so a replay at 1000x decides like a live day.

Naming follows the house style: commands are imperative (``SetTrading``), events past tense
(``RegimeChanged``), state snapshots are nouns (``AccountSnapshot``). Requests end in ``Request`` and
their answers in ``Reply``; a reply names the request it answers in ``parent``.

Everything received is validated against ``AnyMessage`` (see ``shared.codec``): unknown types, other
versions, extra fields, NaN/inf and impossible prices are refused there, before any core sees them.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, model_validator

PROTOCOL_VERSION = 1

Side = Literal["buy", "sell"]
Timeframe = Literal["M1", "M5", "M15"]
Regime = Literal["A", "B", "C"]
TIMEFRAME_MINUTES: dict[str, int] = {"M1": 1, "M5": 5, "M15": 15}

Symbol = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._#-]+$")]
Price = PositiveFloat
Volume = PositiveFloat
MAX_EPOCH_S = 4_102_444_800  # 2100-01-01: a later market time is hostile or broken (it would overflow dates)
EpochSeconds = Annotated[float, Field(ge=0, le=MAX_EPOCH_S)]
EpochInt = Annotated[int, Field(ge=0, le=MAX_EPOCH_S)]


def bar_tag(symbol: str, bar_time: int) -> str:
    """Names one symbol's M1 bar in ids: 'XAU1752080400'. Risk's plan id is this tag plus the side's letter
    (services/risk/core.py ``plan_id_for``), a leg id the plan id plus '-n'; the benchmark follows a bar's
    order by it (shared/stamps.py)."""
    return re.sub(r"[^A-Za-z0-9]", "", symbol)[:3] + str(bar_time)


def new_id() -> str:
    """A random id for one message (correlation, de-duplication in logs)."""
    return uuid.uuid4().hex


class Model(BaseModel):
    """Base of all wire types: immutable, strict about unknown fields, finite numbers only."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Message(Model):
    """Base of every top-level message: version, id and market time."""

    v: Literal[1] = 1  # PROTOCOL_VERSION
    id: str = Field(default_factory=new_id, min_length=1, max_length=64)
    ts: EpochSeconds


class Reply(Message):
    """An answer to a request; ``parent`` is the id of that request."""

    parent: str = Field(min_length=1, max_length=64)


# ---------------------------------------------------------------- market data (gateway PUB)


class Bar(Message):
    """A CLOSED bar. ``time`` is its open time (MT5 convention), aligned to the timeframe.

    ``m1_count`` marks an M5/M15 bar the gateway built from PARTIAL M1 data: None (the default, and every
    bar before the field existed) means each minute of the window in which the market was expected to trade
    had its M1 bar; a number says the bar was folded from only that many M1 bars because expected minutes
    were missing (a gap in the feed, a broken rate the gateway dropped, M1 bars that arrived after the
    window had closed in a stale feed, the gateway starting mid-window). Its open/high/low/close/volume
    then describe only those minutes. A count rather than a flag, so a reader can judge "4 of 5" apart
    from "1 of 15". Never set on M1 bars. See services/gateway_mt5/aggregate.py.

    An unmarked bar does not store the key at all (``bar.m1_count`` still reads None): the simulator
    builds its bars without validation from a fixed set of keys (sim/trusted.py), and this keeps those
    bars equal to validated ones and identical on the wire, so no existing producer or message changes.
    """

    type: Literal["bar"] = "bar"
    symbol: Symbol
    timeframe: Timeframe
    time: EpochInt
    open: Price
    high: Price
    low: Price
    close: Price
    tick_volume: int = Field(ge=0)
    spread: int = Field(ge=0, description="points, as MT5 rates carry it")
    m1_count: int | None = Field(default=None, ge=1, description="M5/M15 built from this many M1 bars "
                                 "because expected minutes were missing; None = complete")

    @model_validator(mode="after")
    def _ohlc_consistent(self) -> Bar:
        if self.high < max(self.open, self.close) or self.low > min(self.open, self.close):
            raise ValueError("high must be >= open/close and low <= open/close")
        if self.time % (TIMEFRAME_MINUTES[self.timeframe] * 60) != 0:
            raise ValueError(f"bar time {self.time} is not aligned to {self.timeframe}")
        if self.m1_count is None:
            self.__dict__.pop("m1_count", None)  # unmarked: stored as the simulator's bars are (class docstring)
        elif self.m1_count >= TIMEFRAME_MINUTES[self.timeframe]:
            raise ValueError(f"m1_count {self.m1_count} marks a partial bar: fewer than the minutes of "
                             f"{self.timeframe}")
        return self

    if not TYPE_CHECKING:  # the type checker sees the field; at run time an absent key reads as None

        def __getattr__(self, name: str) -> object:
            if name == "m1_count":
                return None
            return super().__getattr__(name)

    @property
    def close_time(self) -> int:
        """Epoch second at which the bar closed (the next bar's open)."""
        return self.time + TIMEFRAME_MINUTES[self.timeframe] * 60


class Tick(Message):
    """The best bid/ask at ``time_msc`` (epoch milliseconds)."""

    type: Literal["tick"] = "tick"
    symbol: Symbol
    time_msc: int = Field(ge=0, le=MAX_EPOCH_S * 1000)
    bid: Price
    ask: Price

    @model_validator(mode="after")
    def _ask_not_below_bid(self) -> Tick:
        if self.ask < self.bid:
            raise ValueError("ask must be >= bid")
        return self


class AccountSnapshot(Message):
    """The account as MT5's account_info() reports it."""

    type: Literal["account"] = "account"
    login: int = 0
    currency: str = "USD"
    leverage: int = Field(ge=1)
    balance: float
    equity: float
    margin: NonNegativeFloat
    margin_free: float
    margin_level: NonNegativeFloat = 0.0
    profit: float


class DealClosed(Message):
    """An exit deal (entry out): a position closed by us, by SL (reason 4) or TP (reason 5)."""

    type: Literal["deal"] = "deal"
    ticket: int = Field(ge=0)
    order: int = Field(ge=0)
    position_id: int = Field(ge=0)
    symbol: Symbol
    side: Side
    entry: int = Field(ge=0, le=3)
    reason: int = Field(ge=0)
    volume: Volume
    price: Price
    profit: float
    commission: float = 0.0
    swap: float = 0.0
    fee: float = 0.0
    magic: int = Field(ge=0)
    comment: str = Field(default="", max_length=64)
    time: EpochSeconds

    @property
    def net(self) -> float:
        """Realised P&L of this deal in account currency (MT5-FACTS: profit + swap + commission + fee)."""
        return self.profit + self.swap + self.commission + self.fee


class SymbolHealth(Model):
    """Whether one symbol's data is fresh enough to trade on, and if not, why."""

    ok: bool
    reason: str = Field(default="ok", max_length=64)
    market_open: bool = True
    last_tick_age_s: NonNegativeFloat | None = None


class GatewayHeartbeat(Message):
    """Liveness of the gateway and freshness of every symbol, published at a fixed cadence."""

    type: Literal["gateway_heartbeat"] = "gateway_heartbeat"
    backend: str
    connected: bool
    symbols: dict[str, SymbolHealth]
    dropped_requests: int = Field(default=0, ge=0)


# ---------------------------------------------------------------- strategy -> risk


class Signal(Message):
    """A strategy's view on one closed M1 bar: direction, signed strength and confidence, with reasons."""

    type: Literal["signal"] = "signal"
    symbol: Symbol
    side: Side
    net_norm: float = Field(ge=-1.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    bar_time: EpochInt
    price: Price
    atr: PositiveFloat
    spread_points: int = Field(ge=0)
    timeframes: tuple[Timeframe, ...]
    reasons: tuple[Annotated[str, Field(max_length=120)], ...] = ()
    market_regime: Literal["trend", "range"] | None = Field(
        default=None, description="the strategy's read of the market (risk picks the SL's ATR multiple by it); "
        "None: risk calls it a trend when M5 and M15 confirmed the signal, else a range")

    @model_validator(mode="after")
    def _side_matches_strength(self) -> Signal:
        if (self.side == "buy") != (self.net_norm > 0):
            raise ValueError("side must agree with the sign of net_norm")
        return self


# ---------------------------------------------------------------- risk -> executor


class OrderLeg(Model):
    """One market order of a plan. ``leg_id`` is deterministic and travels in the MT5 comment."""

    leg_id: str = Field(min_length=1, max_length=31, pattern=r"^[A-Za-z0-9_.-]+$")
    volume: Volume
    sl: Price
    tp: Price


class OrderPlan(Message):
    """Risk's decision to open 1-3 legs on a signal; the executor sends each leg exactly once."""

    type: Literal["order_plan"] = "order_plan"
    plan_id: str = Field(min_length=1, max_length=40)
    signal_id: str
    symbol: Symbol
    side: Side
    price: Price
    deviation_points: int = Field(ge=0)
    magic: int = Field(ge=0)
    legs: tuple[OrderLeg, ...] = Field(min_length=1, max_length=3)
    confidence: float = Field(ge=0.0, le=1.0)
    regime: Regime
    reasons: tuple[str, ...] = ()
    expires_at: EpochSeconds


# ---------------------------------------------------------------- executor -> risk


class ExecutionReport(Message):
    """The outcome of one leg, with the telemetry risk and Telegram need."""

    type: Literal["execution_report"] = "execution_report"
    plan_id: str
    leg_id: str
    symbol: Symbol
    side: Side
    status: Literal["filled", "rejected", "unknown"]
    retcode: int | None = None
    retcode_text: str = ""
    ticket: int | None = None
    volume: Volume
    requested_price: Price
    fill_price: Price | None = None
    sl: Price
    tp: Price
    latency_ms: NonNegativeFloat
    slippage_points: float = 0.0
    slippage_usd: float = Field(default=0.0, description="slippage in account currency, + = worse than asked")
    retries: int = Field(default=0, ge=0)
    confidence: float = Field(ge=0.0, le=1.0)
    regime: Regime
    reasons: tuple[str, ...] = ()


class PositionAdopted(Message):
    """A position with our magic that the executor's journal did not know, found at reconciliation.

    The executor takes it into its books (owner commands act on it) and says so, because a position
    nobody asked for means an order outlived a crash or was placed by hand with our magic.
    """

    type: Literal["position_adopted"] = "position_adopted"
    ticket: int = Field(ge=0)
    symbol: Symbol
    side: Side
    volume: Volume
    price_open: Price
    sl: NonNegativeFloat = 0.0
    tp: NonNegativeFloat = 0.0
    magic: int = Field(ge=0)
    comment: str = Field(default="", max_length=64)
    reason: str = Field(default="", max_length=200)


class ExecutorStatus(Message):
    """The executor's queue length (the ``q`` of the health line), pushed at a fixed cadence."""

    type: Literal["executor_status"] = "executor_status"
    queue_len: int = Field(ge=0)
    sent_total: int = Field(ge=0)


class ServiceHeartbeat(Message):
    """A service's liveness and drop counters, pushed to risk's inbox at a fixed cadence.

    Risk puts the age of the latest one per service on the health line, so one file tells an operator
    which process has gone quiet. ``ts`` is 0 (it carries no market time): the age is measured on risk's
    clock at receipt, and the beat never moves risk's market time (risk's inbox does not advance on it).
    """

    type: Literal["service_heartbeat"] = "service_heartbeat"
    service: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")
    dropped: int = Field(default=0, ge=0, description="received frames refused so far (all sockets)")
    gaps: int = Field(default=0, ge=0, description="messages missed on PUB/SUB so far (sequence gaps)")


# ---------------------------------------------------------------- risk events (risk PUB)


class RegimeChanged(Message):
    """A symbol's regime moved; ``reason`` says which rule moved it."""

    type: Literal["regime_changed"] = "regime_changed"
    symbol: Symbol
    old: Regime
    new: Regime
    reason: str
    day_return: float


class DayStarted(Message):
    """Risk opened a new trading day at 00:00 UTC (market time); carries yesterday's result."""

    type: Literal["day_started"] = "day_started"
    day: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    start_balance: float
    previous_day: str | None = None
    previous_pnl: float = 0.0
    previous_return: float = 0.0


class TradingLocked(Message):
    """Regime C (hard stop) for a symbol: no orders until the next day or the owner's action."""

    type: Literal["trading_locked"] = "trading_locked"
    symbol: Symbol
    reason: str
    day_return: float


class SignalRejected(Message):
    """A signal that risk refused, and the rule that refused it."""

    type: Literal["signal_rejected"] = "signal_rejected"
    signal_id: str
    symbol: Symbol
    rule: str
    detail: str = ""


class SymbolRiskState(Model):
    """What risk knows of one symbol right now."""

    regime: Regime
    data_ok: bool
    data_reason: str
    last_signal_confidence: float | None = None
    last_signal_side: Side | None = None
    last_signal_at: EpochSeconds | None = None
    open_positions: int = Field(default=0, ge=0)
    trading_locked: bool = Field(default=False, description="no orders now because of the hard stop (regime C "
                                 "without ignore_daily_stop_for_trading): strategies skip analysis on this")


class RiskState(Message):
    """Risk's periodic snapshot: strategies read the regime from it, Telegram the status."""

    type: Literal["risk_state"] = "risk_state"
    trading_enabled: bool
    trading_by: str = ""
    day_start_balance: float
    day_return: float
    symbols: dict[str, SymbolRiskState]


# ---------------------------------------------------------------- broker records (request/reply)


class SymbolSpec(Model):
    """symbol_info() fields the system uses (MT5-FACTS); read from the broker, never hard-coded."""

    name: Symbol
    digits: int = Field(ge=0, le=10)
    point: PositiveFloat
    trade_tick_size: PositiveFloat
    trade_tick_value: NonNegativeFloat
    trade_contract_size: PositiveFloat
    volume_min: PositiveFloat
    volume_max: PositiveFloat
    volume_step: PositiveFloat
    trade_stops_level: int = Field(ge=0)
    trade_freeze_level: int = Field(ge=0)
    trade_mode: int = Field(ge=0, le=4)
    filling_mode: int = Field(ge=0, le=7)
    spread: int = Field(ge=0)
    currency_profit: str = "USD"


class PositionData(Model):
    """One open position as positions_get() reports it (hedging: several per symbol)."""

    ticket: int = Field(ge=0)
    symbol: Symbol
    side: Side
    volume: Volume
    price_open: Price
    sl: NonNegativeFloat
    tp: NonNegativeFloat
    price_current: Price
    profit: float
    swap: float = 0.0
    magic: int = Field(ge=0)
    comment: str = Field(default="", max_length=64)
    time: EpochSeconds


class TradeRequest(Model):
    """An MT5 order_send request; field names and codes as the MetaTrader5 package has them."""

    action: int = Field(ge=0)
    symbol: Symbol
    volume: NonNegativeFloat = 0.0
    type: int = Field(default=0, ge=0)
    price: NonNegativeFloat = 0.0
    sl: NonNegativeFloat = 0.0
    tp: NonNegativeFloat = 0.0
    deviation: int = Field(default=0, ge=0)
    magic: int = Field(default=0, ge=0)
    comment: str = Field(default="", max_length=64)
    position: int = Field(default=0, ge=0)
    type_time: int = Field(default=0, ge=0)
    type_filling: int = Field(default=0, ge=0)


class TradeResult(Model):
    """An MT5 OrderSendResult reduced to plain values."""

    retcode: int
    deal: int = 0
    order: int = 0
    volume: NonNegativeFloat = 0.0
    price: NonNegativeFloat = 0.0
    bid: NonNegativeFloat = 0.0
    ask: NonNegativeFloat = 0.0
    comment: str = ""


# ---------------------------------------------------------------- requests and replies


class HistoryRequest(Message):
    """Ask the gateway for the last ``count`` CLOSED bars (warm-up)."""

    type: Literal["history_request"] = "history_request"
    symbol: Symbol
    timeframe: Timeframe
    count: int = Field(ge=1, le=5000)


class HistoryReply(Reply):
    type: Literal["history_reply"] = "history_reply"
    bars: tuple[Bar, ...]


class SymbolSpecRequest(Message):
    type: Literal["symbol_spec_request"] = "symbol_spec_request"
    symbol: Symbol


class SymbolSpecReply(Reply):
    type: Literal["symbol_spec_reply"] = "symbol_spec_reply"
    spec: SymbolSpec


class AccountRequest(Message):
    type: Literal["account_request"] = "account_request"


class AccountReply(Reply):
    type: Literal["account_reply"] = "account_reply"
    account: AccountSnapshot


class PositionsRequest(Message):
    type: Literal["positions_request"] = "positions_request"
    symbol: Symbol | None = None
    magic: int | None = None


class PositionsReply(Reply):
    type: Literal["positions_reply"] = "positions_reply"
    positions: tuple[PositionData, ...]


class DealsRequest(Message):
    """Exit deals (history_deals_get) with time >= since, optionally one symbol / our magic only."""

    type: Literal["deals_request"] = "deals_request"
    since: EpochSeconds
    symbol: Symbol | None = None
    magic: int | None = None


class DealsReply(Reply):
    type: Literal["deals_reply"] = "deals_reply"
    deals: tuple[DealClosed, ...]


class OrderSendRequest(Message):
    """A broker-mutating request; the gateway accepts it only from the executor's identity."""

    type: Literal["order_send_request"] = "order_send_request"
    request: TradeRequest


class OrderSendReply(Reply):
    """``result`` None means MT5 returned None: an UNKNOWN outcome, never a rejection."""

    type: Literal["order_send_reply"] = "order_send_reply"
    result: TradeResult | None
    last_error_code: int = 1
    last_error_text: str = ""


class ErrorReply(Reply):
    """A request that could not be served (refused, malformed, broker down)."""

    type: Literal["error_reply"] = "error_reply"
    code: str
    text: str


# ---------------------------------------------------------------- owner commands to the executor


class SetProtection(Message):
    """/tek_prof USD or /stop_ls USD: put TP (or SL) of every open position of ours at ``usd`` from the
    open price, per position, keeping the other level."""

    type: Literal["set_protection"] = "set_protection"
    level: Literal["tp", "sl"]
    usd: PositiveFloat
    symbol: Symbol | None = None
    by: str = Field(max_length=64)


class CloseAll(Message):
    """The emergency command: close every open position of ours, on one symbol or all."""

    type: Literal["close_all"] = "close_all"
    symbol: Symbol | None = None
    by: str = Field(max_length=64)


class CommandLine(Model):
    """One line of a command's outcome, e.g. one position with its old and new level."""

    ok: bool
    text: str = Field(max_length=300)


class CommandReply(Reply):
    """What an owner command did, line by line, for the Telegram reply."""

    type: Literal["command_reply"] = "command_reply"
    ok: bool
    summary: str = Field(max_length=300)
    lines: tuple[CommandLine, ...] = ()


class SetTrading(Message):
    """The owner's Start/Stop trading switch, held and persisted by risk."""

    type: Literal["set_trading"] = "set_trading"
    enabled: bool
    by: str = Field(max_length=64)


class RiskStateRequest(Message):
    type: Literal["risk_state_request"] = "risk_state_request"


class RiskStateReply(Reply):
    type: Literal["risk_state_reply"] = "risk_state_reply"
    state: RiskState


AnyMessage = Annotated[
    Bar
    | Tick
    | AccountSnapshot
    | DealClosed
    | GatewayHeartbeat
    | Signal
    | OrderPlan
    | ExecutionReport
    | PositionAdopted
    | ExecutorStatus
    | ServiceHeartbeat
    | RegimeChanged
    | DayStarted
    | TradingLocked
    | SignalRejected
    | RiskState
    | HistoryRequest
    | HistoryReply
    | SymbolSpecRequest
    | SymbolSpecReply
    | AccountRequest
    | AccountReply
    | PositionsRequest
    | PositionsReply
    | DealsRequest
    | DealsReply
    | OrderSendRequest
    | OrderSendReply
    | ErrorReply
    | SetProtection
    | CloseAll
    | CommandReply
    | SetTrading
    | RiskStateRequest
    | RiskStateReply,
    Field(discriminator="type"),
]
