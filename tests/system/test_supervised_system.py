"""The whole system under the real supervisord, on the simulated broker, with a fake Telegram API.

Started exactly as an operator starts it (`python main.py --config ...`), in a private directory. It
checks that bars flow, the simulated broker fills orders, the owner is told on Telegram, every service
writes its own log, and restarting one strategy leaves the gateway and executor processes alone while
trading goes on. No fixed sleeps: every wait is a poll with a deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from supervisor.xmlrpc import SupervisorTransport

from shared import topics
from shared.bus import Pusher, Requester, Subscriber
from shared.codec import encode
from shared.config import load_config
from shared.messages import (
    AccountReply,
    AccountRequest,
    AnyMessage,
    Bar,
    CloseAll,
    CommandReply,
    ExecutionReport,
    Message,
    OrderLeg,
    OrderPlan,
    RiskStateReply,
    RiskStateRequest,
    SignalRejected,
    new_id,
)
from shared.symbol_config import inert_keys_set
from tests.fakes.telegram_api import FakeTelegramServer
from tests.hostile import OVERSIZE, every_mutation, hostile_multipart, samples
from tests.support import wait_for

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "987654321:SENTINEL.token.never-in-any-log"  # dots: not shaped like a real token
ADMIN_ID = 7391846250
# The five secrets, each a value that cannot occur by chance: none may appear in a log, a message or a report.
# The simulated broker ignores the Exness credentials, but they are loaded and registered for redaction.
SENTINELS = {"EXNESS_LOGIN": "918273645", "EXNESS_PASSWORD": "SENTINEL-PASSWORD-c0ffee-never-logged",
             "EXNESS_SERVER": "SENTINEL-SERVER-Exness-MT5Trial-never-logged", "BOT_TOKEN": TOKEN,
             "ADMIN_ID": str(ADMIN_ID)}
SERVICES = ("gateway_mt5", "strategy_xau", "strategy_btc", "risk", "executor", "telegram")
T = TypeVar("T")



def system_toml(root: Path, telegram_url: str) -> str:
    text = (ROOT / "configs" / "system.toml").read_text()
    text = text.replace('logs_dir = "Logs"', f'logs_dir = "{root / "Logs"}"')
    text = text.replace('run_dir = "run"', f'run_dir = "{root / "run"}"')
    text = text.replace('state_dir = "state"', f'state_dir = "{root / "state"}"')
    text = text.replace('data_dir = "data"', f'data_dir = "{ROOT / "data"}"')
    text = text.replace('api_base_url = "https://api.telegram.org/bot"', f'api_base_url = "{telegram_url}"')
    text = text.replace("health_interval_s = 5.0", "health_interval_s = 1.0")
    return text.replace("speed = 60.0", "speed = 120.0")


@dataclass
class RunningSystem:
    root: Path
    config: Path
    telegram: FakeTelegramServer
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    fills: list[ExecutionReport] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.root / "Logs"

    def supervisor(self) -> Any:
        password = (self.root / "run" / "supervisor.secret").read_text().strip()
        transport = SupervisorTransport("portfolio", password, f"unix://{self.root / 'run' / 'supervisor.sock'}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def pids(self) -> dict[str, int]:
        return {p["name"]: p["pid"] for p in self.supervisor().getAllProcessInfo() if p["statename"] == "RUNNING"}

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "main.py", "--config", str(self.config), "ctl", *args], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    root = tmp_path_factory.mktemp("system")
    telegram = FakeTelegramServer(token=TOKEN).start()
    configs = root / "configs"
    shutil.copytree(ROOT / "configs", configs)
    (configs / "system.toml").write_text(system_toml(root, telegram.base_url))
    env = {**os.environ, **SENTINELS, "PORTFOLIO_ENV_FILE": str(root / "absent.env")}
    console = (root / "main.console").open("wb")
    process = subprocess.Popen([sys.executable, "main.py", "--config", str(configs / "system.toml")], cwd=ROOT,
                               env=env, stdout=console, stderr=subprocess.STDOUT, start_new_session=True)
    running = RunningSystem(root, configs / "system.toml", telegram, env, process)
    try:
        wait_for("all six services RUNNING", lambda: running.pids() if _all_running(running) else None, 60)
        yield running
    finally:
        running.ctl("shutdown")
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        console.close()
        telegram.stop()


def _all_running(running: RunningSystem) -> bool:
    try:
        return set(running.pids()) == set(SERVICES)
    except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
        return False


@pytest.fixture(scope="module")
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield context
    context.destroy(linger=0)


def listen(ctx: zmq.Context[zmq.Socket[bytes]], system: RunningSystem, endpoint: str, topic: str) -> Subscriber:
    return Subscriber(ctx, [f"ipc://{system.root / 'run' / endpoint}"], [topic], name=f"test {endpoint}")


def next_fill(subscriber: Subscriber) -> ExecutionReport | None:
    while (received := subscriber.receive()) is not None:
        message = received.message
        if isinstance(message, ExecutionReport) and message.status == "filled":
            return message
    return None


def test_bars_flow_from_the_gateway(system: RunningSystem, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    market = listen(ctx, system, "gateway_pub", "bar.")
    seen: dict[str, set[str]] = {}

    def all_streams() -> bool | None:
        while (received := market.receive()) is not None:
            if isinstance(received.message, Bar):
                seen.setdefault(received.message.symbol, set()).add(received.message.timeframe)
        return True if seen.get("BTCUSDm") == {"M1", "M5", "M15"} else None

    wait_for("BTCUSDm M1, M5 and M15 bars", all_streams, 60)
    assert market.gaps_total == 0
    market.close()


def test_an_order_is_filled_and_the_owner_is_told(system: RunningSystem, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    executions = listen(ctx, system, "risk_pub", topics.RISK_EXECUTION)
    fill = wait_for("a filled execution report", lambda: next_fill(executions), 180)
    executions.close()
    assert fill.ticket and fill.fill_price and fill.sl > 0 and fill.tp > 0
    message = system.telegram.wait_for_message(
        lambda m: m.chat_id == ADMIN_ID and fill.leg_id in (m.text or ""), timeout=30)
    assert fill.symbol in (message.text or "")


def test_the_operator_is_told_which_configured_keys_do_nothing(system: RunningSystem) -> None:
    console = (system.root / "main.console").read_text()
    config = load_config(system.config)
    for symbol, symbol_config in config.symbols.items():
        keys = inert_keys_set(symbol_config)
        assert keys, f"the shipped {symbol} file spells out every key, the inert ones too"
        assert f"{system.config.parent / config.system.symbols[symbol]} sets {len(keys)} keys that have no effect" \
            in console
        assert ", ".join(keys) in console


def test_every_service_writes_its_own_log(system: RunningSystem) -> None:
    def written(path: Path) -> Callable[[], Path | None]:
        return lambda: path if path.exists() and path.stat().st_size > 0 else None

    for service in SERVICES:
        wait_for(f"Logs/{service}.log", written(system.logs / f"{service}.log"), 30)
    health = system.logs / "portfolio_engine_health.log"
    line = wait_for("a health line", lambda: health.read_text().splitlines()[-1] if health.exists() else None, 30)
    for key in ("ok_xau=", "ok_btc=", "reason_xau=", "reason_btc=", "q="):
        assert key in line

    def every_service_heard() -> dict[str, float] | None:
        fields = dict(part.split("=", 1) for part in health.read_text().splitlines()[-1].split()[1:])
        ages = {key[4:]: value for key, value in fields.items() if key.startswith("age_")}
        if set(ages) >= set(SERVICES) - {"risk"} and "-" not in ages.values():
            return {name: float(age) for name, age in ages.items()}
        return None

    ages = wait_for("every service's heartbeat age on the health line", every_service_heard, 30)
    assert max(ages.values()) < 15, ages


def test_restarting_one_strategy_leaves_execution_alone(
    system: RunningSystem, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    before = system.pids()
    result = system.ctl("restart", "strategy_xau")
    assert result.returncode == 0, result.stdout + result.stderr
    executions = listen(ctx, system, "risk_pub", topics.RISK_EXECUTION)
    def restarted() -> dict[str, int] | None:
        pids = system.pids()
        return pids if "strategy_xau" in pids else None

    after = wait_for("strategy_xau back", restarted, 30)
    assert after["strategy_xau"] != before["strategy_xau"]
    for untouched in ("gateway_mt5", "executor", "risk", "strategy_btc", "telegram"):
        assert after[untouched] == before[untouched], f"{untouched} was restarted"
    wait_for("a fill after the restart", lambda: next_fill(executions), 180)
    executions.close()
    assert system.pids() == {**before, "strategy_xau": after["strategy_xau"]}


def test_the_control_socket_refuses_a_wrong_password(system: RunningSystem) -> None:
    transport = SupervisorTransport("portfolio", "guess", f"unix://{system.root / 'run' / 'supervisor.sock'}")
    proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
    with pytest.raises(xmlrpc.client.ProtocolError) as refused:
        proxy.supervisor.getState()
    assert refused.value.errcode == 401


# ------------------------------------------------------------------------------------ hostile input


def endpoint(system: RunningSystem, name: str) -> str:
    return f"ipc://{system.root / 'run' / name}"


def flood(ctx: zmq.Context[zmq.Socket[bytes]], address: str, kind: int, frames: list[list[bytes]]) -> None:
    """Send every hostile multipart message to a bound socket of the running system."""
    socket = ctx.socket(kind)
    socket.setsockopt(zmq.LINGER, 5000)
    if kind == zmq.DEALER:
        socket.setsockopt(zmq.ROUTING_ID, b"fuzz")
    socket.connect(address)
    for multipart in frames:
        socket.send_multipart(multipart)
    socket.close()  # linger: the frames leave before the check that follows


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(batch=st.lists(hostile_multipart, min_size=150, max_size=150))
def _fuzz_batch(batch: list[list[bytes]], send: Callable[[list[list[bytes]]], None]) -> None:
    send([*batch, *([frame] for frame in every_mutation()), [OVERSIZE]])


def ask(ctx: zmq.Context[zmq.Socket[bytes]], address: str, message: Message, timeout_s: float) -> AnyMessage:
    requester = Requester(ctx, address, identity=f"fuzz-check-{message.id[:6]}")
    try:
        reply = requester.request(message, timeout_s)
    finally:
        requester.close()
    assert reply is not None, f"no reply to {type(message).__name__} after the garbage"
    return reply


def next_on(subscriber: Subscriber, wanted: Callable[[AnyMessage], bool]) -> AnyMessage | None:
    while (received := subscriber.receive()) is not None:
        if wanted(received.message):
            return received.message
    return None


def dropped_logged(system: RunningSystem, service: str, where: str, reason: str = "") -> Callable[[], bool | None]:
    """The service logged a drop on ``where`` (for ``reason``, if given: a DropCounter reason key)."""
    def check() -> bool | None:
        text = (system.logs / f"{service}.log").read_text(errors="replace")
        return True if f"on {where} ({reason}" in text else None
    return check


def test_hostile_frames_on_every_bound_socket_are_dropped_and_good_ones_still_work(
    system: RunningSystem, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    before = system.pids()
    risk_events = listen(ctx, system, "risk_pub", "risk.")
    wait_for("risk_pub connected", lambda: True if risk_events.receive() is not None else None, 15)
    sockets = [("gateway_rep", zmq.DEALER, "gateway_mt5", "gateway requests"),
               ("risk_in", zmq.PUSH, "risk", "risk_in"), ("risk_rep", zmq.DEALER, "risk", "risk_rep"),
               ("executor_in", zmq.PUSH, "executor", "executor plans"),
               ("executor_rep", zmq.DEALER, "executor", "executor commands")]
    for name, kind, _, _ in sockets:
        def send(frames: list[list[bytes]], name: str = name, kind: int = kind) -> None:
            flood(ctx, endpoint(system, name), kind, frames)

        _fuzz_batch(send=send)
    for name, _, service, where in sockets:
        wait_for(f"{service} logging drops on {name}", dropped_logged(system, service, where), 15)
    # A valid message of a type an inbox does not take (a bar pushed at risk or the executor) is dropped as such.
    bar = next(m for m in samples() if isinstance(m, Bar))
    for name, service, where in (("risk_in", "risk", "risk_in"), ("executor_in", "executor", "executor plans")):
        flood(ctx, endpoint(system, name), zmq.PUSH, [[encode(bar)]])
        wait_for(f"{service} dropping a bar on {name}", dropped_logged(system, service, where, "unexpected_type"), 15)

    # Each service still does its job.
    assert isinstance(ask(ctx, endpoint(system, "gateway_rep"), AccountRequest(ts=1), 5), AccountReply)
    assert isinstance(ask(ctx, endpoint(system, "risk_rep"), RiskStateRequest(ts=1), 5), RiskStateReply)
    closed = ask(ctx, endpoint(system, "executor_rep"), CloseAll(ts=1, symbol="NOPE", by="fuzz-check"), 30)
    assert isinstance(closed, CommandReply)
    stale, plan_sample = samples()[:2]
    stale = stale.model_copy(update={"id": new_id()})
    assert isinstance(plan_sample, OrderPlan)
    plan = plan_sample.model_copy(update={"id": new_id(), "plan_id": f"fz-{new_id()[:20]}", "legs": (
        OrderLeg(leg_id=f"fz-{new_id()[:20]}", volume=0.01, sl=90.0, tp=110.0),)})
    pusher = Pusher(ctx, endpoint(system, "risk_in"))
    assert pusher.send(stale)
    pusher.close()
    pusher = Pusher(ctx, endpoint(system, "executor_in"))
    assert pusher.send(plan)
    pusher.close()
    seen: list[AnyMessage] = []

    def both_effects() -> bool | None:
        while (received := risk_events.receive()) is not None:
            seen.append(received.message)
        refused = any(isinstance(m, SignalRejected) and m.signal_id == stale.id for m in seen)
        reported = any(isinstance(m, ExecutionReport) and m.plan_id == plan.plan_id and m.status == "rejected"
                       for m in seen)
        return True if refused and reported else None

    wait_for("risk refusing the stale signal and the executor's report on the expired plan", both_effects, 15)
    risk_events.close()
    assert system.pids() == before, "a service restarted while it was fed garbage"


def test_no_secret_reaches_a_log_a_message_or_a_report(
    system: RunningSystem, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    """Runs last: every log under Logs/ (the fuzzing above made services log refusals and exceptions), every
    message on risk_pub and gateway_pub for a few seconds, and every text the owner was sent on Telegram."""
    traffic = [listen(ctx, system, "risk_pub", ""), listen(ctx, system, "gateway_pub", "")]
    frames: list[bytes] = []

    def enough() -> bool | None:
        for subscriber in traffic:
            while (received := subscriber.receive()) is not None:
                frames.append(received.topic.encode() + encode(received.message))
        return True if len(frames) >= 200 else None

    wait_for("risk and gateway traffic", enough, 30)
    for subscriber in traffic:
        subscriber.close()
    texts = {str(path): path.read_bytes().decode(errors="replace") for path in system.logs.rglob("*") if path.is_file()}
    assert {str(system.logs / f"{s}.log") for s in SERVICES} <= set(texts)
    texts["telegram messages"] = "\n".join(m.text or "" for m in system.telegram.sent_messages())
    texts["bus traffic"] = b"\n".join(frames).decode(errors="replace")
    assert len(texts["telegram messages"]) > 0
    leaks = [(where, name) for where, text in texts.items() for name, value in SENTINELS.items()
             if value in text or (name == "BOT_TOKEN" and value.split(":")[1] in text)]
    assert leaks == []
