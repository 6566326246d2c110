"""The executor as a real process on real sockets: SIGKILL at every journal step, the gateway going down
during a send, and the owner's commands on its ROUTER.

The gateway is a thread of this test serving the real ``GatewayCore`` over a ``SimBroker`` on a real
ROUTER socket, so the test can stop it, make it swallow an answer, and read the broker. The test plays
risk: it pushes plans to ``executor_in`` and pulls reports from ``risk_in``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
import zmq

from services.executor.desk import CHECKPOINTS
from services.executor.journal import Journal
from services.executor.runner import CRASH_VARIABLE
from services.executor.telemetry import ORDER_LOG_FILE
from services.gateway_mt5.core import GatewayCore
from shared.bus import Puller, Pusher, Replier, Requester
from shared.clock import FakeClock
from shared.config import GatewaySection
from shared.messages import (
    AnyMessage,
    CloseAll,
    CommandReply,
    ErrorReply,
    ExecutionReport,
    ExecutorStatus,
    OrderSendRequest,
    PositionData,
    SetProtection,
)
from tests.support import wait_for
from tests.unit.executor.helpers import MAGIC, START, plan, sim_broker

ROOT = Path(__file__).resolve().parents[3]
T = TypeVar("T")
Context = zmq.Context[zmq.Socket[bytes]]



class GatewayThread:
    """GatewayCore over a SimBroker behind a real ROUTER, in a thread that can be stopped and restarted."""

    def __init__(self, ctx: Context, endpoint: str, tmp_path: Path) -> None:
        self.ctx, self.endpoint = ctx, endpoint
        self.core = GatewayCore(sim_broker(tmp_path), GatewaySection(), FakeClock())
        assert self.core.connect()
        self.lock = threading.Lock()
        self.swallow_next_order = False  # execute the next order_send, then never answer it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> GatewayThread:
        replier = Replier(self.ctx, self.endpoint, name="test gateway")  # bound before start() returns
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(replier,), daemon=True)
        self._thread.start()
        return self

    def _serve(self, replier: Replier) -> None:
        try:
            while not self._stop.is_set():
                if not replier.socket.poll(10):
                    continue
                item = replier.receive()
                if item is None:
                    continue
                caller, request = item
                with self.lock:
                    reply = self.core.handle_request(caller, request)
                    if isinstance(request, OrderSendRequest) and self.swallow_next_order:
                        self.swallow_next_order = False
                        continue
                replier.reply(caller, reply)
        finally:
            replier.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def positions(self) -> list[PositionData]:
        with self.lock:
            return [p for p in self.core.broker.positions() if p.magic == MAGIC]


class Executor:
    """``python -m services.executor`` in a private directory."""

    def __init__(self, root: Path) -> None:
        configs = root / "configs"
        configs.mkdir(parents=True, exist_ok=True)
        for name in ("xau.toml", "btc.toml"):
            shutil.copy(ROOT / "configs" / name, configs / name)
        self.config = configs / "system.toml"
        self.config.write_text(
            f'[paths]\nlogs_dir = "{root / "Logs"}"\nrun_dir = "{root / "run"}"\nstate_dir = "{root / "state"}"\n'
            f'data_dir = "{ROOT / "data"}"\n\n[executor]\nrequest_timeout_s = 0.5\nstatus_interval_s = 0.2\n'
            "verify_retry_s = 0.2\nretry_backoff_s = 0.05\n")
        self.root = root
        self.env = {**os.environ, "PORTFOLIO_ENV_FILE": str(root / "absent.env")}
        self.process: subprocess.Popen[bytes] | None = None

    def endpoint(self, name: str) -> str:
        return f"ipc://{self.root / 'run' / name}"

    def start(self, crash_at: str | None = None) -> None:
        env = dict(self.env)
        if crash_at:
            env[CRASH_VARIABLE] = crash_at
        log = (self.root / "executor.console").open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "services.executor", "--config", str(self.config)],
                                        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def wait_killed(self) -> None:
        assert self.process is not None
        code = wait_for("the executor to kill itself", self.process.poll)
        assert code == -signal.SIGKILL, f"exit status {code}; see {self.root / 'executor.console'}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            assert self.process.wait(timeout=10) == 0
        self.process = None

    def journal_says(self) -> dict[str, tuple[str, int | None]]:
        journal = Journal(self.root / "state" / "executor.sqlite")
        try:
            return {leg.leg_id: (leg.state, leg.ticket) for leg in journal.legs()}
        finally:
            journal.close()


class Risk:
    """The test's stand-in for risk: pushes plans, pulls reports."""

    def __init__(self, ctx: Context, executor: Executor) -> None:
        self.inbox = Puller(ctx, executor.endpoint("risk_in"), name="test risk_in")
        self.plans = Pusher(ctx, executor.endpoint("executor_in"))
        self.reports: list[ExecutionReport] = []
        self.statuses: list[ExecutorStatus] = []

    def take(self) -> None:
        while (message := self.inbox.receive()) is not None:
            if isinstance(message, ExecutionReport):
                self.reports.append(message)
            elif isinstance(message, ExecutorStatus):
                self.statuses.append(message)

    def final(self, leg_ids: set[str]) -> dict[str, ExecutionReport] | None:
        self.take()
        done = {r.leg_id: r for r in self.reports if r.leg_id in leg_ids and r.status != "unknown"}
        return done if set(done) == leg_ids else None

    def close(self) -> None:
        self.inbox.close()
        self.plans.close()


@pytest.fixture
def ctx() -> Iterator[Context]:
    context: Context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def rig(ctx: Context, tmp_path: Path) -> Iterator[tuple[Executor, GatewayThread, Risk]]:
    executor = Executor(tmp_path)
    gateway = GatewayThread(ctx, executor.endpoint("gateway_rep"), tmp_path).start()
    risk = Risk(ctx, executor)
    try:
        yield executor, gateway, risk
    finally:
        if executor.process is not None and executor.process.poll() is None:
            executor.process.kill()
            executor.process.wait(timeout=10)
        gateway.stop()
        risk.close()


def assert_broker_holds_what_the_journal_says(executor: Executor, gateway: GatewayThread) -> None:
    filled = {(leg, ticket) for leg, (state, ticket) in executor.journal_says().items() if state == "filled"}
    held = [(p.comment, p.ticket) for p in gateway.positions()]
    assert len(held) == len(set(held)) and set(held) == filled, (held, filled)


def test_sigkill_at_every_journal_step_neither_loses_nor_repeats_a_leg(
    rig: tuple[Executor, GatewayThread, Risk],
) -> None:
    executor, gateway, risk = rig
    for n, step in enumerate(CHECKPOINTS):
        order = plan(f"K{n}", legs=2, volume=0.01)
        gateway.swallow_next_order = step == "unknown"  # the broker fills it; the answer never comes
        executor.start(crash_at=step)
        risk.plans.send(order)
        executor.wait_killed()
        executor.start()
        legs = {leg.leg_id for leg in order.legs}
        done = wait_for(f"both legs of {order.plan_id} after a crash at {step!r}", partial(risk.final, legs))
        assert {r.status for r in done.values()} == {"filled"}, (step, done)
        executor.stop()
        assert_broker_holds_what_the_journal_says(executor, gateway)
        assert sorted(p.comment for p in gateway.positions()) == sorted(
            f"K{k}-{leg}" for k in range(n + 1) for leg in (1, 2))
    filled = [r.leg_id for r in risk.reports if r.status == "filled"]
    assert len(filled) == len(set(filled)) == 2 * len(CHECKPOINTS)  # each fill reported once


def test_gateway_down_during_a_send_then_owner_commands_on_the_router(
    rig: tuple[Executor, GatewayThread, Risk], ctx: Context,
) -> None:
    executor, gateway, risk = rig
    executor.start()
    risk.plans.send(plan("G1", symbol="BTCUSDm", volume=0.05))
    wait_for("the first fill", lambda: risk.final({"G1-1"}))
    gateway.stop()
    risk.plans.send(plan("G2", symbol="BTCUSDm", side="sell", volume=0.05))

    def unknown() -> ExecutionReport | None:
        risk.take()
        return next((r for r in risk.reports if r.leg_id == "G2-1" and r.status == "unknown"), None)

    told = wait_for("the owner told of an unknown outcome", unknown)
    assert "no reply from the gateway" in told.retcode_text
    assert any(s.queue_len == 1 for s in risk.statuses)
    gateway.start()
    report = wait_for("the leg resolved once the gateway is back", lambda: risk.final({"G2-1"}))["G2-1"]
    assert report.status == "filled" and len(gateway.positions()) == 2
    assert_broker_holds_what_the_journal_says(executor, gateway)

    owner = Requester(ctx, executor.endpoint("executor_rep"), "telegram")
    try:
        reply: AnyMessage | None = owner.request(SetProtection(ts=START, level="tp", usd=10.0, by="owner"), 10.0)
        assert isinstance(reply, CommandReply) and reply.ok and len(reply.lines) == 2
        assert sorted(p.tp for p in gateway.positions()) == [99_800.0, 100_210.0]
        refused = owner.request(plan("X"), 5.0)
        assert isinstance(refused, ErrorReply) and refused.code == "unsupported"
        reply = owner.request(CloseAll(ts=START, by="owner"), 10.0)
        assert isinstance(reply, CommandReply) and reply.ok and len(reply.lines) == 2
        assert gateway.positions() == []
    finally:
        owner.close()
    executor.stop()
    lines = (executor.root / "Logs" / ORDER_LOG_FILE).read_text().splitlines()
    kinds = [next(part for part in line.split() if part.startswith("kind=")) for line in lines]
    assert kinds == ["kind=open", "kind=open", "kind=modify_tp", "kind=modify_tp", "kind=close", "kind=close"]
