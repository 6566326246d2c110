"""Opening a session with a terminal: initialize and log in, check the account, select the symbols and
read their specs. One job, run on the terminal thread, so the gateway's loop never waits for it.

initialize() can take a minute and more (it may start the terminal, which then logs in to the trade
server), so the adapter starts this job and keeps serving: heartbeats say "disconnected" and requests
get a prompt "broker_unavailable" until the session is open or its deadline has passed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeVar

from services.gateway_mt5.broker import BrokerUnavailable
from services.gateway_mt5.terminal import convert
from services.gateway_mt5.terminal.api import Mt5Api
from services.gateway_mt5.terminal.settings import Credentials, TerminalSettings
from shared import mt5
from shared.messages import SymbolSpec

log = logging.getLogger(__name__)
R = TypeVar("R")


@dataclass(frozen=True)
class Session:
    """An initialised, logged-in terminal and the specs of its symbols, read just now."""

    api: Mt5Api
    specs: dict[str, SymbolSpec]


def _error(api: Mt5Api) -> str:
    code, text = api.last_error()
    return f"last_error ({int(code)}, {str(text)!r})"


def _need(api: Mt5Api, value: R | None, what: str) -> R:
    if value is None:
        raise BrokerUnavailable(f"{what} returned None: {_error(api)}")
    return value


def open_session(api: Mt5Api, settings: TerminalSettings, credentials: Credentials) -> Session:
    """shutdown (resets the IPC channel after a lost link), initialize with the credentials, then check
    the account is EXNESS_LOGIN's, select every symbol in Market Watch and read its spec.

    BrokerUnavailable says what failed; no secret is ever part of a message.
    """
    api.shutdown()
    kwargs: dict[str, Any] = {"login": credentials.login, "password": credentials.password,
                              "server": credentials.server, "timeout": settings.timeout_ms,
                              "portable": settings.portable}
    ok = api.initialize(settings.path, **kwargs) if settings.path else api.initialize(**kwargs)
    if not ok:
        raise BrokerUnavailable(f"initialize failed: {_error(api)}")
    account = _need(api, api.account_info(), "account_info")
    if int(account.login) != credentials.login:
        raise BrokerUnavailable("the terminal is logged into another account than EXNESS_LOGIN")
    if int(account.margin_mode) != mt5.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING:
        log.error("%s: the account is not a hedging account (margin_mode %s): closing by ticket and several "
                  "positions per symbol assume hedging", settings.backend, int(account.margin_mode))
    terminal = _need(api, api.terminal_info(), "terminal_info")
    if not bool(terminal.connected):
        log.warning("%s: the terminal is not connected to the trade server yet", settings.backend)
    if not bool(terminal.trade_allowed):
        log.warning("%s: AutoTrading is off in the terminal: orders will be refused (10027)", settings.backend)
    specs: dict[str, SymbolSpec] = {}
    for symbol in settings.symbols:
        if not api.symbol_select(symbol, True):  # a symbol not in Market Watch has no quotes (MT5-FACTS)
            raise BrokerUnavailable(f"symbol_select({symbol!r}) failed: {_error(api)}")
        specs[symbol] = convert.symbol_spec(_need(api, api.symbol_info(symbol), f"symbol_info({symbol!r})"))
    return Session(api, specs)
