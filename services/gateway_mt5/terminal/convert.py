"""MetaTrader5 records -> the plain, validated records of ``shared.messages``, at once.

Whatever the terminal object returns (the package's named tuples, or RPyC proxies of them through
mt5linux, where every attribute read is a round trip to the bridge) is read field by field here, each
value cast to a plain ``int``/``float``/``str``, and validated by the message model. Nothing returned by
the terminal outlives the call that produced it. A record that fails validation raises
``RecordError`` naming the call and the field, never a half-built message.

Rates are the exception: a broken rate is market data the gateway must see, count and refuse, not a
reason to fail the symbol's poll (the same rate would come back in every poll and stall the symbol for
good). ``bars(..., quarantine=True)`` passes a rate whose prices or time cannot make a ``Bar`` on as an
unvalidated ``Bar`` holding the raw numbers; ``GatewayCore`` checks every M1 rate first and drops it
(services/gateway_mt5/data_quality.py). Without ``quarantine`` (history requests) such a rate is left out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, TypeVar

import numpy as np
from pydantic import ValidationError

from services.gateway_mt5.aggregate import bar_id
from services.gateway_mt5.data_quality import rate_problem
from services.gateway_mt5.terminal.api import (
    AccountRecord,
    DealRecord,
    OrderResultRecord,
    PositionRecord,
    Rates,
    SymbolRecord,
    TickRecord,
    TradeRequestDict,
)
from shared import mt5
from shared.messages import (
    TIMEFRAME_MINUTES,
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
M = TypeVar("M")
EXIT_ENTRIES = frozenset({mt5.DEAL_ENTRY_OUT, mt5.DEAL_ENTRY_INOUT, mt5.DEAL_ENTRY_OUT_BY})


class RecordError(ValueError):
    """A terminal record that does not make a valid message (a broker or bridge bug, not ours to hide)."""


def _validated(make: type[M], what: str, **fields: object) -> M:
    try:
        return make(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise RecordError(f"{what}: field {where} = {err.get('input')!r}: {err.get('msg')}") from None


def symbol_spec(record: SymbolRecord) -> SymbolSpec:
    """symbol_info() -> SymbolSpec."""
    return _validated(
        SymbolSpec, f"symbol_info({record.name!r})",
        name=str(record.name), digits=int(record.digits), point=float(record.point),
        trade_tick_size=float(record.trade_tick_size), trade_tick_value=float(record.trade_tick_value),
        trade_contract_size=float(record.trade_contract_size), volume_min=float(record.volume_min),
        volume_max=float(record.volume_max), volume_step=float(record.volume_step),
        trade_stops_level=int(record.trade_stops_level), trade_freeze_level=int(record.trade_freeze_level),
        trade_mode=int(record.trade_mode), filling_mode=int(record.filling_mode), spread=int(record.spread),
        currency_profit=str(record.currency_profit),
    )


def tick(symbol: str, record: TickRecord) -> Tick | None:
    """symbol_info_tick() -> Tick; None when the terminal has no quote yet (bid or ask 0)."""
    bid, ask, msc = float(record.bid), float(record.ask), int(record.time_msc)
    if bid <= 0 or ask <= 0:
        return None
    return _validated(Tick, f"symbol_info_tick({symbol!r})", id=f"{symbol}-tick-{msc}", ts=msc / 1000,
                      symbol=symbol, time_msc=msc, bid=bid, ask=ask)


def account(record: AccountRecord, now: float) -> AccountSnapshot:
    """account_info() -> AccountSnapshot stamped with the market time."""
    return _validated(
        AccountSnapshot, "account_info()", ts=now, login=int(record.login), currency=str(record.currency),
        leverage=int(record.leverage), balance=float(record.balance), equity=float(record.equity),
        margin=float(record.margin), margin_free=float(record.margin_free),
        margin_level=max(0.0, float(record.margin_level)), profit=float(record.profit),
    )


def position(record: PositionRecord) -> PositionData:
    """positions_get() item -> PositionData (type 0 buy, 1 sell)."""
    kind = int(record.type)
    return _validated(
        PositionData, f"positions_get() ticket {record.ticket}", ticket=int(record.ticket),
        symbol=str(record.symbol), side="buy" if kind == mt5.POSITION_TYPE_BUY else "sell",
        volume=float(record.volume), price_open=float(record.price_open), sl=float(record.sl), tp=float(record.tp),
        price_current=float(record.price_current), profit=float(record.profit), swap=float(record.swap),
        magic=int(record.magic), comment=str(record.comment), time=float(record.time),
    )


def exit_deal(record: DealRecord) -> DealClosed | None:
    """history_deals_get() item -> DealClosed for an exit deal (entry out / in-out / out-by), else None."""
    kind, entry = int(record.type), int(record.entry)
    if kind not in (mt5.DEAL_TYPE_BUY, mt5.DEAL_TYPE_SELL) or entry not in EXIT_ENTRIES:
        return None
    ticket, when = int(record.ticket), float(record.time)
    return _validated(
        DealClosed, f"history_deals_get() ticket {ticket}", id=f"deal-{ticket}", ts=when, ticket=ticket,
        order=int(record.order), position_id=int(record.position_id), symbol=str(record.symbol),
        side="buy" if kind == mt5.DEAL_TYPE_BUY else "sell", entry=entry, reason=int(record.reason),
        volume=float(record.volume), price=float(record.price), profit=float(record.profit),
        commission=float(record.commission), swap=float(record.swap), fee=float(record.fee),
        magic=int(record.magic), comment=str(record.comment), time=when,
    )


def trade_result(record: OrderResultRecord) -> TradeResult:
    """OrderSendResult -> TradeResult."""
    return _validated(
        TradeResult, "order_send()", retcode=int(record.retcode), deal=int(record.deal), order=int(record.order),
        volume=float(record.volume), price=float(record.price), bid=float(record.bid), ask=float(record.ask),
        comment=str(record.comment),
    )


def request_dict(request: TradeRequest) -> TradeRequestDict:
    """TradeRequest -> order_send's dictionary, plain Python values only (mt5linux sends their repr).

    A deal carries every field; ``position`` only when it closes one (0 is not a ticket). An SLTP
    modification carries only what the package documents for it: action, symbol, position, sl, tp.
    """
    if request.action == mt5.TRADE_ACTION_SLTP:
        return TradeRequestDict(action=int(request.action), symbol=str(request.symbol),
                                position=int(request.position), sl=float(request.sl), tp=float(request.tp))
    out = TradeRequestDict(
        action=int(request.action), symbol=str(request.symbol), volume=float(request.volume),
        type=int(request.type), price=float(request.price), sl=float(request.sl), tp=float(request.tp),
        deviation=int(request.deviation), magic=int(request.magic), comment=str(request.comment),
        type_time=int(request.type_time), type_filling=int(request.type_filling),
    )
    if request.position:
        out["position"] = int(request.position)
    return out


def bars(symbol: str, timeframe: Timeframe, rates: Rates, digits: int, *, quarantine: bool = False) -> list[Bar]:
    """A copy_rates_* array -> Bar messages (oldest first), prices rounded to the symbol's digits.

    A rate with an impossible price or time (``rate_problem``) is passed on unvalidated with ``quarantine``
    (for the gateway's data-quality check, which drops it), else left out (logged)."""
    if len(rates) == 0:
        return []
    size = TIMEFRAME_MINUTES[timeframe] * 60
    columns: Iterable[tuple[int, float, float, float, float, int, int]] = zip(
        np.asarray(rates["time"], dtype=np.int64).tolist(),
        np.round(np.asarray(rates["open"], dtype=np.float64), digits).tolist(),
        np.round(np.asarray(rates["high"], dtype=np.float64), digits).tolist(),
        np.round(np.asarray(rates["low"], dtype=np.float64), digits).tolist(),
        np.round(np.asarray(rates["close"], dtype=np.float64), digits).tolist(),
        np.asarray(rates["tick_volume"], dtype=np.int64).tolist(),
        np.asarray(rates["spread"], dtype=np.int64).tolist(),
        strict=True,
    )
    out: list[Bar] = []
    for t, o, h, lo, c, v, s in columns:
        fields: dict[str, Any] = {"id": bar_id(symbol, timeframe, t), "ts": float(t + size), "symbol": symbol,
                  "timeframe": timeframe, "time": t, "open": o, "high": h, "low": lo, "close": c,
                  "tick_volume": v, "spread": s}
        problem = rate_problem(t, (o, h, lo, c))
        if problem is None:
            out.append(_validated(Bar, f"copy_rates({symbol!r}, {timeframe}) bar {t}", **fields))
        elif quarantine:
            out.append(Bar.model_construct(**fields))  # unvalidated on purpose: see the module docstring
        else:
            log.warning("copy_rates(%r, %s) bar %d left out: %s %r", symbol, timeframe, t, problem, (o, h, lo, c))
    return out
