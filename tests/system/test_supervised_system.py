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
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import zmq
from supervisor.xmlrpc import SupervisorTransport

from shared import topics
from shared.bus import Subscriber
from shared.messages import Bar, ExecutionReport
from tests.fakes.telegram_api import FakeTelegramServer

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "987654321:SENTINEL-token-never-in-any-log_0123"
ADMIN_ID = 4242
SERVICES = ("gateway_mt5", "strategy_xau", "strategy_btc", "risk", "executor", "telegram")
T = TypeVar("T")


def wait_for(what: str, fetch: Callable[[], T | None], timeout_s: float) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fetch()
        if value is not None:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


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
    env = {**os.environ, "BOT_TOKEN": TOKEN, "ADMIN_ID": str(ADMIN_ID),
           "PORTFOLIO_ENV_FILE": str(root / "absent.env")}
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


def test_every_service_writes_its_own_log(system: RunningSystem) -> None:
    def written(path: Path) -> Callable[[], Path | None]:
        return lambda: path if path.exists() and path.stat().st_size > 0 else None

    for service in SERVICES:
        wait_for(f"Logs/{service}.log", written(system.logs / f"{service}.log"), 30)
    health = system.logs / "portfolio_engine_health.log"
    line = wait_for("a health line", lambda: health.read_text().splitlines()[-1] if health.exists() else None, 30)
    for key in ("ok_xau=", "ok_btc=", "reason_xau=", "reason_btc=", "q="):
        assert key in line


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


def test_no_log_contains_the_bot_token(system: RunningSystem) -> None:
    texts = {path.name: path.read_text(errors="replace") for path in system.logs.glob("*.log")}
    assert {f"{s}.log" for s in SERVICES} <= set(texts)
    leaking = [name for name, text in texts.items() if TOKEN in text or TOKEN.split(":")[1] in text]
    assert leaking == []
