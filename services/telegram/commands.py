"""The owner's commands: one registry, and the work behind each command (asking risk, gateway, executor
and supervisord), with no Telegram and no ZeroMQ in sight.

``OwnerCommands.commands()`` is the one list the bot registers behind its guard and that /help and the
command menu are generated from; ``buttons()`` is the same for inline-keyboard presses. Peers are
reached through ``Ask`` functions (a request and a deadline in, the reply or None out), so the runner
decides the sockets and tests drive real ones.

Safety rules kept here: arguments are checked before anything is sent (``args``); a command that
changes broker state (close all) or restarts a vital process waits for a confirmation button
(``confirm``); an executor command that gets no answer is never resent: the owner is told it may still
be carried out and to check /positions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from services.telegram.args import parse_protection, parse_service, parse_symbol_or_all
from services.telegram.confirm import CANCEL_PREFIX, CONFIRM_PREFIX, Confirmations, on_cancel, on_confirm
from services.telegram.core import AnswerText, BotReply, Button, TelegramCore, format_help, utc_day
from services.telegram.supervisor import SupervisorError
from services.telegram.views import (
    format_balance,
    format_command_reply,
    format_pnl,
    format_positions,
        format_status,
    format_switch,
    peer_problem,
    pnl_window_start,
)
from services.telegram.watch import ProcessInfo, describe_state
from shared.config import TelegramSection
from shared.messages import (
    AccountReply,
    AccountRequest,
    AnyMessage,
    CloseAll,
    CommandReply,
    DealClosed,
    DealsReply,
    DealsRequest,
    Message,
    PositionData,
    PositionsReply,
    PositionsRequest,
    Reply,
    RiskStateReply,
    SetProtection,
    SetTrading,
)

Ask = Callable[[Message, float], Awaitable[AnyMessage | None]]
CommandAnswer = Callable[[Sequence[str]], Coroutine[Any, Any, AnswerText]]
ButtonAnswer = Callable[[str], Coroutine[Any, Any, AnswerText]]
R = TypeVar("R", bound=Reply)

TRADING_PREFIX = "trade"
CONFIRM_RESTART = {
    "gateway_mt5": "every service loses market data and the broker link until it is back",
    "executor": "no order is sent while it is down (it reconciles with the broker when it is back)",
    "risk": "no order is planned while it is down (its day state is persisted)",
}
SELF_SERVICE = "telegram"


@dataclass(frozen=True, slots=True)
class Command:
    """One bot command: its name (without '/'), what /help says of it, and the function answering it."""

    name: str
    description: str
    answer: CommandAnswer


@dataclass(frozen=True, slots=True)
class ButtonAction:
    """What a press on a button whose callback data is 'prefix:rest' does (``answer(rest)``)."""

    prefix: str
    answer: ButtonAnswer


def with_help(commands: Sequence[Command]) -> list[Command]:
    """``commands`` plus /help, whose text lists exactly these commands (and itself)."""
    every: list[Command] = []

    async def answer_help(_args: Sequence[str]) -> str:
        return format_help((command.name, command.description) for command in every)

    every.extend([*commands, Command("help", "this list", answer_help)])
    return every


class Supervisor(Protocol):
    """What the commands need from supervisord (``supervisor.SupervisorClient``)."""

    async def processes(self) -> list[ProcessInfo]: ...

    async def restart(self, name: str) -> tuple[ProcessInfo, ProcessInfo]: ...


@dataclass(frozen=True, slots=True)
class Peers:
    """How to reach each peer: risk_rep, gateway_rep and executor_rep requests, and supervisord."""

    risk: Ask
    gateway: Ask
    executor: Ask
    supervisor: Supervisor


def day_start(ts: float) -> float:
    """00:00 UTC of the day of ``ts``."""
    return datetime.fromtimestamp(ts, UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def switch_button(enabled: bool) -> Button:
    """The button that flips the trading switch from ``enabled``."""
    return Button("Stop trading", f"{TRADING_PREFIX}:off") if enabled else Button("Start trading",
                                                                                  f"{TRADING_PREFIX}:on")


class OwnerCommands:
    """Every command the owner has, answered from the peers' replies."""

    def __init__(self, core: TelegramCore, peers: Peers, settings: TelegramSection, *, our_magics: frozenset[int],
                 confirmations: Confirmations, on_restart: Callable[[str], None] = lambda _name: None) -> None:
        self.core = core
        self.peers = peers
        self.settings = settings
        self.our_magics = our_magics
        self.confirmations = confirmations
        self.on_restart = on_restart
        self.symbols = core.symbols

    def commands(self) -> list[Command]:
        """The registry: handlers, /help and the menu all come from this list."""
        return with_help([
            Command("start", "the trading switch, with Start / Stop buttons", self.menu),
            Command("status", "per symbol regime, data, last signal, positions, today's P&L; switch; services",
                    self.status),
            Command("start_trading", "allow new orders (risk's switch, persisted)", self.start_trading),
            Command("stop_trading", "stop all new orders; processes and open positions stay", self.stop_trading),
            Command("balance", "balance, equity, margin", self.balance),
            Command("positions", "[SYMBOL] open positions with SL, TP and floating P&L", self.positions),
            Command("pnl", "realised P&L today and per day for 7 days, from the deals", self.pnl),
            Command("tek_prof", "USD [SYMBOL] set TP of our positions USD from the open price", self.tek_prof),
            Command("stop_ls", "USD [SYMBOL] set SL of our positions USD from the open price", self.stop_ls),
            Command("closeall", "[SYMBOL] close all our positions (asks to confirm)", self.closeall),
            Command("restart", "SERVICE restart one process (gateway, executor, risk: asks to confirm)",
                    self.restart),
        ])

    def buttons(self) -> list[ButtonAction]:
        """Every inline button the answers carry."""
        async def trading(rest: str) -> AnswerText:
            if rest not in ("on", "off"):
                return "That button is no longer valid."
            return await self.set_trading(rest == "on")

        async def confirm(token: str) -> AnswerText:
            return await on_confirm(self.confirmations, token)

        async def cancel(token: str) -> AnswerText:
            return await on_cancel(self.confirmations, token)

        return [ButtonAction(TRADING_PREFIX, trading), ButtonAction(CONFIRM_PREFIX, confirm),
                ButtonAction(CANCEL_PREFIX, cancel)]

    # ---- asking peers ----------------------------------------------------------------------------
    async def _get(self, peer: str, request: Message, expected: type[R]) -> R | str:
        """The reply of type ``expected`` from risk or the gateway, or the text saying why there is none."""
        ask, timeout = (self.peers.risk if peer == "risk" else self.peers.gateway), self.settings.request_timeout_s
        reply = await ask(request, timeout)
        if isinstance(reply, Reply):
            self.core.observe(reply)
        return reply if isinstance(reply, expected) else peer_problem(peer, reply, timeout)

    async def _deals(self, window_start: Callable[[float], float]) -> tuple[list[DealClosed], float] | str:
        """Exit deals since ``window_start(market now)``, and the gateway's market time they are relative to.

        If our idea of market time was ahead of the gateway's (nothing heard from risk yet), the window is
        asked again from the gateway's own time.
        """
        since = window_start(self.core.market_now())
        reply = await self._get("gateway", DealsRequest(ts=self.core.market_now(), since=since), DealsReply)
        if isinstance(reply, str):
            return reply
        reference = reply.ts or self.core.market_now()
        if window_start(reference) < since:
            reply = await self._get("gateway", DealsRequest(ts=reference, since=window_start(reference)),
                                    DealsReply)
            if isinstance(reply, str):
                return reply
        return list(reply.deals), reference

    async def _positions(self, symbol: str | None = None) -> list[PositionData] | str:
        reply = await self._get("gateway", PositionsRequest(ts=self.core.market_now(), symbol=symbol),
                                PositionsReply)
        return reply if isinstance(reply, str) else list(reply.positions)

    async def _services(self) -> list[ProcessInfo] | str:
        try:
            return await self.peers.supervisor.processes()
        except SupervisorError as exc:
            return str(exc)

    # ---- the switch ------------------------------------------------------------------------------
    async def menu(self, _args: Sequence[str]) -> AnswerText:
        """/start, which Telegram sends when a chat with the bot opens: it must never switch anything on,
        so it only shows the switch and its buttons."""
        reply = await self._get("risk", self.core.status_request(), RiskStateReply)
        state = reply if isinstance(reply, str) else format_switch(reply.state)
        buttons = ((switch_button(False), switch_button(True)),)
        return BotReply(f"{state}\nPress a button to switch trading; /help lists every command.", buttons)

    async def start_trading(self, _args: Sequence[str]) -> AnswerText:
        return await self.set_trading(True)

    async def stop_trading(self, _args: Sequence[str]) -> AnswerText:
        return await self.set_trading(False)

    async def set_trading(self, enabled: bool) -> AnswerText:
        """Risk's switch; the answer is what risk says it holds now, not what we asked."""
        request = SetTrading(ts=self.core.market_now(), enabled=enabled, by=self.core.owner_tag)
        reply = await self._get("risk", request, RiskStateReply)
        if isinstance(reply, str):
            return f"Trading switch NOT confirmed: {reply}\nCheck /status before trying again."
        state = reply.state
        if state.trading_enabled != enabled:
            return f"Risk did not switch. {format_switch(state)}"
        meaning = ("new signals may open orders." if enabled else
                   "no new orders. The processes keep running; open positions keep their SL/TP (/closeall "
                   "closes them).")
        return BotReply(f"Trading is now {'ON' if enabled else 'OFF'}: {meaning}\n{format_switch(state)}",
                        ((switch_button(enabled),),))

    # ---- reading ---------------------------------------------------------------------------------
    async def _positions_and_today(self) -> tuple[list[PositionData] | str, tuple[list[DealClosed], float] | str]:
        positions = await self._positions()
        if isinstance(positions, str):  # a silent gateway costs one timeout, not two
            return positions, positions
        return positions, await self._deals(day_start)

    async def status(self, _args: Sequence[str]) -> AnswerText:
        """Everything at once: risk, the gateway and supervisord are asked concurrently; a silent one is
        named in its part of the answer and costs at most one timeout."""
        risk, (positions, deals), services = await asyncio.gather(
            self._get("risk", self.core.status_request(), RiskStateReply), self._positions_and_today(),
            self._services())
        gateway_problem = next((p for p in (positions, deals) if isinstance(p, str)), "")
        text = format_status(
            None if isinstance(risk, str) else risk.state, self.symbols,
            risk_problem=risk if isinstance(risk, str) else "",
            positions=None if isinstance(positions, str) else positions,
            deals=None if isinstance(deals, str) else deals[0],
            today="" if isinstance(deals, str) else utc_day(deals[1]),
            gateway_problem=gateway_problem,
            services=None if isinstance(services, str) else services,
            services_problem=services if isinstance(services, str) else "")
        if isinstance(risk, str):
            return text
        return BotReply(text, ((switch_button(risk.state.trading_enabled),),))

    async def balance(self, _args: Sequence[str]) -> AnswerText:
        reply = await self._get("gateway", AccountRequest(ts=self.core.market_now()), AccountReply)
        return reply if isinstance(reply, str) else format_balance(reply.account)

    async def positions(self, args: Sequence[str]) -> AnswerText:
        symbol = parse_symbol_or_all("positions", args, self.symbols)
        positions = await self._positions(symbol)
        return positions if isinstance(positions, str) else format_positions(positions, self.our_magics, symbol)

    async def pnl(self, _args: Sequence[str]) -> AnswerText:
        deals = await self._deals(pnl_window_start)
        if isinstance(deals, str):
            return deals
        positions = await self._positions()
        return format_pnl(deals[0], deals[1], None if isinstance(positions, str) else positions)

    # ---- acting through the executor -------------------------------------------------------------
    async def _executor(self, request: Message) -> str:
        """An owner command to the executor. Never resent on silence: it may have been carried out."""
        timeout = self.settings.command_timeout_s
        reply = await self.peers.executor(request, timeout)
        if isinstance(reply, CommandReply):
            return format_command_reply(reply)
        if reply is None:
            return (f"No answer from the executor within {timeout:g} s. The command may still be carried out: "
                    "check /positions before repeating it.")
        return peer_problem("executor", reply, timeout)

    async def tek_prof(self, args: Sequence[str]) -> AnswerText:
        return await self._protection("tek_prof", "tp", "take profit", args)

    async def stop_ls(self, args: Sequence[str]) -> AnswerText:
        return await self._protection("stop_ls", "sl", "stop loss", args)

    async def _protection(self, command: str, level: str, what: str, args: Sequence[str]) -> AnswerText:
        usd, symbol = parse_protection(command, what, args, self.symbols, self.settings.max_protection_usd)
        request = SetProtection(ts=self.core.market_now(), level="tp" if level == "tp" else "sl", usd=usd,
                                symbol=symbol, by=self.core.owner_tag)
        return await self._executor(request)

    async def closeall(self, args: Sequence[str]) -> AnswerText:
        """Only asks: the CloseAll leaves when the owner presses Confirm (once, before it expires)."""
        symbol = parse_symbol_or_all("closeall", args, self.symbols)
        where = symbol or "every symbol"
        positions = await self._positions(symbol)
        if isinstance(positions, str):
            listing = f"Open positions unknown ({positions})."
        else:
            ours = [p for p in positions if p.magic in self.our_magics]
            listing = f"Open positions of ours: {len(ours)}, floating {sum(p.profit + p.swap for p in ours):+,.2f}."

        async def close() -> AnswerText:
            request = CloseAll(ts=self.core.market_now(), symbol=symbol, by=self.core.owner_tag)
            return await self._executor(request)

        return self.confirmations.ask(f"Close ALL our positions on {where}?\n{listing}", f"close all on {where}",
                                      close, "Close all")

    # ---- supervisord -----------------------------------------------------------------------------
    async def restart(self, args: Sequence[str]) -> AnswerText:
        """A strategy restarts at once; gateway, executor and risk after a confirmation; never ourselves."""
        services = await self._services()
        if isinstance(services, str):
            return f"Cannot restart anything: {services}"
        name = parse_service(args, [info.name for info in services])
        if name == SELF_SERVICE:
            return ("I do not restart myself (the answer would be lost mid-way). On the machine: "
                    "python main.py ctl restart telegram")

        async def restart() -> AnswerText:
            self.on_restart(name)
            try:
                before, after = await self.peers.supervisor.restart(name)
            except SupervisorError as exc:
                return f"Restart of {name} failed: {exc}"
            return f"Restarted {name}: pid {before.pid} -> {after.pid}, now {describe_state(after)}."

        if name in CONFIRM_RESTART:
            return self.confirmations.ask(f"Restart {name}? While it restarts, {CONFIRM_RESTART[name]}.",
                                          f"restart of {name}", restart, f"Restart {name}")
        return await restart()

