"""The MetaTrader5 package's result records, as named tuples with the package's field names and order.

Field lists are those of the package's documentation and of the names compiled into its ``_core``
module (5.0.6231); SymbolInfo keeps the fields a client reads (the real one has about a hundred).
``from_*`` build them from the simulated broker's records, so the fake terminal returns what the real
package would for the same market.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from services.gateway_mt5.sim.broker import SimBroker
from shared.messages import Bar, DealClosed, PositionData, SymbolSpec, TradeRequest, TradeResult

RATES_DTYPE = np.dtype([
    ("time", "<i8"), ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8"),
    ("tick_volume", "<u8"), ("spread", "<i4"), ("real_volume", "<u8"),
])


class Tick(NamedTuple):
    time: int
    bid: float
    ask: float
    last: float
    volume: int
    time_msc: int
    flags: int
    volume_real: float


class TradePosition(NamedTuple):
    ticket: int
    time: int
    time_msc: int
    time_update: int
    time_update_msc: int
    type: int
    magic: int
    identifier: int
    reason: int
    volume: float
    price_open: float
    sl: float
    tp: float
    price_current: float
    swap: float
    profit: float
    symbol: str
    comment: str
    external_id: str


class TradeDeal(NamedTuple):
    ticket: int
    order: int
    time: int
    time_msc: int
    type: int
    entry: int
    magic: int
    position_id: int
    reason: int
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    fee: float
    symbol: str
    comment: str
    external_id: str


class TradeRequestRecord(NamedTuple):
    action: int
    magic: int
    order: int
    symbol: str
    volume: float
    price: float
    stoplimit: float
    sl: float
    tp: float
    deviation: int
    type: int
    type_filling: int
    type_time: int
    expiration: int
    comment: str
    position: int
    position_by: int


class OrderSendResult(NamedTuple):
    retcode: int
    deal: int
    order: int
    volume: float
    price: float
    bid: float
    ask: float
    comment: str
    request_id: int
    retcode_external: int
    request: TradeRequestRecord


class TerminalInfo(NamedTuple):
    community_account: bool
    community_connection: bool
    connected: bool
    dlls_allowed: bool
    trade_allowed: bool
    tradeapi_disabled: bool
    email_enabled: bool
    ftp_enabled: bool
    notifications_enabled: bool
    mqid: bool
    build: int
    maxbars: int
    codepage: int
    ping_last: int
    community_balance: float
    retransmission: float
    company: str
    name: str
    language: str
    path: str
    data_path: str
    commondata_path: str


class AccountInfo(NamedTuple):
    login: int
    trade_mode: int
    leverage: int
    limit_orders: int
    margin_so_mode: int
    trade_allowed: bool
    trade_expert: bool
    margin_mode: int
    currency_digits: int
    fifo_close: bool
    balance: float
    credit: float
    profit: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float
    margin_so_call: float
    margin_so_so: float
    margin_initial: float
    margin_maintenance: float
    assets: float
    liabilities: float
    commission_blocked: float
    name: str
    server: str
    currency: str
    company: str


class SymbolInfo(NamedTuple):
    custom: bool
    select: bool
    visible: bool
    digits: int
    spread: int
    spread_float: bool
    trade_calc_mode: int
    trade_mode: int
    trade_stops_level: int
    trade_freeze_level: int
    trade_exemode: int
    filling_mode: int
    time: int
    bid: float
    ask: float
    point: float
    trade_tick_value: float
    trade_tick_size: float
    trade_contract_size: float
    volume_min: float
    volume_max: float
    volume_step: float
    currency_base: str
    currency_profit: str
    currency_margin: str
    description: str
    name: str


def symbol_info(spec: SymbolSpec, bid: float, ask: float, time: int) -> SymbolInfo:
    """symbol_info() of a simulated symbol (market execution, CFD-leverage calculation as Exness)."""
    return SymbolInfo(
        custom=False, select=True, visible=True, digits=spec.digits, spread=spec.spread, spread_float=True,
        trade_calc_mode=4, trade_mode=spec.trade_mode, trade_stops_level=spec.trade_stops_level,
        trade_freeze_level=spec.trade_freeze_level, trade_exemode=2, filling_mode=spec.filling_mode, time=time,
        bid=bid, ask=ask, point=spec.point, trade_tick_value=spec.trade_tick_value,
        trade_tick_size=spec.trade_tick_size, trade_contract_size=spec.trade_contract_size,
        volume_min=spec.volume_min, volume_max=spec.volume_max, volume_step=spec.volume_step,
        currency_base=spec.name[:3], currency_profit=spec.currency_profit, currency_margin="USD",
        description=spec.name, name=spec.name,
    )


def position(pos: PositionData) -> TradePosition:
    """positions_get() item of a simulated position."""
    when = int(pos.time)
    return TradePosition(
        ticket=pos.ticket, time=when, time_msc=when * 1000, time_update=when, time_update_msc=when * 1000,
        type=0 if pos.side == "buy" else 1, magic=pos.magic, identifier=pos.ticket, reason=3, volume=pos.volume,
        price_open=pos.price_open, sl=pos.sl, tp=pos.tp, price_current=pos.price_current, swap=pos.swap,
        profit=pos.profit, symbol=pos.symbol, comment=pos.comment, external_id="",
    )


def exit_deal(deal: DealClosed) -> TradeDeal:
    """history_deals_get() item of a simulated exit deal (type = the deal's side, as MT5 reports it)."""
    return TradeDeal(
        ticket=deal.ticket, order=deal.order, time=int(deal.time), time_msc=int(deal.time * 1000),
        type=0 if deal.side == "buy" else 1, entry=deal.entry, magic=deal.magic, position_id=deal.position_id,
        reason=deal.reason, volume=deal.volume, price=deal.price, commission=deal.commission, swap=deal.swap,
        profit=deal.profit, fee=deal.fee, symbol=deal.symbol, comment=deal.comment, external_id="",
    )


def entry_deal(request: TradeRequest, result: TradeResult, when: float) -> TradeDeal:
    """The entry deal an opening order leaves in the history (the sim keeps only exits)."""
    return TradeDeal(
        ticket=result.deal, order=result.order, time=int(when), time_msc=int(when * 1000), type=request.type,
        entry=0, magic=request.magic, position_id=result.order, reason=3, volume=result.volume,
        price=result.price, commission=0.0, swap=0.0, profit=0.0, fee=0.0, symbol=request.symbol,
        comment=request.comment, external_id="",
    )


def balance_deal(ticket: int, when: float, amount: float) -> TradeDeal:
    """The deposit that opened the account (type 2: not P&L, not an exit)."""
    return TradeDeal(
        ticket=ticket, order=0, time=int(when), time_msc=int(when * 1000), type=2, entry=0, magic=0,
        position_id=0, reason=0, volume=0.0, price=0.0, commission=0.0, swap=0.0, profit=amount, fee=0.0,
        symbol="", comment="deposit", external_id="",
    )


def order_result(result: TradeResult, request: TradeRequest) -> OrderSendResult:
    """OrderSendResult of a simulated result, with the request echoed as the package does."""
    echo = TradeRequestRecord(
        action=request.action, magic=request.magic, order=0, symbol=request.symbol, volume=request.volume,
        price=request.price, stoplimit=0.0, sl=request.sl, tp=request.tp, deviation=request.deviation,
        type=request.type, type_filling=request.type_filling, type_time=request.type_time, expiration=0,
        comment=request.comment, position=request.position, position_by=0,
    )
    return OrderSendResult(
        retcode=result.retcode, deal=result.deal, order=result.order, volume=result.volume, price=result.price,
        bid=result.bid, ask=result.ask, comment=result.comment, request_id=0, retcode_external=0, request=echo,
    )


def rates(bars: list[Bar]) -> npt.NDArray[np.void]:
    """A copy_rates_* structured array of bars."""
    out = np.zeros(len(bars), dtype=RATES_DTYPE)
    for k, bar in enumerate(bars):
        out[k] = (bar.time, bar.open, bar.high, bar.low, bar.close, bar.tick_volume, bar.spread, 0)
    return out


def quote(sim: SimBroker, symbol: str) -> tuple[float, float, int]:
    """(bid, ask, time) of a symbol's current tick, (0, 0, 0) before the first."""
    tick = sim.tick(symbol)
    return (0.0, 0.0, 0) if tick is None else (tick.bid, tick.ask, tick.time_msc // 1000)
