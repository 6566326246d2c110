"""The owner's answers, formatted: status, balance, positions, P&L, command outcomes, services.

Pure functions from the replies of risk, the gateway, the executor and supervisord to plain text. A
peer that did not answer (None) or answered an error gets one line that says so and what it means,
never an empty or misleading answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from services.telegram.core import (
    REGIME_MEANING,
    format_money,
    format_percent,
    format_price,
    format_utc,
    utc_day,
)
from services.telegram.watch import ProcessInfo, describe_state
from shared.messages import (
    AccountSnapshot,
    CommandReply,
    DealClosed,
    ErrorReply,
    PositionData,
    RiskState,
    SymbolRiskState,
)

PNL_DAYS = 7
DAY_S = 86_400


def peer_problem(peer: str, reply: object | None, timeout_s: float) -> str:
    """Why there is no usable answer from ``peer``: silent, an error, or an unexpected reply."""
    if reply is None:
        return f"{peer} not answering (waited {timeout_s:g} s). Is the {peer} process running?"
    if isinstance(reply, ErrorReply):
        return f"{peer} could not answer: {reply.code}: {reply.text}"
    return f"{peer} answered with an unexpected {type(reply).__name__}."


def format_switch(state: RiskState) -> str:
    """'Trading: ON (set by telegram:1111)'."""
    by = f" (set by {state.trading_by})" if state.trading_by else ""
    return f"Trading: {'ON' if state.trading_enabled else 'OFF'}{by}"


def _signal_text(state: SymbolRiskState) -> str:
    if state.last_signal_confidence is None:
        return "none yet"
    side = f"{state.last_signal_side.upper()} " if state.last_signal_side else ""
    when = f" at {format_utc(state.last_signal_at)}" if state.last_signal_at is not None else ""
    return f"{side}{format_percent(state.last_signal_confidence)}{when}"


def _risk_lines(symbol: str, state: SymbolRiskState) -> list[str]:
    data = "ok" if state.data_ok else f"NOT ok ({state.data_reason})"
    locked = ", TRADING LOCKED (hard stop)" if state.trading_locked else ""
    return [f"{symbol}: regime {state.regime} ({REGIME_MEANING.get(state.regime, '')}){locked}",
            f"  data {data}",
            f"  last signal {_signal_text(state)}"]


def realised_by_day(deals: Sequence[DealClosed]) -> dict[tuple[str, str], tuple[float, int]]:
    """(UTC day, symbol) -> (realised P&L, exit deals): profit + swap + commission + fee of exit deals."""
    totals: dict[tuple[str, str], tuple[float, int]] = defaultdict(lambda: (0.0, 0))
    for deal in deals:
        if deal.entry == 0:  # an entry deal realises nothing
            continue
        total, count = totals[(utc_day(deal.time), deal.symbol)]
        totals[(utc_day(deal.time), deal.symbol)] = (total + deal.net, count + 1)
    return dict(totals)


def format_status(state: RiskState | None, symbols: Sequence[str], *, risk_problem: str = "",
                  positions: Sequence[PositionData] | None = None, deals: Sequence[DealClosed] | None = None,
                  today: str = "", gateway_problem: str = "",
                  services: Sequence[ProcessInfo] | None = None, services_problem: str = "") -> str:
    """The /status answer: switch and day, then per symbol regime, data, signal, positions and today's P&L,
    then the services. Each part that could not be read says why instead."""
    lines = [risk_problem] if state is None else [
        format_switch(state),
        f"Day return: {format_percent(state.day_return, signed=True)} "
        f"(day start balance {state.day_start_balance:,.2f})",
    ]
    known = state.symbols if state is not None else {}
    order = [s for s in symbols] + sorted(s for s in known if s not in symbols)
    realised = realised_by_day(deals) if deals is not None else {}
    for symbol in order:
        lines.append("")
        if symbol in known:
            lines.extend(_risk_lines(symbol, known[symbol]))
        elif state is not None:
            lines.append(f"{symbol}: not reported by risk")
        else:
            lines.append(f"{symbol}:" if positions is not None or deals is not None else f"{symbol}: unknown")
        if positions is not None:
            mine = [p for p in positions if p.symbol == symbol]
            floating = sum(p.profit + p.swap for p in mine)
            lines.append(f"  open positions {len(mine)} | floating {format_money(floating)}")
        elif symbol in known:
            lines.append(f"  open positions {known[symbol].open_positions}")
        if deals is not None:
            total, count = realised.get((today, symbol), (0.0, 0))
            lines.append(f"  today realised {format_money(total)} ({count} deal{'s' if count != 1 else ''})")
    if gateway_problem:
        lines.extend(["", f"Positions and P&L unknown: {gateway_problem}"])
    lines.extend(["", *format_services(services, services_problem).splitlines()])
    return "\n".join(lines)


def format_services(services: Sequence[ProcessInfo] | None, problem: str = "") -> str:
    """Which services are up, from supervisord."""
    if services is None:
        return f"Services: unknown ({problem})"
    up = sum(info.state == "RUNNING" for info in services)
    lines = [f"Services: {up}/{len(services)} running"]
    lines.extend(f"  {info.name} {describe_state(info)}" for info in services)
    return "\n".join(lines)


def format_balance(account: AccountSnapshot) -> str:
    """The /balance answer (no login: it is one of the secrets)."""
    level = f"{account.margin_level:,.2f} %" if account.margin > 0 else "n/a (no margin used)"
    return "\n".join([
        f"Balance {account.balance:,.2f} {account.currency}",
        f"Equity {account.equity:,.2f} | floating {format_money(account.profit)}",
        f"Margin {account.margin:,.2f} | free {account.margin_free:,.2f} | level {level}",
        f"Leverage 1:{account.leverage}",
    ])


def _level(value: float) -> str:
    return format_price(value) if value > 0 else "none"


def format_positions(positions: Sequence[PositionData], our_magics: frozenset[int],
                     symbol: str | None = None) -> str:
    """The /positions answer: each with side, lots, open, SL, TP, floating P&L; then the total."""
    where = f" on {symbol}" if symbol else ""
    if not positions:
        return f"No open positions{where}."
    floating = sum(p.profit + p.swap for p in positions)
    lines = [f"Open positions{where}: {len(positions)} | floating {format_money(floating)}"]
    for p in sorted(positions, key=lambda p: (p.symbol, p.time, p.ticket)):
        foreign = "" if p.magic in our_magics else f" [not ours: magic {p.magic}]"
        swap = f" (swap {format_money(p.swap)})" if p.swap else ""
        lines.append(f"#{p.ticket} {p.symbol} {p.side.upper()} {format_price(p.volume)} lots, "
                     f"open {format_price(p.price_open)}{foreign}")
        lines.append(f"  SL {_level(p.sl)} | TP {_level(p.tp)} | now {format_price(p.price_current)} | "
                     f"P&L {format_money(p.profit)}{swap}")
    return "\n".join(lines)


def pnl_window_start(reference_ts: float) -> float:
    """00:00 UTC of the first of the PNL_DAYS days ending with the day of ``reference_ts``."""
    day = datetime.fromtimestamp(reference_ts, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day - timedelta(days=PNL_DAYS - 1)).timestamp()


def format_pnl(deals: Sequence[DealClosed], reference_ts: float,
               positions: Sequence[PositionData] | None = None) -> str:
    """The /pnl answer: realised P&L per UTC day (today first) for the last PNL_DAYS days, per symbol."""
    realised = realised_by_day(deals)
    start = pnl_window_start(reference_ts)
    days = [utc_day(start + i * DAY_S) for i in range(PNL_DAYS)][::-1]
    lines = ["Realised P&L by UTC day (exit deals: profit + swap + commission + fee)"]
    grand, grand_count = 0.0, 0
    for index, day in enumerate(days):
        per_symbol = sorted((symbol, value) for (d, symbol), value in realised.items() if d == day)
        total = sum(value[0] for _, value in per_symbol)
        count = sum(value[1] for _, value in per_symbol)
        grand, grand_count = grand + total, grand_count + count
        label = f"{day} (today)" if index == 0 else day
        detail = ", ".join(f"{symbol} {format_money(value[0])}" for symbol, value in per_symbol)
        lines.append(f"{label}: {format_money(total)} ({count} deal{'s' if count != 1 else ''})"
                     + (f" - {detail}" if detail else ""))
    lines.append(f"{PNL_DAYS} days: {format_money(grand)} ({grand_count} deals)")
    if positions is not None:
        floating = sum(p.profit + p.swap for p in positions)
        lines.append(f"Floating now: {format_money(floating)} ({len(positions)} open)")
    return "\n".join(lines)


def format_command_reply(reply: CommandReply) -> str:
    """The executor's outcome of an owner command, line by line (old and new level per position)."""
    lines = [reply.summary if reply.ok else f"NOT fully done: {reply.summary}"]
    lines.extend(f"{'OK' if line.ok else 'FAILED'} {line.text}" for line in reply.lines)
    return "\n".join(lines)
