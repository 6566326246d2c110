"""The executor as a real process with ``[curve] enabled`` and tcp endpoints: its runner is unchanged, yet every
socket it opens is CURVE. Its orders reach the gateway as "executor" by key; a valid risk key claiming the
executor's routing id is refused order_send; a plan pushed without a key never reaches it; its secret key
never reaches its log.

The test plays the gateway (the real ``GatewayCore`` over a ``SimBroker`` behind a CURVE ROUTER, in a thread)
and risk (a CURVE inbox and a pusher of plans), with the services' own key pairs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from services.gateway_mt5.core import GatewayCore
from shared.bus import Puller, Pusher, Replier
from shared.clock import FakeClock
from shared.codec import decode, encode
from shared.config import GatewaySection
from shared.curve import CurveKeys, make_client
from shared.messages import AnyMessage, ErrorReply, ExecutionReport, Message, OrderSendRequest
from tests.curve_keys import Keyring, last_endpoint
from tests.support import wait_for
from tests.unit.executor.helpers import MAGIC, plan, sim_broker

ROOT = Path(__file__).resolve().parents[2]
NOTHING_MS = 1000
Context = zmq.Context[zmq.Socket[bytes]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Gateway(threading.Thread):
    """GatewayCore behind a CURVE Replier; records who asked for each order_send."""

    def __init__(self, ctx: Context, ring: Keyring, tmp_path: Path) -> None:
        super().__init__(daemon=True)
        self.core = GatewayCore(sim_broker(tmp_path), GatewaySection(), FakeClock())
        assert self.core.connect()
        self.replier = Replier(ctx, "tcp://127.0.0.1:*", name="test gateway", curve=ring.keys("gateway_mt5"))
        self.endpoint = last_endpoint(self.replier.socket)
        self.orders: list[tuple[str, OrderSendRequest]] = []
        self.lock = threading.Lock()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            if not self.replier.socket.poll(10, zmq.POLLIN) or (item := self.replier.receive()) is None:
                continue
            caller, request = item
            with self.lock:
                if isinstance(request, OrderSendRequest):
                    self.orders.append((caller, request))
                self.replier.reply(caller, self.core.handle_request(caller, request))

    def positions(self) -> int:
        with self.lock:
            return sum(1 for p in self.core.broker.positions() if p.magic == MAGIC)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self.replier.close()


@pytest.fixture
def ctx() -> Iterator[Context]:
    context: Context = zmq.Context()
    yield context
    context.destroy(linger=0)


def write_config(root: Path, endpoints: dict[str, str]) -> Path:
    configs = root / "configs"
    configs.mkdir()
    for name in ("xau.toml", "btc.toml"):
        shutil.copy(ROOT / "configs" / name, configs / name)
    table = "".join(f'{name} = "{value}"\n' for name, value in endpoints.items())
    config = configs / "system.toml"
    config.write_text(
        f'[paths]\nlogs_dir = "{root / "Logs"}"\nrun_dir = "{root / "run"}"\nstate_dir = "{root / "state"}"\n'
        f'data_dir = "{ROOT / "data"}"\n\n[endpoints]\n{table}\n'
        '[curve]\nenabled = true\npublic_keys_dir = "keys/public"\nsecret_keys_dir = "keys/secret"\n\n'
        "[executor]\nrequest_timeout_s = 2.0\nstatus_interval_s = 0.2\n")
    return config


def start_executor(config: Path, root: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PORTFOLIO_ENV_FILE": str(root / "absent.env")}
    with (root / "executor.console").open("wb") as console:
        return subprocess.Popen([sys.executable, "-m", "services.executor", "--config", str(config)],
                                cwd=ROOT, env=env, stdout=console, stderr=subprocess.STDOUT)


def ask_as_executor(ctx: Context, endpoint: str, keys: CurveKeys, request: Message) -> AnyMessage:
    """One request from a DEALER that claims the executor's routing id, with someone else's valid key."""
    impostor = ctx.socket(zmq.DEALER)
    impostor.setsockopt(zmq.LINGER, 0)
    impostor.setsockopt(zmq.ROUTING_ID, b"executor")
    make_client(impostor, endpoint, keys)
    impostor.connect(endpoint)
    try:
        impostor.send(encode(request))
        assert impostor.poll(5000, zmq.POLLIN)
        return decode(impostor.recv())
    finally:
        impostor.close()


def test_the_executor_process_talks_curve_and_only_its_key_may_send_orders(ctx: Context, tmp_path: Path) -> None:
    ring = Keyring(tmp_path)  # keys/ under the project root, as the config says
    gateway = Gateway(ctx, ring, tmp_path)
    gateway.start()
    inbox = Puller(ctx, "tcp://127.0.0.1:*", name="test risk_in", curve=ring.keys("risk"))
    endpoints = {"gateway_rep": gateway.endpoint, "risk_in": last_endpoint(inbox.socket),
                 "executor_in": f"tcp://127.0.0.1:{free_port()}", "executor_rep": f"tcp://127.0.0.1:{free_port()}"}
    config = write_config(tmp_path, endpoints)
    servers = {gateway.endpoint: "gateway_mt5", endpoints["executor_in"]: "executor"}
    plans = Pusher(ctx, endpoints["executor_in"], curve=ring.keys("risk", servers))
    outsider = Pusher(ctx, endpoints["executor_in"], send_timeout_ms=0)  # no key: its plan must never arrive
    process = start_executor(config, tmp_path)
    try:
        outsider.send(plan("OUT1", volume=0.01))
        order = plan("KEY1", volume=0.01)
        assert plans.send(order)
        leg = order.legs[0].leg_id

        def filled() -> ExecutionReport | None:
            while (message := inbox.receive()) is not None:
                assert not (isinstance(message, ExecutionReport) and message.leg_id.startswith("OUT1"))
                if isinstance(message, ExecutionReport) and message.leg_id == leg and message.status != "unknown":
                    return message
            return None

        report = wait_for(f"the report of {leg} (see {tmp_path / 'executor.console'})", filled, timeout_s=30)
        assert report.status == "filled"
        assert [caller for caller, _ in gateway.orders] == ["executor"]  # named by its key, over CURVE

        # A process holding a valid key (risk's) that claims the executor's routing id is still risk.
        refused = ask_as_executor(ctx, gateway.endpoint, ring.keys("risk", servers),
                                  OrderSendRequest(ts=report.ts, request=gateway.orders[0][1].request))
        assert isinstance(refused, ErrorReply) and refused.code == "forbidden", refused
        assert gateway.positions() == 1
        assert [caller for caller, _ in gateway.orders] == ["executor", "risk"]

        # The plan pushed without a key never reached the executor: nothing of it within a bounded wait.
        def outsider_report() -> ExecutionReport | None:
            while (message := inbox.receive()) is not None:
                if isinstance(message, ExecutionReport) and message.leg_id.startswith("OUT1"):
                    return message
            return None

        with pytest.raises(AssertionError, match="timed out"):
            wait_for("a report of the plan pushed without a key", outsider_report, timeout_s=NOTHING_MS / 1000)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for closable in (plans, outsider, inbox):
            closable.close()
        gateway.stop()
    log = (tmp_path / "Logs" / "executor.log").read_text()
    assert "CURVE on tcp as 'executor'" in log
    assert "KEY1" in log and "OUT1" not in log
    secret = ring.keys("executor").secret.decode()
    for path in (tmp_path / "Logs").iterdir():
        assert secret not in path.read_text(errors="replace"), path
