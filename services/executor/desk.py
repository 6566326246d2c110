"""What every executor job shares: clock, journal, settings, symbol specs, market time and the outbox.

A job (one leg, one owner command, the start-up reconciliation) is a generator: it yields a gateway
request, or a ``Wait``, and is sent the gateway's reply (None: no reply in time). Each job reads in the
order things happen at the broker (send, read the retcode, retry, ask the broker what it holds) while
the core around it stays a socket-free state machine: ``ExecutorCore`` holds the one job in flight and
hands its request to the runner, so only one broker-mutating request is ever outstanding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass

from services.executor.journal import Journal
from shared.clock import Clock
from shared.config import ExecutorSection
from shared.messages import (
    AnyMessage,
    DealClosed,
    DealsReply,
    DealsRequest,
    Message,
    PositionData,
    PositionsReply,
    PositionsRequest,
    SymbolSpec,
    SymbolSpecReply,
    SymbolSpecRequest,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Wait:
    """A job's pause (monotonic seconds): a backoff before a resend, or while the gateway is silent."""

    seconds: float


Step = Message | Wait
Reply = AnyMessage | None
Job = Generator[Step, Reply, None]


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """What the executor needs from a symbol's config: our magic on it and the allowed deviation."""

    magic: int
    deviation_points: int


Checkpoint = Callable[[str], None]
CHECKPOINTS = ("intended", "sending", "replied", "unknown", "recorded")
"""The journal steps a test may crash the process at (PORTFOLIO_EXECUTOR_CRASH_AT, fault injection)."""


def _no_checkpoint(step: str) -> None:
    """Production: a checkpoint does nothing."""


class Desk:
    """The shared state of the jobs; only the job in flight touches it, so no locking is needed."""

    def __init__(
        self,
        clock: Clock,
        journal: Journal,
        settings: ExecutorSection,
        rules: dict[str, SymbolRules],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.clock = clock
        self.journal = journal
        self.settings = settings
        self.rules = rules
        self.checkpoint: Checkpoint = checkpoint or _no_checkpoint
        self.specs: dict[str, SymbolSpec] = {}
        self.market_now = 0.0
        self.sent_total = 0
        self.reconciled = False
        self._outbox: list[Message] = []
        self._spawned: list[tuple[str, Job]] = []

    def observe(self, ts: float) -> None:
        """Market time only moves forward; plans and the gateway's replies carry it."""
        self.market_now = max(self.market_now, ts)

    def emit(self, message: Message) -> None:
        self._outbox.append(message)

    def take_outbox(self) -> list[Message]:
        out, self._outbox = self._outbox, []
        return out

    def spawn_first(self, label: str, job: Job) -> None:
        """Queue a job ahead of everything waiting (the reconciliation re-queues unsent legs this way)."""
        self._spawned.append((label, job))

    def take_spawned(self) -> list[tuple[str, Job]]:
        spawned, self._spawned = self._spawned, []
        return spawned

    def ours(self, position: PositionData) -> bool:
        """A position of ours: a configured symbol and that symbol's magic."""
        rules = self.rules.get(position.symbol)
        return rules is not None and position.magic == rules.magic

    # ------------------------------------------------------------------ questions to the gateway

    def spec(self, symbol: str, *, fresh: bool = False) -> Generator[Step, Reply, SymbolSpec | None]:
        """The symbol's spec: cached, or asked (``fresh``: always asked; tick value may move). None if unknown."""
        if not fresh and symbol in self.specs:
            return self.specs[symbol]
        reply = yield SymbolSpecRequest(ts=self.market_now, symbol=symbol)
        if isinstance(reply, SymbolSpecReply):
            self.specs[symbol] = reply.spec
            return reply.spec
        log.warning("no spec of %s from the gateway: %s", symbol, "no reply" if reply is None else reply)
        return None

    def positions(
        self, symbol: str | None = None, magic: int | None = None,
    ) -> Generator[Step, Reply, tuple[PositionData, ...] | None]:
        """Open positions (filtered by the broker), or None when the gateway did not answer."""
        reply = yield PositionsRequest(ts=self.market_now, symbol=symbol, magic=magic)
        return reply.positions if isinstance(reply, PositionsReply) else None

    def deals(
        self, since: float, symbol: str | None = None, magic: int | None = None,
    ) -> Generator[Step, Reply, tuple[DealClosed, ...] | None]:
        """Exit deals since a market time, or None when the gateway did not answer."""
        reply = yield DealsRequest(ts=self.market_now, since=max(0.0, since), symbol=symbol, magic=magic)
        return reply.deals if isinstance(reply, DealsReply) else None
