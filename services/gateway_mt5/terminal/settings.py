"""The real backends' settings, checked before anything starts, and how each one reaches its terminal.

``mt5`` imports the MetaTrader5 package (Windows only) when selected, never otherwise; ``mt5linux``
constructs ``mt5linux.MetaTrader5(host, port)``, an RPyC client of a bridge that executes any code it is
sent, so the host must be loopback. A missing package, a non-loopback bridge, bad market hours or missing
credentials are ``ConfigError``s: one line naming the fix, exit status 2, before any socket opens.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict

from services.gateway_mt5.hours import PRESET_HOURS, MarketHours
from services.gateway_mt5.terminal.api import Mt5Api
from shared.config import ConfigError, LoadedConfig, validate_table
from shared.secrets import Secrets

Backend = Literal["mt5", "mt5linux"]
MT5LINUX_PIN = "mt5linux>=1.0,<1.1"


@dataclass(frozen=True)
class TerminalSettings:
    """What the adapter needs to know, whichever way the terminal is reached."""

    backend: Backend
    symbols: tuple[str, ...]
    hours: Mapping[str, MarketHours]
    run_dir: Path
    path: str = ""
    portable: bool = False
    timeout_ms: int = 60_000
    init_deadline_s: float = 90.0
    connect_wait_s: float = 1.0
    """How long one connect() waits for the session before returning "connecting" to the loop."""
    call_deadline_s: float = 15.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    close_grace_s: float = 5.0
    deals_interval_s: float = 1.0
    host: str = "127.0.0.1"
    port: int = 18812


@dataclass(frozen=True)
class Credentials:
    """EXNESS_LOGIN / EXNESS_PASSWORD / EXNESS_SERVER; none of them appears in a repr (all are redacted)."""

    login: int = field(repr=False)
    server: str = field(repr=False)
    password: str = field(repr=False)


class _Hours(BaseModel):
    """Wraps [mt5.hours] so that its errors are named ``mt5.hours.<symbol>.<key>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mt5: dict[str, dict[str, MarketHours]]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:  # already in sys.modules without a spec (a stand-in): present all the same
        return True


def _check_package(backend: Backend, path: Path) -> None:
    if backend == "mt5":
        if not _installed("MetaTrader5"):
            raise ConfigError(
                f"{path}: broker.backend = 'mt5' needs the MetaTrader5 package, which exists only for Windows: "
                "pip install MetaTrader5 (on Linux use backend 'mt5linux' with a bridge under Wine)"
            )
        return
    if not _installed("mt5linux"):
        raise ConfigError(f"{path}: broker.backend = 'mt5linux' needs the mt5linux package: "
                          f"pip install '{MT5LINUX_PIN}'")
    version = importlib.metadata.version("mt5linux")
    major_minor = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if major_minor >= (1, 1):
        raise ConfigError(
            f"{path}: mt5linux {version} is installed; from 1.1 on MetaTrader5(host, port) starts Docker "
            f"containers instead of connecting to the bridge: pip install '{MT5LINUX_PIN}'"
        )


def terminal_settings(config: LoadedConfig) -> TerminalSettings:
    """The validated settings of the mt5/mt5linux backend named in config; ConfigError otherwise."""
    backend = config.system.broker.backend
    if backend not in ("mt5", "mt5linux"):
        raise ConfigError(f"{config.path}: broker.backend = {backend!r} is not a terminal backend")
    section = config.system.mt5
    if backend == "mt5linux" and not _is_loopback(section.host):
        raise ConfigError(
            f"{config.path}: mt5.host = {section.host!r} is invalid: the mt5linux bridge executes any code it "
            "is sent, so it must be loopback (127.0.0.1); reach a remote one through an SSH tunnel"
        )
    if section.reconnect_max_s < section.reconnect_min_s:
        raise ConfigError(f"{config.path}: mt5.reconnect_max_s = {section.reconnect_max_s} is below "
                          f"mt5.reconnect_min_s = {section.reconnect_min_s}; raise it")
    symbols = tuple(config.system.symbols)
    unknown = sorted(set(section.hours) - set(symbols))
    if unknown:
        raise ConfigError(f"{config.path}: mt5.hours.{unknown[0]} names a symbol not in [symbols] "
                          f"({', '.join(symbols)}); remove it or add the symbol")
    tables = validate_table(config.path, {"mt5": {"hours": section.hours}}, _Hours).mt5["hours"]
    hours: dict[str, MarketHours] = {}
    for symbol in symbols:
        if symbol in tables:
            hours[symbol] = tables[symbol]
        elif symbol in PRESET_HOURS:
            hours[symbol] = PRESET_HOURS[symbol]
        elif not config.symbols[symbol].symbol.market_open_24_5:
            hours[symbol] = MarketHours(always_open=True)
        else:
            raise ConfigError(f"{config.path}: mt5.hours.{symbol} is missing: MT5 has no trading-hours call, so "
                              f"add a [mt5.hours.{symbol}] table (always_open, weekend_closed, daily_break, "
                              "break_start_summer, break_start_winter, break_minutes, dst)")
    _check_package(backend, config.path)
    return TerminalSettings(
        backend=backend, symbols=symbols, hours=hours, run_dir=config.system.paths.run_dir,
        path=section.mt5_path, portable=section.mt5_portable, timeout_ms=section.mt5_timeout_ms,
        init_deadline_s=section.mt5_timeout_ms / 1000 + section.init_grace_s,
        call_deadline_s=section.call_timeout_s, reconnect_min_s=section.reconnect_min_s,
        reconnect_max_s=section.reconnect_max_s, close_grace_s=section.close_grace_s,
        host=section.host, port=section.port,
    )


def credentials(secrets: Secrets, backend: str) -> Credentials:
    """The three Exness secrets; ConfigError naming the missing variables (never a value)."""
    missing = [name for name in ("EXNESS_LOGIN", "EXNESS_PASSWORD", "EXNESS_SERVER") if not getattr(secrets, name)]
    if missing:
        raise ConfigError(f"broker.backend = {backend!r} logs in with EXNESS_LOGIN, EXNESS_PASSWORD and "
                          f"EXNESS_SERVER; set {', '.join(missing)} in the environment or .env")
    assert secrets.EXNESS_LOGIN is not None and secrets.EXNESS_PASSWORD is not None
    assert secrets.EXNESS_SERVER is not None
    return Credentials(login=secrets.EXNESS_LOGIN, server=secrets.EXNESS_SERVER,
                       password=secrets.EXNESS_PASSWORD.get_secret_value())


def api_factory(settings: TerminalSettings) -> Callable[[], Mt5Api]:
    """How to reach the terminal: called at every (re)connection, on the terminal thread.

    ``mt5``: the MetaTrader5 module itself (imported here, only when selected). ``mt5linux``: a fresh
    bridge client each time, so a broken RPyC connection is never reused.
    """
    if settings.backend == "mt5":
        return lambda: cast(Mt5Api, importlib.import_module("MetaTrader5"))

    def bridge() -> Mt5Api:
        module: Any = importlib.import_module("mt5linux")
        return cast(Mt5Api, module.MetaTrader5(host=settings.host, port=settings.port))

    return bridge
