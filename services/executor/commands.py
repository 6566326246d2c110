"""The owner's commands: /tek_prof and /stop_ls (SetProtection) and the emergency CloseAll.

Both act on every open position of ours (our magic on a configured symbol), on one symbol or all, one
broker request at a time through the executor's single queue, under the same retcode policy as the
opens. Neither needs the journal: a modify and a close name their position's ticket, so a resend after
an unknown outcome cannot act twice (a second close of a closed position is refused with 10036, which
here means the goal is reached).

The protection formula, per position, as the issue gives it:
    profit_per_tick = trade_tick_value x volume;  ticks = usd / profit_per_tick;
    delta = ticks x trade_tick_size;  BUY: TP = open + delta, SL = open - delta;  SELL: the mirror,
rounded to the nearest tick and to the symbol's digits (MT5 refuses off-grid prices). The other level is
resent unchanged (MT5 removes a level sent as 0). A zero tick value or tick size skips the position.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from decimal import ROUND_HALF_UP, Decimal

from services.executor.desk import Desk, Job, Reply, Step
from services.executor.policy import Located, Outcome, execute
from services.executor.telemetry import log_order, slippage
from shared import mt5
from shared.messages import (
    CloseAll,
    CommandLine,
    CommandReply,
    PositionData,
    SetProtection,
    Side,
    SymbolSpec,
    TradeRequest,
)

log = logging.getLogger(__name__)
TEXT_MAX = 300


def protection_price(
    *, side: Side, level: str, price_open: float, volume: float, usd: float, spec: SymbolSpec,
) -> float | str:
    """The new TP/SL price of one position, or why it cannot be computed (the position is skipped)."""
    if spec.trade_tick_value <= 0 or spec.trade_tick_size <= 0:
        return (f"skipped: {spec.name} tick value {spec.trade_tick_value:g} / tick size {spec.trade_tick_size:g}: "
                "the distance cannot be priced")
    tick_size = Decimal(repr(spec.trade_tick_size))
    profit_per_tick = Decimal(repr(spec.trade_tick_value)) * Decimal(repr(volume))
    delta = Decimal(repr(usd)) / profit_per_tick * tick_size
    above = (level == "tp") == (side == "buy")
    raw = Decimal(repr(price_open)) + (delta if above else -delta)
    price = float(((raw / tick_size).to_integral_value(ROUND_HALF_UP) * tick_size).quantize(
        Decimal(1).scaleb(-spec.digits), ROUND_HALF_UP))
    if price <= 0:
        return f"skipped: {level.upper()} {usd:g} USD away would be at {price:g}, not a price"
    return price


def _fmt(price: float, digits: int) -> str:
    return f"{price:.{digits}f}" if price else "none"


def _head(pos: PositionData, digits: int) -> str:
    return f"#{pos.ticket} {pos.symbol} {pos.side.upper()} {pos.volume:g} @ {pos.price_open:.{digits}f}"


class _Modify:
    """SL/TP of one position (TRADE_ACTION_SLTP); done when the broker shows the new levels."""

    def __init__(self, desk: Desk, pos: PositionData, sl: float, tp: float) -> None:
        self.desk, self.pos, self.sl, self.tp = desk, pos, sl, tp

    def refusal(self) -> str | None:
        return None

    def request(self, price: float, filling: int) -> TradeRequest:
        return TradeRequest(action=mt5.TRADE_ACTION_SLTP, symbol=self.pos.symbol, position=self.pos.ticket,
                            sl=self.sl, tp=self.tp, magic=self.pos.magic)

    def before_send(self, attempt: int) -> None: ...

    def on_retry(self, retcode: int | None, text: str) -> None:
        log.info("modify of #%d: %s; trying again", self.pos.ticket, text)

    def on_unknown(self, retcode: int | None, text: str) -> None:
        log.warning("modify of #%d: %s; asking the broker", self.pos.ticket, text)

    def locate(self) -> Generator[Step, Reply, Located | None]:
        positions = yield from self.desk.positions(self.pos.symbol, self.pos.magic)
        for pos in positions or ():
            if pos.ticket == self.pos.ticket and (pos.sl, pos.tp) == (self.sl, self.tp):
                return Located(pos.ticket, None, None, "the broker shows the new levels")
        return None


class _Close:
    """A close of one whole position: the opposite deal with ``position`` set."""

    def __init__(self, desk: Desk, pos: PositionData) -> None:
        self.desk, self.pos = desk, pos

    def refusal(self) -> str | None:
        return None

    def request(self, price: float, filling: int) -> TradeRequest:
        pos = self.pos
        rules = self.desk.rules.get(pos.symbol)
        return TradeRequest(
            action=mt5.TRADE_ACTION_DEAL, symbol=pos.symbol, volume=pos.volume,
            type=mt5.ORDER_TYPE_SELL if pos.side == "buy" else mt5.ORDER_TYPE_BUY, price=price,
            deviation=rules.deviation_points if rules else 0, magic=pos.magic, comment=f"close #{pos.ticket}"[:31],
            position=pos.ticket, type_time=mt5.ORDER_TIME_GTC, type_filling=filling)

    def before_send(self, attempt: int) -> None: ...

    def on_retry(self, retcode: int | None, text: str) -> None:
        log.info("close of #%d: %s; trying again", self.pos.ticket, text)

    def on_unknown(self, retcode: int | None, text: str) -> None:
        log.warning("close of #%d: %s; asking the broker", self.pos.ticket, text)

    def locate(self) -> Generator[Step, Reply, Located | None]:
        pos = self.pos
        positions = yield from self.desk.positions(pos.symbol, pos.magic)
        if positions is None or any(p.ticket == pos.ticket for p in positions):
            return None
        deals = yield from self.desk.deals(pos.time, pos.symbol, pos.magic)
        deal = next((d for d in deals or () if d.position_id == pos.ticket), None)
        return Located(pos.ticket, deal.price if deal else None, pos.volume, "the position is closed at the broker")


def set_protection(desk: Desk, command: SetProtection) -> Job:
    """/tek_prof (level tp) or /stop_ls (level sl): answered with one line per position."""
    name = command.level.upper()
    if command.symbol is not None and command.symbol not in desk.rules:
        _reply(desk, command.id, False, f"{name} not set: {command.symbol} is not a symbol we trade", [])
        return
    positions = yield from desk.positions(command.symbol)
    if positions is None:
        _reply(desk, command.id, False, f"{name} not set: the gateway did not answer; nothing changed", [])
        return
    ours = [p for p in positions if desk.ours(p)]
    specs: dict[str, SymbolSpec | None] = {}
    for symbol in sorted({p.symbol for p in ours}):
        specs[symbol] = yield from desk.spec(symbol, fresh=True)
    lines: list[CommandLine] = []
    for pos in ours:
        spec = specs[pos.symbol]
        if spec is None:
            lines.append(CommandLine(ok=False, text=f"#{pos.ticket} {pos.symbol}: no symbol spec from the gateway"))
            continue
        head, old = _head(pos, spec.digits), pos.tp if command.level == "tp" else pos.sl
        new = protection_price(side=pos.side, level=command.level, price_open=pos.price_open, volume=pos.volume,
                               usd=command.usd, spec=spec)
        if isinstance(new, str):
            lines.append(CommandLine(ok=False, text=f"{head}: {name} {_fmt(old, spec.digits)}; {new}"[:TEXT_MAX]))
            continue
        sl, tp = (new, pos.tp) if command.level == "sl" else (pos.sl, new)
        outcome = yield from execute(desk, _Modify(desk, pos, sl, tp), side=pos.side, price=pos.price_current,
                                     filling_bits=spec.filling_mode)
        change = f"{name} {_fmt(old, spec.digits)} -> {_fmt(new, spec.digits)}"
        verdict = "done" if outcome.done else f"refused: {outcome.text}"
        lines.append(CommandLine(ok=outcome.done, text=f"{head}: {change} {verdict}"[:TEXT_MAX]))
        _log(kind=f"modify_{command.level}", pos=pos, outcome=outcome, target=new, by=command.by)
    done = sum(line.ok for line in lines)
    where = f" on {command.symbol}" if command.symbol else ""
    summary = (f"{name} {command.usd:g} USD from the open: set on {done} of {len(lines)} position(s) of ours{where}"
               if lines else f"no open position of ours{where}: nothing to set")
    _reply(desk, command.id, done == len(lines), summary, lines)


def close_all(desk: Desk, command: CloseAll) -> Job:
    """The emergency close: every open position of ours, on one symbol or all."""
    if command.symbol is not None and command.symbol not in desk.rules:
        _reply(desk, command.id, False, f"nothing closed: {command.symbol} is not a symbol we trade", [])
        return
    positions = yield from desk.positions(command.symbol)
    if positions is None:
        _reply(desk, command.id, False, "nothing closed: the gateway did not answer", [])
        return
    lines: list[CommandLine] = []
    for pos in (p for p in positions if desk.ours(p)):
        spec = yield from desk.spec(pos.symbol)
        if spec is None:
            lines.append(CommandLine(ok=False, text=f"#{pos.ticket} {pos.symbol}: no symbol spec; not closed"))
            continue
        close_side: Side = "sell" if pos.side == "buy" else "buy"
        outcome = yield from execute(desk, _Close(desk, pos), side=close_side, price=pos.price_current,
                                     filling_bits=spec.filling_mode)
        ok = outcome.done or outcome.retcode == 10036  # already closed (by SL/TP meanwhile): the goal is reached
        price = outcome.located.price if outcome.located else (outcome.result.price if outcome.result else None)
        if outcome.done:
            verdict = f"closed at {_fmt(price, spec.digits)}" if price else "closed"
        else:
            verdict = "already closed" if ok else f"NOT closed: {outcome.text}"
        lines.append(CommandLine(ok=ok, text=f"{_head(pos, spec.digits)}: {verdict} "
                                             f"(floating {pos.profit:+.2f} before)"[:TEXT_MAX]))
        _log(kind="close", pos=pos, outcome=outcome, target=pos.price_current, by=command.by, spec=spec,
             side=close_side, fill=price)
    closed = sum(line.ok for line in lines)
    where = f" on {command.symbol}" if command.symbol else ""
    summary = (f"closed {closed} of {len(lines)} position(s) of ours{where}" if lines
               else f"no open position of ours{where}: nothing to close")
    _reply(desk, command.id, closed == len(lines), summary, lines)


def _reply(desk: Desk, parent: str, ok: bool, summary: str, lines: list[CommandLine]) -> None:
    log.info("command %s: %s", parent, summary)
    desk.emit(CommandReply(ts=desk.market_now, parent=parent, ok=ok, summary=summary[:TEXT_MAX], lines=tuple(lines)))


def _log(*, kind: str, pos: PositionData, outcome: Outcome, target: float, by: str, spec: SymbolSpec | None = None,
         side: Side | None = None, fill: float | None = None) -> None:
    points, money = slippage(side, target, fill, spec, pos.volume) if side else (0.0, 0.0)
    log_order(kind=kind, ticket=pos.ticket, symbol=pos.symbol, side=side or pos.side, status="done" if outcome.done
              else "refused", retcode=outcome.retcode, volume=pos.volume, requested=target, fill=fill,
              slippage_points=points, slippage_usd=money, latency_ms=round(outcome.latency_ms, 1),
              retries=outcome.retries, by=by, text=outcome.text)
