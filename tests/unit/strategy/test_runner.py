"""A strategy process restarted mid-session, over real ZeroMQ ipc sockets.

``python -m services.strategy_btc`` runs as a child process on a config whose sockets are in tmp_path.
A fake gateway made here answers its spec and history requests from the shipped bitcoin history, cut
in the middle of the data; the test then publishes the next closed bars and pulls, at risk_in, the
signal for the very first of them: the same signal an in-process core warmed with the same history
gives. SIGTERM stops the child, which must exit 0. Every wait is a poll with a deadline.
"""

from __future__ import annotations

import os
import signal as signals
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from shared import topics
from shared.bus import Publisher, Puller, Replier
from shared.config import load_config
from shared.messages import (
    AnyMessage,
    Bar,
    ErrorReply,
    HistoryReply,
    HistoryRequest,
    Signal,
    SymbolSpecReply,
    SymbolSpecRequest,
)
from tests.unit.strategy.helpers import BTC, REPO, SPECS, shipped_stream, strategy

Context = zmq.Context[zmq.Socket[bytes]]
CUT = 40_000  # position in the stream of the first bar after the restart (about three weeks in)


@pytest.fixture
def ctx() -> Iterator[Context]:
    context: Context = zmq.Context()
    yield context
    context.destroy(linger=0)


def write_config(root: Path) -> Path:
    configs = root / "configs"
    configs.mkdir(parents=True)
    for name in ("xau.toml", "btc.toml"):
        (configs / name).write_text((REPO / "configs" / name).read_text())
    path = configs / "system.toml"
    path.write_text(f'[paths]\nlogs_dir = "{root}/Logs"\nrun_dir = "{root}/run"\nstate_dir = "{root}/state"\n'
                    f'data_dir = "{REPO}/data"\n')
    return path


def answer(request: AnyMessage, history: tuple[Bar, ...]) -> AnyMessage:
    """What the gateway would say: the spec, or the last ``count`` closed bars of a timeframe."""
    if isinstance(request, SymbolSpecRequest):
        return SymbolSpecReply(ts=0, parent=request.id, spec=SPECS[BTC])
    if isinstance(request, HistoryRequest):
        bars = tuple(b for b in history if b.timeframe == request.timeframe)[-request.count :]
        return HistoryReply(ts=0, parent=request.id, bars=bars)
    return ErrorReply(ts=0, parent=request.id, code="unsupported", text=type(request).__name__)


def restart_point(stream: tuple[Bar, ...], warmup_bars: int) -> tuple[int, Signal]:
    """The first M1 bar from CUT on where a core warmed as the runner warms one (the spec and the
    gateway's last ``warmup_bars`` bars per timeframe) signals at once, and that signal."""
    for cut in range(CUT, CUT + 200):
        if stream[cut].timeframe != "M1":
            continue
        core = strategy(BTC)
        core.handle(answer(SymbolSpecRequest(ts=0, symbol=BTC), stream[:cut]))
        for tf in ("M15", "M5", "M1"):
            reply = answer(HistoryRequest(ts=0, symbol=BTC, timeframe=tf, count=warmup_bars), stream[:cut])
            assert isinstance(reply, HistoryReply)
            core.warm_up(reply.bars)
        signals = core.handle(stream[cut])
        if signals:
            assert signals[0].timeframes == ("M1", "M5", "M15")
            return cut, signals[0]
    raise AssertionError("no signal near CUT: the data or the engine changed")


def test_a_restarted_strategy_signals_on_its_next_bar(ctx: Context, tmp_path: Path) -> None:
    stream = shipped_stream(BTC)
    config_path = write_config(tmp_path)
    system = load_config(config_path).system
    cut, wanted = restart_point(stream, system.strategy.warmup_bars)
    history, first_bar = stream[:cut], stream[cut]

    gateway = Replier(ctx, system.endpoint("gateway_rep"))
    market = Publisher(ctx, system.endpoint("gateway_pub"))
    inbox = Puller(ctx, system.endpoint("risk_in"))
    env = {**os.environ, "PORTFOLIO_ENV_FILE": str(tmp_path / "no.env"), "PYTHONPATH": str(REPO)}
    env.pop("PORTFOLIO_CONFIG", None)
    with (tmp_path / "strategy.stderr").open("wb") as output:
        child = subprocess.Popen([sys.executable, "-m", "services.strategy_btc", "--config", str(config_path)],
                                 cwd=REPO, env=env, stdout=output, stderr=output)
    try:
        asked: set[str] = set()
        got: Signal | None = None
        deadline = time.monotonic() + 30
        while got is None and time.monotonic() < deadline and child.poll() is None:
            while (request := gateway.receive()) is not None:
                identity, message = request
                asked.add(type(message).__name__)
                gateway.reply(identity, answer(message, history))
            if "HistoryRequest" in asked:  # subscribed before it asked: publish (again: repeats are ignored)
                market.publish(topics.bar(BTC, "M1"), first_bar)
            received = inbox.receive()
            got = received if isinstance(received, Signal) else None
            time.sleep(0.02)
        assert got is not None, (tmp_path / "strategy.stderr").read_text() or "no signal before the deadline"
        assert got == wanted
        assert asked >= {"SymbolSpecRequest", "HistoryRequest"}
    finally:
        if child.poll() is None:
            child.send_signal(signals.SIGTERM)
        status = child.wait(timeout=10)
        for closable in (gateway, market, inbox):
            closable.close()
    assert status == 0, (tmp_path / "strategy.stderr").read_text()
