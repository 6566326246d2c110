"""The gateway's lockstep replay (parity mode) and the in-process bus the backtest publishes a step on."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backtest.bus import Bus, MarketClock
from backtest.inputs import build_setup
from services.gateway_mt5.core import GatewayCore
from services.gateway_mt5.lockstep import START_QUIET_S, Lockstep, check_lockstep
from services.gateway_mt5.runner import validate_backend_config
from services.gateway_mt5.sim.broker import SimBroker
from shared.config import ConfigError, load_config
from shared.messages import AccountSnapshot, Bar, GatewayHeartbeat, Message, Tick
from tests.unit.backtest.helpers import copy_configs, write_m1

T0 = 1_752_537_600  # 2025-07-15 00:00 UTC
QUIET = 0.0625  # binary-exact, so the sums of the test land on the boundary exactly


@pytest.fixture
def stepper(tmp_path: Path) -> tuple[Lockstep, list[tuple[str, Message]]]:
    rows = [(T0 + 60 * i, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i) for i in range(30)]
    write_m1(tmp_path / "data" / "BTCUSDm.csv", rows)
    setup = build_setup(copy_configs(tmp_path), ["BTCUSDm"], tmp_path / "data",
                        start=datetime.fromtimestamp(T0 + 20 * 60, UTC))
    clock = MarketClock(setup.start)
    core = GatewayCore(SimBroker(setup.sim, clock), setup.config.system.gateway, clock)
    core.connect()
    published: list[tuple[str, Message]] = []
    lockstep = Lockstep(core, lambda topic, message: published.append((topic, message)), QUIET, ("risk", "executor"))
    return lockstep, published


def test_the_first_step_waits_for_every_caller_then_the_start_quiet(
    stepper: tuple[Lockstep, list[tuple[str, Message]]],
) -> None:
    lockstep, published = stepper
    lockstep.poll(100.0)
    lockstep.heard("risk", 100.0)
    lockstep.poll(200.0)
    assert published == []  # the executor has not asked anything yet
    lockstep.heard("executor", 200.0)
    lockstep.poll(200.0 + START_QUIET_S - 0.01)
    assert published == []
    lockstep.poll(200.0 + START_QUIET_S)
    assert published


def test_a_step_is_two_halves_each_after_a_quiet_gap(stepper: tuple[Lockstep, list[tuple[str, Message]]]) -> None:
    lockstep, published = stepper
    lockstep.heard("risk", 0.0)
    lockstep.heard("executor", 0.0)
    lockstep.poll(10.0)
    kinds = [type(message) for _, message in published]
    assert kinds == [Tick, GatewayHeartbeat, AccountSnapshot]  # the market's state first: no bar yet
    lockstep.poll(10.0 + QUIET / 2)
    assert len(published) == 3
    lockstep.heard("risk", 10.0 + QUIET / 2)  # a request restarts the quiet
    lockstep.poll(10.0 + QUIET)
    assert len(published) == 3
    lockstep.poll(10.0 + 1.5 * QUIET)
    bars = [message for _, message in published[3:]]
    assert [(b.symbol, b.timeframe, b.time) for b in bars if isinstance(b, Bar)] == [("BTCUSDm", "M1", T0 + 20 * 60)]
    lockstep.poll(10.0 + 2.5 * QUIET)
    assert isinstance(published[-3][1], Tick) and lockstep.steps == 2


def test_lockstep_needs_the_sim_one_bar_time_per_poll(tmp_path: Path) -> None:
    config = load_config(copy_configs(tmp_path, {"system.toml": [
        ("stale_after_s = 120.0", "stale_after_s = 120.0\nlockstep_quiet_s = 0.05")]}))
    with pytest.raises(ConfigError, match=re.escape("sim.speed = 0 and sim.max_bars_per_poll = 1")):
        validate_backend_config(config)
    check_lockstep(config, 0.0, 1)  # what the parity test configures


def test_the_bus_routes_by_prefix_and_drains_in_attach_order() -> None:
    taken: list[str] = []

    class Node:
        def __init__(self, name: str, subscriptions: tuple[str, ...], bus: Bus, forward: str | None) -> None:
            self.name, self.subscriptions, self._bus, self._forward = name, subscriptions, bus, forward

        def take(self, message: Message) -> None:
            taken.append(f"{self.name}:{message.id}")
            if self._forward:
                self._bus.push(self._forward, message.model_copy(update={"id": f"{message.id}+"}))

    bus = Bus()
    bus.attach(Node("first", ("bar.BTC",), bus, forward="second"))
    bus.attach(Node("second", ("heartbeat",), bus, forward=None))
    seen: list[str] = []
    bus.watch(("bar.",), lambda topic, message: seen.append(topic))
    heartbeat = GatewayHeartbeat(id="h", ts=1.0, backend="sim", connected=True, symbols={})
    bar = Bar(id="b", ts=60.0, symbol="BTCUSDm", timeframe="M1", time=0, open=1, high=1, low=1, close=1,
              tick_volume=0, spread=0)
    bus.publish("heartbeat", heartbeat)
    bus.publish("bar.BTCUSDm.M1", bar)
    bus.publish("bar.XAUUSDm.M1", bar)
    bus.drain()
    # "second" takes the heartbeat published first, then what "first" pushed to it in the same round.
    assert taken == ["first:b", "second:h", "second:b+"]
    assert seen == ["bar.BTCUSDm.M1", "bar.XAUUSDm.M1"]
    assert not bus.pending()


def test_the_market_clock_only_moves_forward() -> None:
    clock = MarketClock(100.0)
    clock.advance_to(160.0)
    clock.advance_to(120.0)
    assert clock.now() == clock.monotonic() == 160.0
