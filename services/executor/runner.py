"""The executor's runner: the sockets around ``ExecutorCore``, nothing else.

- PULL ``executor_in``: order plans from risk.
- ROUTER ``executor_rep``: the owner's commands (SetProtection, CloseAll) from Telegram, each answered
  with a CommandReply when its orders are done; anything else gets an ErrorReply at once.
- DEALER (identity "executor", the only caller the gateway lets change broker state) -> ``gateway_rep``:
  the core's one request at a time, Lazy Pirate with ``request_timeout_s``.
- PUSH -> ``risk_in``: execution reports, adopted positions and the periodic ExecutorStatus.

Orders are logged one line each to Logs/order_execution.log. Fault injection for tests only: with
PORTFOLIO_EXECUTOR_CRASH_AT=<step> (a journal step, ``desk.CHECKPOINTS``) the process SIGKILLs itself
the first time it reaches that step, so a test can prove a restart neither loses nor repeats a leg.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal

import zmq

from services.executor.core import ExecutorCore
from services.executor.desk import CHECKPOINTS, Checkpoint, SymbolRules
from services.executor.journal import Journal
from services.executor.telemetry import setup_order_log
from shared.bus import Puller, Pusher, Replier, Requester
from shared.clock import LiveClock
from shared.config import ConfigError, LoadedConfig
from shared.messages import CommandReply, ErrorReply, Message, OrderPlan
from shared.secrets import Secrets
from shared.service import EventLoop, drain

log = logging.getLogger("executor")
IDENTITY = "executor"  # the only caller the gateway lets change broker state
CRASH_VARIABLE = "PORTFOLIO_EXECUTOR_CRASH_AT"
TIMER_TICK_S = 0.05
CHECKPOINT_POLL_S = 0.02  # how often to ask whether the journal's WAL can be checkpointed (shared/wal.py)


def crash_point() -> Checkpoint | None:
    """The test-only fault injection named by PORTFOLIO_EXECUTOR_CRASH_AT, if set."""
    step = os.environ.get(CRASH_VARIABLE, "")
    if not step:
        return None
    if step not in CHECKPOINTS:
        raise ConfigError(f"{CRASH_VARIABLE}={step!r} is not a journal step; use one of {', '.join(CHECKPOINTS)}")
    log.warning("FAULT INJECTION: this process kills itself with SIGKILL at journal step %r", step)

    def checkpoint(reached: str) -> None:
        if reached == step:
            os.kill(os.getpid(), signal.SIGKILL)

    return checkpoint


class ExecutorRunner:
    """Owns the sockets, the journal and the event loop of the executor process."""

    def __init__(self, config: LoadedConfig, secrets: Secrets, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
        system = config.system
        self.settings = system.executor
        rules = {name: SymbolRules(magic=cfg.symbol.magic, deviation_points=cfg.execution.deviation_points)
                 for name, cfg in config.symbols.items()}
        checkpoint = crash_point()
        setup_order_log(system.paths.logs_dir, secrets.values_to_redact())
        self.clock = LiveClock()
        self.journal = Journal(system.paths.state_dir / self.settings.journal_file, self.settings.journal_sync)
        self.core = ExecutorCore(self.clock, self.journal, self.settings, rules, checkpoint)
        self.plans = Puller(ctx, system.endpoint("executor_in"), name="executor plans")
        self.commands = Replier(ctx, system.endpoint("executor_rep"), name="executor commands")
        self.reports = Pusher(ctx, system.endpoint("risk_in"))
        self.gateway = Requester(ctx, system.endpoint("gateway_rep"), IDENTITY)
        self.callers: dict[str, str] = {}  # command id -> the ROUTER identity that asked
        self.undelivered: list[Message] = []
        self.loop = EventLoop(self.clock)
        self.loop.on_readable(self.plans.socket, self._on_plans)
        self.loop.on_readable(self.commands.socket, self._on_commands)
        self.loop.every(TIMER_TICK_S, self._on_tick)
        self.loop.every(self.settings.status_interval_s, self._on_status)
        self.loop.every(CHECKPOINT_POLL_S, self._checkpoint)
        log.info("reconciling the journal %s with the broker, then taking plans on %s and commands on %s",
                 self.journal.path, system.endpoint("executor_in"), system.endpoint("executor_rep"))

    def run(self) -> None:
        """Reconcile, then serve until SIGTERM / SIGINT (the first timer tick starts the requests, inside the
        loop, so that a stop during the reconciliation is as clean as any other)."""
        self._route(self.core.start())
        self.loop.run()

    def close(self) -> None:
        self.plans.close()
        self.commands.close()
        self.gateway.close()
        self.reports.close()
        self.journal.close()

    def _route(self, messages: list[Message]) -> None:
        for message in messages:
            if isinstance(message, CommandReply | ErrorReply):
                caller = self.callers.pop(message.parent, None)
                if caller is None:
                    log.warning("no caller waits for the answer to %s", message.parent)
                else:
                    self.commands.reply(caller, message)
            elif self.reports.send(message):
                self.core.delivered(message)
            else:
                self.undelivered.append(message)  # risk full or absent: tried again at the next status beat

    def _work(self) -> None:
        """Serve the core's requests one at a time until it has none (it may be pausing)."""
        while (request := self.core.next_request()) is not None:
            reply = self.gateway.request(request, timeout_s=self.settings.request_timeout_s)
            self._route(self.core.on_reply(reply))
            self._busy()

    def _busy(self) -> None:
        self.journal.quiet.busy(self.clock.monotonic())

    def _checkpoint(self) -> None:
        self.journal.quiet.poll(self.clock.monotonic())

    def _on_plans(self) -> None:
        def accept(message: Message) -> None:
            if isinstance(message, OrderPlan):
                self._route(self.core.accept(message))
            else:
                self.plans.drops.drop("unexpected_type", type(message).__name__)

        drain(self.plans.receive, accept)
        self._busy()
        self._work()

    def _on_commands(self) -> None:
        def take(item: tuple[str, Message]) -> None:
            caller, message = item
            self.callers[message.id] = caller
            log.info("command %s from %s: %s", message.id, caller, message.model_dump(exclude={"v", "id", "ts"}))
            self._route(self.core.command(message))

        drain(self.commands.receive, take)
        self._busy()
        self._work()

    def _on_tick(self) -> None:
        self._route(self.core.on_timer())
        self._work()

    def _on_status(self) -> None:
        if self.reports.send(self.core.status()) and self.undelivered:
            waiting, self.undelivered = self.undelivered, []
            self._route(waiting)


def serve(config: LoadedConfig, secrets: Secrets, args: argparse.Namespace) -> None:
    ctx = zmq.Context()
    runner = ExecutorRunner(config, secrets, ctx)
    try:
        runner.run()
    finally:
        runner.close()
        ctx.term()
