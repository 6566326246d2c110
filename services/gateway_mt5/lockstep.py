"""Lockstep replay: the simulated market moves one M1 close time only when the pipeline is done with the last.

Off by default (``gateway.lockstep_quiet_s = 0``); the parity test turns it on, so that the system of
processes places, bar for bar, the orders the backtest places on the same data. Paced by the wall clock
(``sim.speed``), a replay lets the market run on while an order travels from a strategy to the broker,
so where it fills, and so what risk counts when the next signal comes, depends on the machine's load.

A step (``sim.speed = 0``, ``sim.max_bars_per_poll = 1``: one M1 close time, every symbol's bar of it) is
published in two halves, each only after ``lockstep_quiet_s`` without a request reaching the gateway:

1. what happened at the broker up to the new market time: the exit deals and the latest quotes, then the
   heartbeat and the account snapshot. Risk counts a closed position, a new balance and the market's
   state before any signal of the new bar exists (risk's inbox would otherwise race its subscription);
2. the bars (M1 and the M5/M15 they complete). Strategies analyse, risk plans, the executor sends: the
   order reaches the gateway as a request, which holds the next step back until the quiet returns.

The first step also waits until every caller in ``lockstep_callers`` has asked something (the strategies
have their history, risk its specs, the executor its reconciliation) and ``START_QUIET_S`` has passed
(a strategy folds its history into its indicators after the last reply). "Done" is judged by silence:
the gap must exceed the pipeline's slowest hop, which on tmpfs state is a few milliseconds.

``split_step`` is also the order the backtest publishes a step in (``backtest/nodes.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from services.gateway_mt5.core import GatewayCore, Publication
from shared.config import ConfigError, LoadedConfig
from shared.messages import Bar, Message

START_QUIET_S = 0.5
"""Quiet before the first step: a strategy folds its history (tens of ms) after its last reply; shorter than
risk's 1 s poll of the gateway, which would otherwise keep restarting the wait."""


def split_step(publications: Iterable[Publication]) -> tuple[list[Publication], list[Publication]]:
    """(market state: deals and ticks, bars), each in the order the gateway core gave them."""
    state: list[Publication] = []
    bars: list[Publication] = []
    for publication in publications:
        (bars if isinstance(publication[1], Bar) else state).append(publication)
    return state, bars


def check_lockstep(config: LoadedConfig, speed: float | None, max_bars_per_poll: int | None) -> None:
    """Lockstep needs the sim replaying one bar time per poll; ConfigError naming the keys otherwise."""
    if config.system.gateway.lockstep_quiet_s <= 0:
        return
    if speed != 0 or max_bars_per_poll != 1:
        raise ConfigError(f"{config.path}: gateway.lockstep_quiet_s > 0 replays the sim in lockstep: it needs "
                          "broker.backend = 'sim' with sim.speed = 0 and sim.max_bars_per_poll = 1")


class Lockstep:
    """Decides when the next half-step may be published, from the requests the gateway hears."""

    def __init__(self, core: GatewayCore, publish: Callable[[str, Message], object], quiet_s: float,
                 callers: Iterable[str]) -> None:
        self._core = core
        self._publish = publish
        self._quiet_s = quiet_s
        self._waiting_for = set(callers)
        self._last = 0.0
        self._started = False
        self._bars: list[Publication] = []
        self.steps = 0

    def heard(self, caller: str, now: float) -> None:
        """A request was answered: the pipeline is at work."""
        self._waiting_for.discard(caller)
        self._last = now

    def poll(self, now: float) -> None:
        """Called on the gateway's poll timer: publish the next half-step if the pipeline has been quiet."""
        if self._waiting_for:
            return
        quiet = self._quiet_s if self._started else max(self._quiet_s, START_QUIET_S)
        if now - self._last < quiet:
            return
        self._started = True
        self._last = now
        if self._bars:
            bars, self._bars = self._bars, []
            for topic, message in bars:
                self._publish(topic, message)
            return
        state, self._bars = split_step(self._core.poll())
        if not state and not self._bars:
            return  # the replay has ended (or the broker is unreachable): nothing new to tell
        self.steps += 1
        for topic, message in state:
            self._publish(topic, message)
        self._publish(*self._core.heartbeat())
        snapshot = self._core.account_snapshot()
        if snapshot is not None:
            self._publish(*snapshot)
