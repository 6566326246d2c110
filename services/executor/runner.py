"""The executor's runner: plans from risk (PULL), order_send to the gateway (DEALER), reports to risk (PUSH)."""

from __future__ import annotations

import argparse
import logging

import zmq

from services.executor.core import ExecutorCore
from shared.bus import Puller, Pusher, Requester
from shared.clock import LiveClock
from shared.config import LoadedConfig
from shared.messages import Message, OrderPlan, SymbolSpecReply, SymbolSpecRequest
from shared.secrets import Secrets
from shared.service import EventLoop, drain

log = logging.getLogger("executor")
IDENTITY = "executor"  # the only caller the gateway lets change broker state


def serve(config: LoadedConfig, secrets: Secrets, args: argparse.Namespace) -> None:
    clock = LiveClock()
    settings = config.system.executor
    core = ExecutorCore(clock)
    ctx = zmq.Context()
    plans = Puller(ctx, config.system.endpoint("executor_in"), name="executor plans")
    reports = Pusher(ctx, config.system.endpoint("risk_in"))
    gateway = Requester(ctx, config.system.endpoint("gateway_rep"), IDENTITY)

    def send(messages: list[Message]) -> None:
        for message in messages:
            reports.send(message)

    def fetch_specs() -> None:
        for symbol in config.symbols:
            if symbol in core.specs:
                continue
            reply = gateway.request(SymbolSpecRequest(ts=core.market_now, symbol=symbol), timeout_s=1.0)
            if isinstance(reply, SymbolSpecReply):
                core.set_spec(reply.spec)
                log.info("spec %s: filling_mode %d, volume step %s", symbol, reply.spec.filling_mode,
                         reply.spec.volume_step)

    def on_plans() -> None:
        def accept(message: Message) -> None:
            if isinstance(message, OrderPlan):
                if message.symbol not in core.specs:
                    fetch_specs()
                send(core.accept(message))
            else:
                plans.drops.drop("unexpected_type", type(message).__name__)

        drain(plans.receive, accept)
        work()

    def work() -> None:
        """Send queued legs one at a time until the queue is empty (each waits for its reply)."""
        while (request := core.next_request()) is not None:
            reply = gateway.request(request, timeout_s=settings.request_timeout_s)
            send(core.on_reply(reply))

    def on_status() -> None:
        reports.send(core.status())

    fetch_specs()
    loop = EventLoop(clock)
    loop.on_readable(plans.socket, on_plans)
    loop.every(settings.status_interval_s, on_status)
    loop.every(5.0, fetch_specs)
    log.info("taking plans on %s", config.system.endpoint("executor_in"))
    try:
        loop.run()
    finally:
        plans.close()
        gateway.close()
        reports.close()
        ctx.term()
