"""The gateway's runner: binds the PUB and ROUTER sockets and drives GatewayCore from a poll loop."""

from __future__ import annotations

import argparse
import logging
import os

import zmq
from pydantic import BaseModel, ConfigDict

from services.gateway_mt5.broker import Broker
from services.gateway_mt5.core import GatewayCore
from services.gateway_mt5.lockstep import Lockstep, check_lockstep
from services.gateway_mt5.sim.broker import SimBroker
from services.gateway_mt5.sim.config import SimConfig
from services.gateway_mt5.sim.persist import SimStateError
from services.gateway_mt5.terminal.adapter import TerminalBroker
from services.gateway_mt5.terminal.lock import LockHeld
from services.gateway_mt5.terminal.settings import TerminalSettings, api_factory, credentials, terminal_settings
from shared.bus import Publisher, Replier
from shared.clock import Clock, LiveClock
from shared.config import ConfigError, LoadedConfig, validate_table
from shared.secrets import Secrets, load_secrets
from shared.service import EventLoop, drain

log = logging.getLogger("gateway_mt5")
SIM_STATE_FILE = "sim_broker.sqlite"
# Set by main.py for supervisord's programs: "false" when [deploy] gateway_here = false (see check_gateway).
GATEWAY_AUTOSTART_VARIABLE = "PORTFOLIO_GATEWAY_AUTOSTART"


class _SimTable(BaseModel):
    """Wraps the [sim] table so that its errors are named ``sim.<key>`` like every other key."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sim: SimConfig


def validate_backend_config(config: LoadedConfig) -> SimConfig | TerminalSettings:
    """Check the broker backend's own settings (main.py calls this before starting anything).

    ``mt5`` / ``mt5linux``: market hours, a loopback bridge and the package being installed (a missing
    one is a ConfigError naming what to install). The credentials are checked by ``make_broker``.
    """
    backend = config.system.broker.backend
    if backend == "sim":
        sim = validate_table(config.path, {"sim": config.system.sim}, _SimTable).sim
        check_lockstep(config, sim.speed, sim.max_bars_per_poll)
        return sim
    check_lockstep(config, None, None)
    return terminal_settings(config)


def make_broker(
    config: LoadedConfig, clock: Clock, secrets: Secrets | None = None, *, persist: bool = False,
) -> Broker:
    """The backend named in config. Relative data files of the simulator are read from paths.data_dir;
    with ``persist`` (the running gateway) its trade server survives a restart in state/sim_broker.sqlite.

    A real backend takes its single-instance locks here: a second gateway for the same terminal or
    account stops with a ConfigError (exit 2) before it opens any socket.
    """
    settings = validate_backend_config(config)
    if isinstance(settings, SimConfig):
        state = config.system.paths.state_dir / SIM_STATE_FILE if persist else None
        try:
            return SimBroker(settings, clock, data_dir=config.system.paths.data_dir, state_path=state)
        except SimStateError as exc:
            raise ConfigError(str(exc)) from None
    creds = credentials(secrets if secrets is not None else load_secrets(), settings.backend)
    try:
        return TerminalBroker(settings, creds, api_factory(settings), clock)
    except LockHeld as exc:
        raise ConfigError(f"broker.backend = {settings.backend!r}: {exc}") from None


def check_backend(config: LoadedConfig, secrets: Secrets) -> None:
    """Everything about the backend that can be wrong before a socket opens: its settings, the package
    being installed, a loopback bridge, market hours, and for a real terminal the three credentials.
    run_service (and main.py, before supervisord starts) turn a ConfigError into one line and exit 2."""
    settings = validate_backend_config(config)
    if isinstance(settings, TerminalSettings):
        credentials(secrets, settings.backend)


def check_gateway(config: LoadedConfig, secrets: Secrets) -> None:
    """``check_backend``, after a refusal to run under the supervisord of a machine that main.py started with
    ``[deploy] gateway_here = false`` (a hand-made ``ctl start gateway_mt5`` or Telegram's /restart there): the
    gateway of that setup runs on the other machine, which starts it without this variable."""
    if os.environ.get(GATEWAY_AUTOSTART_VARIABLE) == "false":
        raise ConfigError(f"{config.path}: [deploy] gateway_here = false: this machine does not run the gateway "
                          "(it runs next to MT5, docs/SECURITY.md); start it there, not here")
    check_backend(config, secrets)


def serve(config: LoadedConfig, secrets: Secrets, args: argparse.Namespace) -> None:
    clock = LiveClock()
    broker = make_broker(config, clock, secrets, persist=True)  # config errors surface here, before any socket
    settings = config.system.gateway
    core = GatewayCore(broker, settings, clock)
    core.connect()
    ctx = zmq.Context()
    publisher = Publisher(ctx, config.system.endpoint("gateway_pub"))
    replier = Replier(ctx, config.system.endpoint("gateway_rep"), name="gateway requests")

    lockstep = None
    if settings.lockstep_quiet_s > 0:
        lockstep = Lockstep(core, publisher.publish, settings.lockstep_quiet_s, settings.lockstep_callers)

    def on_request() -> None:
        def answer(item: tuple[str, object]) -> None:
            caller, request = item
            replier.reply(caller, core.handle_request(caller, request))  # type: ignore[arg-type]
            if lockstep is not None:
                lockstep.heard(caller, clock.monotonic())

        drain(replier.receive, answer, limit=100)

    def on_poll() -> None:
        if lockstep is not None:
            lockstep.poll(clock.monotonic())
            return
        for topic, message in core.poll():
            publisher.publish(topic, message)

    def on_heartbeat() -> None:
        publisher.publish(*core.heartbeat())

    def on_account() -> None:
        snapshot = core.account_snapshot()
        if snapshot is not None:
            publisher.publish(*snapshot)

    loop = EventLoop(clock)
    loop.on_readable(replier.socket, on_request)
    loop.every(settings.poll_interval_s, on_poll)
    loop.every(settings.heartbeat_interval_s, on_heartbeat)
    loop.every(settings.account_interval_s, on_account)
    log.info("publishing on %s, answering on %s", publisher.endpoint, config.system.endpoint("gateway_rep"))
    try:
        loop.run()
    finally:
        if isinstance(broker, TerminalBroker):
            broker.close()  # also releases the single-instance locks
        else:
            broker.shutdown()
        publisher.close()
        replier.close()
        ctx.term()
