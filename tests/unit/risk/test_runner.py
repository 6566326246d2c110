"""The risk process over real ZeroMQ ipc sockets, against a fake gateway and executor made in the test.

``python -m services.risk`` runs as a child process on a config whose sockets, state and logs are in
tmp_path; SIGTERM stops it and it must exit 0. Every wait is a poll with a deadline.
"""

from __future__ import annotations

import os
import signal as signals
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import zmq

from shared import topics
from shared.bus import Publisher, Puller, Pusher, Replier, Requester, Subscriber
from shared.config import LoadedConfig, load_config
from shared.messages import (
    AccountReply,
    AccountRequest,
    AccountSnapshot,
    AnyMessage,
    DayStarted,
    DealsReply,
    DealsRequest,
    ExecutionReport,
    OrderPlan,
    PositionData,
    PositionsReply,
    PositionsRequest,
    RiskState,
    RiskStateReply,
    SetTrading,
    SignalRejected,
    SymbolSpecReply,
    SymbolSpecRequest,
)
from tests.unit.risk.helpers import (
    BTC,
    REPO,
    SPECS,
    T0,
    XAU,
    account,
    fill_report,
    heartbeat,
    position,
    signal,
    write_system_toml,
)

T = TypeVar("T")
Context = zmq.Context[zmq.Socket[bytes]]


@pytest.fixture
def ctx() -> Iterator[Context]:
    context: Context = zmq.Context()
    yield context
    context.destroy(linger=0)


class FakeGateway:
    """The gateway's ROUTER (specs, account, positions, deals) and PUB (heartbeat, account), nothing more.

    ``now`` is its market time and ``positions`` what the broker holds; ``silent`` holds every answer back.
    """

    def __init__(self, ctx: Context, config: LoadedConfig) -> None:
        self.router = Replier(ctx, config.system.endpoint("gateway_rep"))
        self.pub = Publisher(ctx, config.system.endpoint("gateway_pub"))
        self.answered: set[str] = set()
        self.identities: set[str] = set()
        self.now: float = T0
        self.positions: tuple[PositionData, ...] = ()
        self.silent = False

    def close(self) -> None:
        self.router.close()
        self.pub.close()

    def serve(self) -> None:
        """Answer waiting requests and publish one heartbeat and one account snapshot."""
        if self.silent:
            return
        while (request := self.router.receive()) is not None:
            identity, message = request
            self.identities.add(identity)  # a request queued before a reconnection comes under a random one
            self.router.reply(identity, self._answer(message))
        self.pub.publish(topics.HEARTBEAT, heartbeat(self.now))
        self.pub.publish(topics.ACCOUNT, self._account())

    def _account(self) -> AccountSnapshot:
        return account(self.now, 4000.0, 4000.0 + sum(p.profit for p in self.positions))

    def _answer(self, message: AnyMessage) -> AnyMessage:
        if isinstance(message, SymbolSpecRequest):
            self.answered.add(message.symbol)
            return SymbolSpecReply(ts=self.now, parent=message.id, spec=SPECS[message.symbol])
        if isinstance(message, AccountRequest):
            self.answered.add("account")
            return AccountReply(ts=self.now, parent=message.id, account=self._account())
        if isinstance(message, DealsRequest):
            self.answered.add("deals")
            return DealsReply(ts=self.now, parent=message.id, deals=())
        assert isinstance(message, PositionsRequest)
        self.answered.add("positions")
        return PositionsReply(ts=self.now, parent=message.id, positions=self.positions)


def poll_until(fetch: Callable[[], T | None], background: Callable[[], None], timeout_s: float = 15.0) -> T:
    """``fetch()`` until it gives something, running ``background`` (the fake gateway) meanwhile."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        background()
        value = fetch()
        if value is not None:
            return value
        time.sleep(0.01)
    raise AssertionError("nothing arrived before the deadline")


def start_risk(config_path: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PORTFOLIO_ENV_FILE": str(tmp_path / "no.env"), "PYTHONPATH": str(REPO)}
    env.pop("PORTFOLIO_CONFIG", None)
    with (tmp_path / "risk.stderr").open("wb") as output:  # the child keeps its own copy of the file
        return subprocess.Popen([sys.executable, "-m", "services.risk", "--config", str(config_path)],
                                cwd=REPO, env=env, stdout=output, stderr=output)


def stop_risk(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM (what supervisord sends) and the exit status; killed if it does not stop in time."""
    if process.poll() is None:
        process.send_signal(signals.SIGTERM)
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@dataclass
class Harness:
    """The risk process and every socket around it: the fake gateway, the executor's inbox (PULL bound
    at executor_in), a SUB on risk_pub and a PUSH into risk_in."""

    config: LoadedConfig
    process: subprocess.Popen[bytes]
    gateway: FakeGateway
    plans: Puller
    events: Subscriber
    inbox: Pusher

    def ready_state(self) -> RiskState | None:
        """A RiskState once risk knows specs, account, positions and fresh data."""
        received = self.events.receive()
        if received is None or not isinstance(received.message, RiskState):
            return None
        state = received.message
        known = self.gateway.answered >= {*SPECS, "account", "positions"}
        return state if known and state.symbols[XAU].data_ok and state.day_start_balance else None

    def forwarded_report(self) -> ExecutionReport | None:
        received = self.events.receive()
        return received.message if received and isinstance(received.message, ExecutionReport) else None


@pytest.fixture
def risk(ctx: Context, tmp_path: Path) -> Iterator[Harness]:
    config_path = write_system_toml(tmp_path, risk="health_interval_s = 0.2\nstate_interval_s = 0.1")
    config = load_config(config_path)
    system = config.system
    gateway = FakeGateway(ctx, config)
    plans = Puller(ctx, system.endpoint("executor_in"))
    events = Subscriber(ctx, [system.endpoint("risk_pub")], [topics.RISK_ALL])
    inbox = Pusher(ctx, system.endpoint("risk_in"))
    harness = Harness(config, start_risk(config_path, tmp_path), gateway, plans, events, inbox)
    yield harness
    stop_risk(harness.process)
    for closable in (gateway, plans, events, inbox):
        closable.close()


def test_risk_process_plans_publishes_and_answers_over_real_sockets(
    risk: Harness, ctx: Context, tmp_path: Path
) -> None:
    system = risk.config.system
    state = poll_until(risk.ready_state, risk.gateway.serve)
    assert risk.gateway.identities == {"risk"}
    assert state.ts == T0 and state.trading_enabled and state.symbols[XAU].regime == "A"

    sent = signal(XAU, confidence=0.92, atr=1.0)
    assert risk.inbox.send(sent)
    plan = poll_until(risk.plans.receive, risk.gateway.serve)
    assert isinstance(plan, OrderPlan)
    assert (plan.plan_id, plan.signal_id, len(plan.legs)) == ("XAU1752080340b", sent.id, 3)

    report = fill_report(plan)
    assert risk.inbox.send(report)
    assert poll_until(risk.forwarded_report, risk.gateway.serve) == report

    switch = Requester(ctx, system.endpoint("risk_rep"), identity="telegram")
    reply = switch.request(SetTrading(ts=0, enabled=False, by="test"), timeout_s=5.0)
    switch.close()
    assert isinstance(reply, RiskStateReply) and reply.state.trading_enabled is False
    assert reply.state.symbols[XAU].open_positions == 1

    health = system.paths.logs_dir / "portfolio_engine_health.log"
    line = poll_until(lambda: next((x for x in _lines(health) if "trading=off" in x), None), risk.gateway.serve)
    assert " ok_xau=1 " in line and " regime_xau=A " in line

    assert stop_risk(risk.process) == 0, (tmp_path / "risk.stderr").read_text()
    assert (system.paths.state_dir / "risk.sqlite").exists()
    assert (system.paths.logs_dir / "risk.log").exists()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


AT_15 = 1_752_073_200  # Wed 2025-07-09 15:00 UTC
NEXT_MIDNIGHT = 1_752_105_600  # Thu 2025-07-10 00:00 UTC


class Observer:
    """Everything risk publishes, kept in order, with the newest RiskState at hand."""

    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber
        self.seen: list[AnyMessage] = []

    def drain(self) -> None:
        while (received := self.subscriber.receive()) is not None:
            self.seen.append(received.message)

    def state_where(self, test: Callable[[RiskState], bool], since: int = 0) -> Callable[[], RiskState | None]:
        """A fetch for the newest RiskState passing ``test`` among the messages from index ``since`` on."""
        def fetch() -> RiskState | None:
            self.drain()
            return next((m for m in reversed(self.seen[since:]) if isinstance(m, RiskState) and test(m)), None)

        return fetch

    def of_type(self, kind: type[T]) -> list[T]:
        self.drain()
        return [m for m in self.seen if isinstance(m, kind)]


def regimes(state: RiskState) -> dict[str, str]:
    return {symbol: s.regime for symbol, s in state.symbols.items()}


def test_sigkill_at_any_moment_keeps_the_hard_stop_and_the_reset_fires_once(ctx: Context, tmp_path: Path) -> None:
    config_path = write_system_toml(tmp_path, risk="health_interval_s = 0.2\nstate_interval_s = 0.1")
    config = load_config(config_path)
    gateway = FakeGateway(ctx, config)
    observer = Observer(Subscriber(ctx, [config.system.endpoint("risk_pub")], [topics.RISK_ALL]))
    inbox = Pusher(ctx, config.system.endpoint("risk_in"))
    process = start_risk(config_path, tmp_path)
    try:
        # 15:00: our position is down 7.5 %: hard stop on both symbols
        gateway.now, gateway.positions = AT_15, (position(900, profit=-300.0, ts=AT_15),)
        poll_until(observer.state_where(lambda s: regimes(s) == {XAU: "C", BTC: "C"}), gateway.serve)
        process.kill()  # SIGKILL: no clean-up at all
        assert process.wait(timeout=10) == -signals.SIGKILL

        # 15:05, the position closed flat: still a hard stop
        gateway.now, gateway.positions = AT_15 + 300, ()
        process = start_risk(config_path, tmp_path)
        state = poll_until(observer.state_where(lambda s: s.ts >= AT_15 + 300), gateway.serve)
        assert regimes(state) == {XAU: "C", BTC: "C"} and state.symbols[XAU].trading_locked
        assert inbox.send(signal(XAU, bar_time=AT_15 + 240, ts=AT_15 + 300, confidence=0.96))
        refusal = poll_until(lambda: next(iter(observer.of_type(SignalRejected)), None), gateway.serve)
        assert refusal.rule == "regime"

        # midnight: the new day, announced once; killed the moment it is seen
        gateway.now = NEXT_MIDNIGHT + 30
        day = poll_until(lambda: next((d for d in observer.of_type(DayStarted) if d.day == "2025-07-10"), None),
                         gateway.serve)
        process.kill()
        process.wait(timeout=10)
        assert (day.day, day.previous_day, day.start_balance) == ("2025-07-10", "2025-07-09", 4000.0)

        # restarted: nothing from the gateway until we hear the new process, so no event can slip past
        gateway.silent = True
        observer.drain()
        before = len(observer.seen)
        process = start_risk(config_path, tmp_path)
        poll_until(observer.state_where(lambda s: s.ts == 0, since=before), gateway.serve)
        gateway.silent, gateway.now = False, NEXT_MIDNIGHT + 60
        state = poll_until(observer.state_where(lambda s: s.ts >= NEXT_MIDNIGHT + 60), gateway.serve)
        assert regimes(state) == {XAU: "A", BTC: "A"}
        assert [m for m in observer.seen[before:] if isinstance(m, DayStarted)] == []
        assert [d.day for d in observer.of_type(DayStarted)].count("2025-07-10") == 1
    finally:
        stop_risk(process)
        for closable in (gateway, observer.subscriber, inbox):
            closable.close()
