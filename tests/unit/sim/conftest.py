"""Fixtures of the simulator tests: brokers over the shipped history."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.gateway_mt5.sim.broker import SimBroker
from services.gateway_mt5.sim.config import SimConfig
from shared.clock import FakeClock
from tests.unit.sim.helpers import DATA


@pytest.fixture
def replay_broker() -> Iterator[SimBroker]:
    """Both shipped symbols at speed 0, 100 bars a poll, started after the default warm-up."""
    sim = SimBroker(SimConfig(speed=0, max_bars_per_poll=100, initial_balance=100_000), FakeClock(), DATA)
    sim.connect()
    yield sim
    sim.shutdown()
