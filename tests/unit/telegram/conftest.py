"""Fixtures for the Telegram service: the fake Bot API, a config in tmp_path, and a stand-in for risk.

The stand-in plays risk at the socket level only: a ROUTER at risk_rep answering RiskStateRequest (in
its own thread) and a ``shared.bus.Publisher`` at risk_pub. Nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from services.telegram.runner import Mode, TelegramRunner
from shared.bus import Publisher, Replier
from shared.config import LoadedConfig, load_config
from shared.messages import (
    AnyMessage,
    ExecutionReport,
    Message,
    RiskState,
    RiskStateReply,
    RiskStateRequest,
    SymbolRiskState,
)
from shared.secrets import Secrets, load_secrets
from tests.fakes.telegram_api import FakeTelegramServer

TOKEN = "424242:TEST-Bot-Token-do-not-log-0123456789"
ADMIN_ID = 1111
STRANGER_ID = 2222
REPO_CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def write_config(root: Path, api_base_url: str, request_timeout_s: float = 2.0) -> LoadedConfig:
    """A system.toml whose paths and endpoints all live under ``root``; the symbol files are copied."""
    configs = root / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    for name in ("xau.toml", "btc.toml"):
        shutil.copy(REPO_CONFIGS / name, configs / name)
    run = root / "run"
    endpoints = "\n".join(f'{name} = "ipc://{run}/{name}"' for name in
                          ("gateway_pub", "gateway_rep", "risk_in", "risk_pub", "risk_rep", "executor_in"))
    (configs / "system.toml").write_text(f"""
[paths]
logs_dir = "{root / 'Logs'}"
run_dir = "{run}"
state_dir = "{root / 'state'}"
data_dir = "{root / 'data'}"

[endpoints]
{endpoints}

[telegram]
api_base_url = "{api_base_url}"
request_timeout_s = {request_timeout_s}
""")
    run.mkdir(exist_ok=True)
    return load_config(configs / "system.toml")


def risk_state(regimes: dict[str, str] | None = None) -> RiskState:
    regimes = regimes or {"XAUUSDm": "B", "BTCUSDm": "C"}
    return RiskState(
        ts=1_752_080_400.0, trading_enabled=True, day_start_balance=10_000.0, day_return=0.0125,
        symbols={symbol: SymbolRiskState(regime=regime, data_ok=symbol != "BTCUSDm",
                                         data_reason="ok" if symbol != "BTCUSDm" else "stale 130s",
                                         last_signal_confidence=0.87, open_positions=2)
                 for symbol, regime in regimes.items()})


def filled_report(**changes: object) -> ExecutionReport:
    fields: dict[str, object] = dict(
        ts=1_752_080_460.0, plan_id="p-1", leg_id="XAU-1752080460-1", symbol="XAUUSDm", side="buy",
        status="filled", retcode=10009, ticket=5001, volume=0.02, requested_price=2350.10,
        fill_price=2350.15, sl=2345.5, tp=2360.25, latency_ms=123.4, slippage_points=5.0,
        confidence=0.87, regime="A", reasons=("ema stack up", "rsi 58 rising"))
    fields.update(changes)
    return ExecutionReport.model_validate(fields)


class FakeRisk:
    """Risk as the Telegram service sees it: a ROUTER answering status, a PUB for events."""

    def __init__(self, config: LoadedConfig) -> None:
        self.config = config
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.publisher = Publisher(self.ctx, config.system.endpoint("risk_pub"))
        self.state = risk_state()
        self.requests: list[tuple[str, AnyMessage]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_router(self) -> FakeRisk:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="fake-risk", daemon=True)
        self._thread.start()
        assert ready.wait(5), "fake risk ROUTER did not start"
        return self

    def _serve(self, ready: threading.Event) -> None:
        replier = Replier(self.ctx, self.config.system.endpoint("risk_rep"), name="fake risk")
        ready.set()
        try:
            while not self._stop.is_set():
                if not replier.socket.poll(50):
                    continue
                item = replier.receive()
                if item is None:
                    continue
                caller, request = item
                with self._lock:
                    self.requests.append((caller, request))
                if isinstance(request, RiskStateRequest):
                    replier.reply(caller, RiskStateReply(ts=request.ts, parent=request.id, state=self.state))
        finally:
            replier.close()

    def received(self) -> list[tuple[str, AnyMessage]]:
        with self._lock:
            return list(self.requests)

    def publish_until(self, topic: str, message: Message, arrived: Callable[[], bool],
                      timeout: float = 10.0) -> None:
        """Publish ``message`` until ``arrived()`` (PUB/SUB joins late: the first copies may be lost)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.publisher.publish(topic, message)
            pause_until = time.monotonic() + 0.3
            while time.monotonic() < pause_until:
                if arrived():
                    return
                time.sleep(0.02)
        raise AssertionError(f"{type(message).__name__} on {topic} never arrived within {timeout}s")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.publisher.close()
        self.ctx.term()


class ServiceThread:
    """A TelegramRunner running in its own thread and event loop, stopped (and checked) at teardown."""

    def __init__(self, runner: TelegramRunner) -> None:
        self.runner = runner
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="telegram-service", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self.runner.run())
        except BaseException as exc:  # reported to the test by stop()
            self.error = exc

    def start(self) -> ServiceThread:
        self.thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self.runner.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the Telegram service did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def fake() -> Iterator[FakeTelegramServer]:
    server = FakeTelegramServer(TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Secrets:
    monkeypatch.setenv("PORTFOLIO_ENV_FILE", str(tmp_path / "no-such.env"))
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ADMIN_ID", str(ADMIN_ID))
    return load_secrets()


@pytest.fixture
def config(fake: FakeTelegramServer, tmp_path: Path) -> LoadedConfig:
    return write_config(tmp_path, fake.base_url)


@pytest.fixture
def risk(config: LoadedConfig) -> Iterator[FakeRisk]:
    fake_risk = FakeRisk(config)
    yield fake_risk
    fake_risk.close()


@pytest.fixture(autouse=True)
def token_never_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here also checks that the service's own log lines never carry the bot token."""
    caplog.set_level(logging.DEBUG, logger="services.telegram")
    yield
    assert TOKEN not in caplog.text
    assert TOKEN.split(":", 1)[1] not in caplog.text


ServiceFactory = Callable[..., ServiceThread]


@pytest.fixture
def start_service(config: LoadedConfig, secrets_env: Secrets) -> Iterator[ServiceFactory]:
    started: list[ServiceThread] = []

    def start(mode: Mode = "full", *, secrets: Secrets | None = None, risk_timeout_s: float = 1.0,
              wait_connected: bool = True) -> ServiceThread:
        runner = TelegramRunner(config, secrets or secrets_env, mode, risk_timeout_s=risk_timeout_s,
                                first_backoff_s=0.1)
        service = ServiceThread(runner).start()
        started.append(service)
        if wait_connected:
            assert runner.connected.wait(10), "the service did not connect to the fake Bot API"
        return service

    yield start
    for service in started:
        service.stop()
