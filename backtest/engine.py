"""One backtest: the live cores wired on the in-process bus, stepped through the history bar by bar.

A step is what the lockstep gateway does live (``services/gateway_mt5/lockstep.py``): the sim replays
the next M1 close time (every symbol's bar of that minute); the clock moves to that market time; the
gateway publishes the exit deals, the heartbeat and the account, and the bus is drained (risk counts
them); then the bars and the M5/M15 bars they complete, and the bus is drained again (signals, plans,
orders, reports: ``bus.py`` says in which order); risk polls the gateway for the open positions
and broadcasts its state; a job of the executor that pauses is ticked until it is done. Only then does
the next step begin, so every order of a bar is filled at that bar's quote, as the live system does in
lockstep mode.

Start-up follows the runners: the executor reconciles its (empty) journal, risk asks for the specs and
the account, each strategy asks for its spec and warms up on the last ``strategy.warmup_bars`` closed
bars of M15, M5 and M1 before the first step.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from backtest.bus import Bus, MarketClock, Node
from backtest.inputs import BacktestSetup
from backtest.nodes import PLAN_TOPIC, ExecutorNode, GatewayNode, RiskNode, StrategyNode
from backtest.recorder import WATCHED, Recorder
from backtest.report import EquityPoint, Trade
from services.executor.core import ExecutorCore
from services.executor.desk import SymbolRules
from services.executor.journal import Journal
from services.gateway_mt5.core import GatewayCore
from services.gateway_mt5.sim.broker import SimBroker
from services.risk.core import RiskCore
from services.risk.store import RiskStore
from services.strategy_btc.core import BtcStrategy
from services.strategy_xau.core import XauStrategy
from shared.messages import (
    AccountReply,
    AccountRequest,
    AccountSnapshot,
    OrderPlan,
    PositionData,
    PositionsReply,
    PositionsRequest,
)
from shared.strategy.core import StrategyCore
from shared.symbol_config import SymbolConfig

STRATEGIES: dict[str, tuple[str, Callable[[SymbolConfig], StrategyCore]]] = {
    "XAUUSDm": ("strategy_xau", XauStrategy),
    "BTCUSDm": ("strategy_btc", BtcStrategy),
}
"""The strategy service of each symbol, as supervisord runs them."""
OBSERVER = "backtest"  # the identity of the final read-only requests
Progress = Callable[[float, int], None]  # (market time reached, M1 bars replayed)


@dataclass(frozen=True)
class BacktestResult:
    """What the run produced; ``trades`` and ``plans`` are in the order they happened."""

    trades: list[Trade]
    equity: list[EquityPoint]
    plans: list[OrderPlan]
    regime_days: dict[str, set[str]]
    refusals: dict[str, int]
    signals: int
    legs_rejected: int
    legs_unknown: int
    m1_bars: int
    steps: int
    seconds: float  # the replay loop (wall time: for the figures, never for a decision)
    startup_seconds: float  # building the cores, loading the history into the sim, the warm-up
    warmed_up: dict[str, int]


class Pipeline:
    """The six services but Telegram, as cores on one bus: built from a setup, started, then stepped."""

    def __init__(self, setup: BacktestSetup, state_dir: Path) -> None:
        config = setup.config
        self.setup = setup
        self.clock = clock = MarketClock(setup.start)
        self.bus = bus = Bus()
        self.gateway = gateway = GatewayNode(GatewayCore(SimBroker(setup.sim, clock), config.system.gateway, clock),
                                             bus)
        self.strategies: list[StrategyNode] = []
        for symbol, symbol_config in config.symbols.items():
            if symbol not in STRATEGIES:
                raise ValueError(f"no strategy service trades {symbol}: known {', '.join(STRATEGIES)}")
            service, make = STRATEGIES[symbol]
            self.strategies.append(StrategyNode(service, make(symbol_config), gateway, bus,
                                                config.system.strategy.warmup_bars))
        state_dir.mkdir(parents=True, exist_ok=True)
        self._store = RiskStore(state_dir / "risk.sqlite", sync="off")
        magics = {c.symbol.magic for c in config.symbols.values()}
        self.risk = RiskNode(RiskCore(config, self._store, clock), gateway, bus,
                             magics.pop() if len(magics) == 1 else None)
        settings = config.system.executor
        self._journal = Journal(state_dir / settings.journal_file)
        rules = {name: SymbolRules(magic=c.symbol.magic, deviation_points=c.execution.deviation_points)
                 for name, c in config.symbols.items()}
        self.executor = ExecutorNode(ExecutorCore(clock, self._journal, settings, rules), gateway, bus, clock)
        nodes: list[Node] = [*self.strategies, self.risk, self.executor]  # the order the bus drains them in
        for node in nodes:
            bus.attach(node)
        self.recorder = Recorder({s: setup.sim.symbols[s].commission_per_lot for s in config.symbols})
        bus.watch((*WATCHED, PLAN_TOPIC), self.recorder)
        self.steps = 0

    def start(self) -> dict[str, int]:
        """Start-up as the runners do it; returns the bars each strategy warmed up with."""
        self.gateway.start()
        self.executor.start()
        self.risk.sync()
        warmed = {node.name: node.start() for node in self.strategies}
        self.bus.drain()
        return warmed

    def step(self) -> bool:
        """One bar time (see the module's docstring); False once the history is exhausted."""
        gateway, bus = self.gateway, self.bus
        if not gateway.step():
            # Nothing new: the end of the data, or an injected disconnect (the sim runs on with each attempt).
            return not getattr(gateway.core.broker, "finished", False)
        now = gateway.core.market_now
        self.clock.advance_to(now)
        bus.drain()
        gateway.publish_bars()
        bus.drain()
        self.risk.sync()
        self.risk.timer(self.clock.monotonic())
        bus.drain()
        if self.executor.waiting:
            self.executor.wait_out(now + 60.0)
        self.steps += 1
        return True

    def finish(self) -> tuple[list[PositionData], AccountSnapshot | None]:
        """The positions still open and the account at the end (read-only requests), then close the files."""
        try:
            positions = self.gateway.request(OBSERVER, PositionsRequest(ts=self.clock.now()))
            account = self.gateway.request(OBSERVER, AccountRequest(ts=self.clock.now()))
        finally:
            self.close()
        still_open = list(positions.positions) if isinstance(positions, PositionsReply) else []
        return still_open, account.account if isinstance(account, AccountReply) else None

    def close(self) -> None:
        self._store.close()
        self._journal.close()


def run_backtest(setup: BacktestSetup, state_dir: Path, progress: Progress | None = None) -> BacktestResult:
    """Run the setup to its end; the risk store and the executor journal are written in ``state_dir``."""
    started = time.perf_counter()
    pipeline = Pipeline(setup, state_dir)
    try:
        warmed = pipeline.start()
        core = pipeline.gateway.core
        replay_started = time.perf_counter()
        with _quiet_collector():
            while core.market_now < setup.end and pipeline.step():
                if progress is not None:
                    progress(core.market_now, pipeline.gateway.m1_bars)
        seconds = time.perf_counter() - replay_started
    except BaseException:
        pipeline.close()
        raise
    still_open, account = pipeline.finish()
    recorder = pipeline.recorder
    if account is not None:
        recorder.equity.append(EquityPoint(account.ts, account.balance, account.equity))
    return BacktestResult(
        trades=recorder.trades(still_open), equity=recorder.equity, plans=recorder.plans,
        regime_days=recorder.regime_days, refusals=dict(sorted(recorder.refusals.items())),
        signals=sum(node.signals for node in pipeline.strategies), legs_rejected=recorder.legs_rejected,
        legs_unknown=recorder.legs_unknown, m1_bars=pipeline.gateway.m1_bars, steps=pipeline.steps,
        seconds=seconds, startup_seconds=replay_started - started, warmed_up=warmed,
    )


@contextmanager
def _quiet_collector() -> Iterator[None]:
    """Keep the cyclic garbage collector off the loaded history and the warmed-up state, and run it less often.

    A run allocates millions of short-lived messages and no cycles worth chasing every 700 allocations; with
    the long-lived objects frozen and a larger first generation the replay is about 10 % faster. The
    caller's settings come back afterwards."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, thresholds[1], thresholds[2])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
