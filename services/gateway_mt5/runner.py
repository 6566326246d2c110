"""The gateway's runner: binds the PUB and ROUTER sockets and drives GatewayCore from a poll loop."""

from __future__ import annotations

import argparse
import logging

import zmq
from pydantic import BaseModel, ConfigDict

from services.gateway_mt5.broker import Broker
from services.gateway_mt5.core import GatewayCore
from services.gateway_mt5.sim.broker import SimBroker
from services.gateway_mt5.sim.config import SimConfig
from shared.bus import Publisher, Replier
from shared.clock import Clock, LiveClock
from shared.config import ConfigError, LoadedConfig, validate_table
from shared.secrets import Secrets
from shared.service import EventLoop, drain

log = logging.getLogger("gateway_mt5")


class _SimTable(BaseModel):
    """Wraps the [sim] table so that its errors are named ``sim.<key>`` like every other key."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sim: SimConfig


def validate_backend_config(config: LoadedConfig) -> SimConfig | None:
    """Check the broker backend's own settings (main.py calls this before starting anything)."""
    backend = config.system.broker.backend
    if backend == "sim":
        return validate_table(config.path, {"sim": config.system.sim}, _SimTable).sim
    raise ConfigError(
        f"{config.path}: broker.backend = {backend!r} is not available in this build yet (the MetaTrader5 "
        "and mt5linux adapters arrive with the gateway issue); use 'sim'"
    )


def make_broker(config: LoadedConfig, clock: Clock) -> Broker:
    """The backend named in config. Relative data files of the simulator are read from paths.data_dir."""
    sim_config = validate_backend_config(config)
    assert sim_config is not None
    return SimBroker(sim_config, clock, data_dir=config.system.paths.data_dir)


def serve(config: LoadedConfig, secrets: Secrets, args: argparse.Namespace) -> None:
    clock = LiveClock()
    broker = make_broker(config, clock)  # config errors surface here, before any socket
    settings = config.system.gateway
    core = GatewayCore(broker, settings, clock)
    core.connect()
    ctx = zmq.Context()
    publisher = Publisher(ctx, config.system.endpoint("gateway_pub"))
    replier = Replier(ctx, config.system.endpoint("gateway_rep"), name="gateway requests")

    def on_request() -> None:
        def answer(item: tuple[str, object]) -> None:
            caller, request = item
            replier.reply(caller, core.handle_request(caller, request))  # type: ignore[arg-type]

        drain(replier.receive, answer, limit=100)

    def on_poll() -> None:
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
        broker.shutdown()
        publisher.close()
        replier.close()
        ctx.term()
