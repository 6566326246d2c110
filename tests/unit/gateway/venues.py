"""The broker implementations the contract suite runs against, over one simulated market.

- ``sim``: the SimBroker itself.
- ``mt5``: TerminalBroker driving the fake MetaTrader5 module in this process.
- ``mt5linux``: TerminalBroker driving ``mt5linux.MetaTrader5(host, port)``, a real RPyC client, whose
  bridge (an RPyC classic server on 127.0.0.1, as ``python -m mt5linux`` runs under Wine) serves the fake
  module as ``MetaTrader5``; every result crosses the socket as a remote proxy.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.gateway_mt5.broker import Broker, MarketUpdate
from services.gateway_mt5.hours import PRESET_HOURS
from services.gateway_mt5.sim.broker import SimBroker
from services.gateway_mt5.terminal.adapter import TerminalBroker
from services.gateway_mt5.terminal.api import Mt5Api
from services.gateway_mt5.terminal.settings import Credentials, TerminalSettings
from shared.clock import FakeClock
from tests.fakes.fake_mt5 import FakeMetaTrader5
from tests.unit.sim.helpers import Row, broker

KINDS = ("sim", "mt5", "mt5linux")
CREDENTIALS = Credentials(login=5550001, server="Exness-MT5Trial", password="fake-password")


@dataclass
class Venue:
    """One broker under test, the simulated market it trades on, and how to move that market."""

    kind: str
    broker: Broker
    sim: SimBroker
    fake: FakeMetaTrader5 | None = None
    clock: FakeClock | None = None

    def advance(self, t: float) -> MarketUpdate:
        """Move the market to ``t`` and poll, as the gateway does (reconnecting first if it must)."""
        if self.fake is None:
            return self.sim.advance_to(t)
        assert self.clock is not None
        self.fake.advance_to(t)
        self.clock.advance(max(0.0, t - self.clock.now()))
        self.broker.connect()
        return self.broker.poll()

    @property
    def terminal(self) -> TerminalBroker:
        """The adapter (terminal venues only)."""
        assert isinstance(self.broker, TerminalBroker)
        return self.broker


class Bridge:
    """An RPyC classic server on loopback serving whatever ``sys.modules['MetaTrader5']`` is."""

    def __init__(self) -> None:
        rpyc = pytest.importorskip("rpyc")
        server = pytest.importorskip("rpyc.utils.server")
        self.server = server.ThreadedServer(rpyc.ClassicService, hostname="127.0.0.1", port=0)
        self.thread = threading.Thread(target=self.server.start, daemon=True)
        self.thread.start()
        self.port: int = self.server.port

    def close(self) -> None:
        self.server.close()


def settings(tmp_path: Path, backend: str, **overrides: Any) -> TerminalSettings:
    """Adapter settings for the two shipped symbols, locks under ``tmp_path``."""
    values: dict[str, Any] = {
        "backend": backend, "symbols": ("XAUUSDm", "BTCUSDm"), "hours": PRESET_HOURS, "run_dir": tmp_path / "run",
        "call_deadline_s": 5.0,
    }
    values.update(overrides)
    return TerminalSettings(**values)


def make_terminal(
    sim: SimBroker, tmp_path: Path, kind: str = "mt5", bridge: Bridge | None = None, *, connect: bool = True,
    **overrides: Any,
) -> tuple[TerminalBroker, FakeMetaTrader5, FakeClock]:
    """The adapter over a fake terminal on ``sim`` (through the bridge for mt5linux), connected and polled
    once unless ``connect`` is false."""
    fake = FakeMetaTrader5(sim, login=CREDENTIALS.login, password=CREDENTIALS.password, server=CREDENTIALS.server)
    clock = FakeClock(sim.now)
    if kind == "mt5linux":
        assert bridge is not None
        mt5linux = pytest.importorskip("mt5linux")
        sys.modules["MetaTrader5"] = fake  # type: ignore[assignment]  # what the bridge imports

        def make_api() -> Mt5Api:
            api: Mt5Api = mt5linux.MetaTrader5(host="127.0.0.1", port=bridge.port)
            return api
    else:

        def make_api() -> Mt5Api:
            return fake

    symbols = tuple(sim.symbols())
    overrides = {"symbols": symbols, "hours": {s: PRESET_HOURS[s] for s in symbols}, **overrides}
    adapter = TerminalBroker(settings(tmp_path, "mt5linux" if kind == "mt5linux" else "mt5", **overrides),
                             CREDENTIALS, make_api, clock)
    if connect:
        adapter.connect()
        adapter.poll()  # the first poll sets the bar cursors, as at a gateway's start
    return adapter, fake, clock


def make_venue(
    kind: str, tmp_path: Path, xau: list[Row] | None, btc: list[Row] | None, bridge: Bridge | None = None,
    **sim_settings: Any,
) -> Venue:
    """A venue of ``kind`` over synthetic bars (tests.unit.sim.helpers.broker's layout and start)."""
    sim = broker(tmp_path, xau=xau, btc=btc, **sim_settings)
    if kind == "sim":
        return Venue(kind, sim, sim)
    adapter, fake, clock = make_terminal(sim, tmp_path, kind, bridge)
    return Venue(kind, adapter, sim, fake, clock)


def close(venue: Venue) -> None:
    """Close a terminal venue's adapter (thread, locks) and forget the fake module."""
    if isinstance(venue.broker, TerminalBroker):
        venue.broker.close()
    sys.modules.pop("MetaTrader5", None)
    while "C:\\mt5libs" in sys.path:  # mt5linux's client appends it on the bridge, which is this process
        sys.path.remove("C:\\mt5libs")
