"""Fixtures for the Telegram service: the fake Bot API, a config in tmp_path, and stand-ins for its peers.

The stand-ins play risk, the gateway and the executor at the socket level only: a ROUTER at the peer's
_rep endpoint answering in its own thread (``FakePeer``), and for risk also a ``shared.bus.Publisher``
at risk_pub. Nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import zmq

from services.telegram.runner import Mode, TelegramRunner
from shared.bus import Publisher, Replier
from shared.clock import Clock
from shared.config import LoadedConfig, load_config
from shared.messages import (
    AccountReply,
    AccountRequest,
    AccountSnapshot,
    AnyMessage,
    CloseAll,
    CommandLine,
    CommandReply,
    DealClosed,
    DealsReply,
    DealsRequest,
    ExecutionReport,
    Message,
    PositionData,
    PositionsReply,
    PositionsRequest,
    RiskState,
    RiskStateReply,
    RiskStateRequest,
    SetProtection,
    SetTrading,
    SymbolRiskState,
)
from shared.secrets import Secrets, load_secrets
from tests.fakes.telegram_api import FakeTelegramServer

TOKEN = "424242:TEST-Bot-Token-do-not-log-0123456789"
ADMIN_ID = 1111
STRANGER_ID = 2222
MAGIC = 777001
MARKET_NOW = 1_752_080_400.0  # 2025-07-09 17:00 UTC: the peers' market time
DAY_S = 86_400.0
REPO_CONFIGS = Path(__file__).resolve().parents[3] / "configs"
ENDPOINTS = ("gateway_pub", "gateway_rep", "risk_in", "risk_pub", "risk_rep", "executor_in", "executor_rep")
# Fast pacing and no supervisord polling unless a test asks for them.
FAST = {"per_chat_interval_s": 0.02, "supervisor_poll_s": 0}


def write_config(root: Path, api_base_url: str, request_timeout_s: float = 2.0, **telegram: float) -> LoadedConfig:
    """A system.toml whose paths and endpoints all live under ``root``; the symbol files are copied."""
    configs = root / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    for name in ("xau.toml", "btc.toml"):
        shutil.copy(REPO_CONFIGS / name, configs / name)
    run = root / "run"
    endpoints = "\n".join(f'{name} = "ipc://{run}/{name}"' for name in ENDPOINTS)
    extra = "\n".join(f"{key} = {value}" for key, value in {**FAST, **telegram}.items())
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
{extra}
""")
    run.mkdir(exist_ok=True)
    return load_config(configs / "system.toml")


def risk_state(regimes: dict[str, str] | None = None) -> RiskState:
    regimes = regimes or {"XAUUSDm": "B", "BTCUSDm": "C"}
    return RiskState(
        ts=MARKET_NOW, trading_enabled=True, trading_by="telegram:1111", day_start_balance=10_000.0,
        day_return=0.0125,
        symbols={symbol: SymbolRiskState(regime=regime, data_ok=symbol != "BTCUSDm",
                                         data_reason="ok" if symbol != "BTCUSDm" else "stale 130s",
                                         last_signal_confidence=0.87, last_signal_side="buy",
                                         last_signal_at=MARKET_NOW - 65, open_positions=2)
                 for symbol, regime in regimes.items()})


def filled_report(**changes: object) -> ExecutionReport:
    fields: dict[str, object] = dict(
        ts=MARKET_NOW + 60, plan_id="p-1", leg_id="XAU-1752080460-1", symbol="XAUUSDm", side="buy",
        status="filled", retcode=10009, ticket=5001, volume=0.02, requested_price=2350.10,
        fill_price=2350.15, sl=2345.5, tp=2360.25, latency_ms=123.4, slippage_points=5.0, slippage_usd=0.5,
        confidence=0.87, regime="A", reasons=("ema stack up", "rsi 58 rising"))
    fields.update(changes)
    return ExecutionReport.model_validate(fields)


def position(ticket: int, symbol: str = "XAUUSDm", side: str = "buy", profit: float = 4.3,
             magic: int = MAGIC) -> PositionData:
    price = 2350.15 if symbol == "XAUUSDm" else 65_000.0
    return PositionData(ticket=ticket, symbol=symbol, side=side, volume=0.02, price_open=price,
                        sl=price - 4.65 if side == "buy" else price + 4.65, tp=0.0 if ticket % 2 else price + 10.1,
                        price_current=price + 2, profit=profit, swap=-0.1, magic=magic, time=MARKET_NOW - ticket)


def deal(ticket: int, symbol: str, days_ago: float, profit: float, *, commission: float = 0.0,
         entry: int = 1) -> DealClosed:
    return DealClosed(ts=MARKET_NOW, ticket=ticket, order=ticket, position_id=ticket, symbol=symbol, side="sell",
                      entry=entry, reason=4, volume=0.02, price=2350.0, profit=profit, commission=commission,
                      magic=MAGIC, time=MARKET_NOW - days_ago * DAY_S)


POSITIONS = (position(5001), position(5002, side="sell", profit=-1.2), position(6001, "BTCUSDm", profit=10.0),
             position(7001, magic=123, profit=0.5))
DEALS = (deal(1, "XAUUSDm", 0.1, 31.0, commission=-1.0), deal(2, "BTCUSDm", 0.2, -5.0),
         deal(3, "XAUUSDm", 1.0, 10.0), deal(4, "BTCUSDm", 3.0, 2.5), deal(5, "XAUUSDm", 10.0, 1000.0),
         deal(6, "XAUUSDm", 0.05, 999.0, entry=0))
ACCOUNT = AccountSnapshot(ts=MARKET_NOW, leverage=500, balance=10_125.5, equity=10_138.0, margin=50.0,
                          margin_free=10_088.0, margin_level=20_276.0, profit=12.5)

Answer = Callable[[AnyMessage], Message | None]


class FakePeer:
    """A ROUTER at one endpoint of the config, answering requests like a peer service, in its own thread."""

    def __init__(self, config: LoadedConfig, endpoint: str, answer: Answer) -> None:
        self.endpoint = config.system.endpoint(endpoint)
        self.answer = answer
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.requests: list[tuple[str, AnyMessage]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> FakePeer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name=f"fake {self.endpoint}",
                                        daemon=True)
        self._thread.start()
        assert ready.wait(5), f"fake ROUTER at {self.endpoint} did not start"
        return self

    def _serve(self, ready: threading.Event) -> None:
        replier = Replier(self.ctx, self.endpoint, name="fake peer")
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
                reply = self.answer(request)
                if reply is not None:
                    replier.reply(caller, reply)
        finally:
            replier.close()

    def received(self) -> list[tuple[str, AnyMessage]]:
        with self._lock:
            return list(self.requests)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.ctx.term()


class FakeRisk(FakePeer):
    """Risk as the Telegram service sees it: a ROUTER answering status and the switch, a PUB for events."""

    def __init__(self, config: LoadedConfig) -> None:
        super().__init__(config, "risk_rep", self._answer)
        self.publisher = Publisher(self.ctx, config.system.endpoint("risk_pub"))
        self.state = risk_state()

    def start_router(self) -> FakeRisk:
        self.start()
        return self

    def _answer(self, request: AnyMessage) -> Message | None:
        if isinstance(request, SetTrading):
            self.state = self.state.model_copy(update={"trading_enabled": request.enabled, "trading_by": request.by})
        if isinstance(request, RiskStateRequest | SetTrading):
            return RiskStateReply(ts=MARKET_NOW, parent=request.id, state=self.state)
        return None

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
        self.publisher.close()
        super().close()


def gateway_answer(positions: tuple[PositionData, ...] = POSITIONS) -> Answer:
    """The gateway's answers to the reading requests Telegram makes (market time MARKET_NOW)."""
    def answer(request: AnyMessage) -> Message | None:
        if isinstance(request, AccountRequest):
            return AccountReply(ts=MARKET_NOW, parent=request.id, account=ACCOUNT)
        if isinstance(request, PositionsRequest):
            return PositionsReply(ts=MARKET_NOW, parent=request.id, positions=tuple(
                p for p in positions if request.symbol in (None, p.symbol)))
        if isinstance(request, DealsRequest):
            return DealsReply(ts=MARKET_NOW, parent=request.id, deals=tuple(
                d for d in DEALS if d.time >= request.since))
        return None
    return answer


def executor_answer(request: AnyMessage) -> Message | None:
    """The executor's answers to the owner commands: one changed and one refused position per level."""
    if isinstance(request, SetProtection):
        name = request.level.upper()
        return CommandReply(ts=MARKET_NOW, parent=request.id, ok=False,
                            summary=f"{name} at {request.usd:g} USD: 1 changed, 1 refused",
                            lines=(CommandLine(ok=True, text=f"#5001 XAUUSDm BUY {name} 2360.25 -> 2375.15"),
                                   CommandLine(ok=False, text=f"#5002 XAUUSDm SELL {name} refused: stops level")))
    if isinstance(request, CloseAll):
        return CommandReply(ts=MARKET_NOW, parent=request.id, ok=True,
                            summary=f"closed 2 positions on {request.symbol or 'all symbols'}",
                            lines=(CommandLine(ok=True, text="#5001 closed at 2352.15"),
                                   CommandLine(ok=True, text="#5002 closed at 2352.15")))
    return None


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


@pytest.fixture
def gateway(config: LoadedConfig) -> Iterator[FakePeer]:
    peer = FakePeer(config, "gateway_rep", gateway_answer()).start()
    yield peer
    peer.close()


@pytest.fixture
def executor(config: LoadedConfig) -> Iterator[FakePeer]:
    peer = FakePeer(config, "executor_rep", executor_answer).start()
    yield peer
    peer.close()


class Peers(NamedTuple):
    """risk (ROUTER started), the gateway and the executor, for tests that use all three."""

    risk: FakeRisk
    gateway: FakePeer
    executor: FakePeer


@pytest.fixture
def peers(risk: FakeRisk, gateway: FakePeer, executor: FakePeer) -> Peers:
    return Peers(risk.start_router(), gateway, executor)


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

    def start(mode: Mode = "full", *, secrets: Secrets | None = None, peer_timeout_s: float = 1.0,
              wait_connected: bool = True, clock: Clock | None = None,
              loaded: LoadedConfig | None = None) -> ServiceThread:
        runner = TelegramRunner(loaded or config, secrets or secrets_env, mode, peer_timeout_s=peer_timeout_s,
                                first_backoff_s=0.1, clock=clock)
        service = ServiceThread(runner).start()
        started.append(service)
        if wait_connected:
            assert runner.connected.wait(10), "the service did not connect to the fake Bot API"
        return service

    yield start
    for service in started:
        service.stop()
