"""The executor core against the real gateway core and simulated broker, in one process, on a fake clock.

``Bench`` wires an ``ExecutorCore`` (real journal file) to a ``GatewayCore`` over a ``SimBroker`` on flat
synthetic bars (gold bid 3300.000 / ask 3300.200, bitcoin bid 100000.00 / ask 100010.00), through a
``Link`` that stands in for the socket: it can lose the request (gateway down), or run it and lose the
reply (gateway died after the broker acted), or make the broker's spec read differently. A ``Crash``
raised at a journal checkpoint stands in for SIGKILL: the core is dropped and a new one is built on the
same journal file, while the broker lives on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from services.executor.core import ExecutorCore
from services.executor.desk import SymbolRules
from services.executor.journal import Journal, LegRecord
from services.gateway_mt5.core import GatewayCore
from services.gateway_mt5.sim.broker import SimBroker
from shared.clock import FakeClock
from shared.config import ExecutorSection, GatewaySection
from shared.messages import (
    AnyMessage,
    Message,
    OrderLeg,
    OrderPlan,
    PositionData,
    Side,
    SymbolSpecReply,
)
from tests.unit.sim.helpers import T0, broker, flat

MAGIC = 777001
XAU_BID, XAU_ASK = 3300.0, 3300.2
BTC_BID, BTC_ASK = 100_000.0, 100_010.0
RULES = {"XAUUSDm": SymbolRules(MAGIC, 50), "BTCUSDm": SymbolRules(MAGIC, 50)}
SETTINGS = ExecutorSection(request_timeout_s=1.0, max_retries=3, retry_window_s=3.0, retry_backoff_s=0.1,
                           verify_retry_s=0.5)
START = float(T0 + 60)  # market time of the first quote


class Crash(Exception):  # noqa: N818 (stands for the signal, not an error)
    """Raised at a journal checkpoint: the process 'dies' there."""


def sim_broker(tmp_path: Path, *, faults: dict[str, Any] | None = None,
               symbols: dict[str, dict[str, Any]] | None = None) -> SimBroker:
    """Both symbols on 600 flat bars from T0 (market open), paced 60x by a fake clock."""
    return broker(tmp_path, xau=flat(XAU_BID, 600), btc=flat(BTC_BID, 600), faults=faults or {},
                  symbols=symbols, initial_balance=1_000_000.0, speed=60)


@dataclass
class Link:
    """The executor's DEALER to the gateway, as seen by the core: a reply, or None (no reply in time)."""

    gateway: GatewayCore
    mode: Literal["up", "down", "lose_replies"] = "up"
    spec_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[Message] = field(default_factory=list)

    def __call__(self, request: Message) -> AnyMessage | None:
        self.seen.append(request)
        if self.mode == "down":
            return None
        reply = self.gateway.handle_request("executor", request)
        if self.mode == "lose_replies":
            return None
        if isinstance(reply, SymbolSpecReply) and reply.spec.name in self.spec_overrides:
            spec = reply.spec.model_copy(update=self.spec_overrides[reply.spec.name])
            reply = reply.model_copy(update={"spec": spec})
        return reply  # type: ignore[return-value]


class Bench:
    """An executor core, its journal file and a gateway over the simulated broker."""

    def __init__(self, tmp_path: Path, sim: SimBroker, *, settings: ExecutorSection = SETTINGS) -> None:
        self.clock = FakeClock()
        self.sim = sim
        self.gateway = GatewayCore(sim, GatewaySection(), self.clock)
        assert self.gateway.connect()
        self.link = Link(self.gateway)
        self.journal_path = tmp_path / "state" / "executor.sqlite"
        self.settings = settings
        self.crash_at: str | None = None
        self.crash_skip = 0
        self.crash_countdown: int | None = None  # crash at the checkpoint after this many, whatever its step
        self.out: list[Message] = []
        self.crashes = 0
        self.deliver = True  # False: the runner's push to risk "failed", so reports stay undelivered
        self.core = self._new_core()

    def _checkpoint(self, step: str) -> None:
        if self.crash_countdown is not None:
            self.crash_countdown -= 1
            if self.crash_countdown < 0:
                self.crash_countdown = None
                raise Crash(step)
        if step == self.crash_at:
            if self.crash_skip:
                self.crash_skip -= 1
                return
            self.crash_at = None
            raise Crash(step)

    def _new_core(self) -> ExecutorCore:
        self.journal = Journal(self.journal_path)
        return ExecutorCore(self.clock, self.journal, self.settings, RULES, self._checkpoint)

    def restart(self) -> list[Message]:
        """A new process on the same journal: reconciliation runs first."""
        self.journal.close()
        self.core = self._new_core()
        return self.take(self.core.start())

    def take(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if self.deliver:
                self.core.delivered(message)
        self.out.extend(messages)
        return messages

    def start(self) -> list[Message]:
        return self._guard(self.core.start)

    def accept(self, plan: OrderPlan) -> list[Message]:
        return self._guard(lambda: self.core.accept(plan))

    def command(self, message: Message) -> list[Message]:
        return self._guard(lambda: self.core.command(message))

    def _guard(self, call: Any) -> list[Message]:
        try:
            return self.take(call())
        except Crash:
            self.crashes += 1
            return self.restart()

    def drive(self, limit: int = 500, pause_s: float = 0.25, settle: bool = True) -> list[Message]:
        """Serve the core's requests until it has no work; pauses pass on the fake clock (and the market moves).

        ``settle``: fail unless the work is done within ``limit`` steps; else just take ``limit`` steps.
        """
        start = len(self.out)
        for _ in range(limit):
            request = self.core.next_request()
            if request is None:
                if self.core.queue_len == 0:
                    return self.out[start:]
                self.clock.advance(pause_s)
                self.gateway.poll()
                self._guard(self.core.on_timer)
                continue
            reply = self.link(request)
            self._guard(lambda reply=reply: self.core.on_reply(reply))
        if settle:
            raise AssertionError(f"the executor did not settle in {limit} steps")
        return self.out[start:]

    # ------------------------------------------------------------------ what the broker and journal say

    def positions(self) -> list[PositionData]:
        return [p for p in self.sim.positions() if p.magic == MAGIC]

    def legs(self) -> list[LegRecord]:
        journal = Journal(self.journal_path)
        try:
            return journal.legs()
        finally:
            journal.close()

    def assert_broker_matches_journal(self) -> None:
        """The broker holds exactly the legs the journal says are filled, each once; no leg is left open."""
        legs = self.legs()
        assert not [leg.leg_id for leg in legs if leg.state not in ("filled", "rejected")]
        filled = {(leg.leg_id, leg.ticket) for leg in legs if leg.state == "filled"}
        held = [(p.comment, p.ticket) for p in self.positions() if p.comment in {leg.leg_id for leg in legs}]
        assert len(held) == len(set(held)) and set(held) == filled, (held, filled)
        journal = Journal(self.journal_path)
        try:
            unknown = {p.ticket for p in self.positions()} - journal.known_tickets()
        finally:
            journal.close()
        assert not unknown, f"positions of ours the journal does not know: {unknown}"


def plan(
    plan_id: str = "XAU1b", *, symbol: str = "XAUUSDm", side: Side = "buy", legs: int = 1, volume: float = 0.1,
    ts: float = START, expires_at: float = START + 3600, price: float | None = None,
) -> OrderPlan:
    """A plan with valid stops around the flat quotes."""
    bid, ask, away = (XAU_BID, XAU_ASK, 10.0) if symbol == "XAUUSDm" else (BTC_BID, BTC_ASK, 1000.0)
    entry = price if price is not None else (ask if side == "buy" else bid)
    sl, tp = (bid - away, bid + away) if side == "buy" else (ask + away, ask - away)
    return OrderPlan(
        ts=ts, plan_id=plan_id, signal_id=f"sig-{plan_id}", symbol=symbol, side=side, price=entry,
        deviation_points=50, magic=MAGIC,
        legs=tuple(OrderLeg(leg_id=f"{plan_id}-{n}", volume=volume, sl=sl, tp=tp) for n in range(1, legs + 1)),
        confidence=0.9, regime="A", reasons=("test",), expires_at=expires_at,
    )
