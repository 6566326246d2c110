"""The executor's core: plans and owner commands in, one broker request at a time out, reports back.

It is a state machine so that it needs no sockets. Work is a FIFO of jobs (``desk.py``): the start-up
reconciliation first, then one job per leg of each accepted plan and one per owner command, in arrival
order. Exactly one job is in flight; ``next_request()`` is its pending gateway request (at most one,
so at most one broker-mutating request is ever outstanding) and ``on_reply(reply)`` feeds the answer
back (None: no answer within the runner's timeout). ``on_timer()`` wakes a job that paused (a backoff,
or the gateway silent). Every call returns what to send: ExecutionReports and PositionAdopted for risk,
CommandReplies for the owner's caller. ``queue_len`` (jobs waiting plus the one in flight) is the ``q``
of the health line.

Exactly once: see ``journal.py`` (what is written before each step), ``legs.py`` (one leg) and
``reconcile.py`` (what a restart does with what it finds). The retcode policy is ``policy.py``.
"""

from __future__ import annotations

import logging
from collections import deque

from services.executor.commands import close_all, set_protection
from services.executor.desk import Checkpoint, Desk, Job, Reply, SymbolRules, Wait
from services.executor.journal import OPEN_STATES, Journal, Telemetry
from services.executor.legs import expired, finish_rejected, open_leg
from services.executor.reconcile import reconcile
from shared.clock import Clock
from shared.config import ExecutorSection
from shared.messages import (
    CloseAll,
    ErrorReply,
    ExecutionReport,
    ExecutorStatus,
    Message,
    OrderPlan,
    SetProtection,
    SymbolSpec,
)

log = logging.getLogger(__name__)


class ExecutorCore:
    """Sends each leg of each plan exactly once, one request at a time; reports every outcome."""

    def __init__(
        self,
        clock: Clock,
        journal: Journal,
        settings: ExecutorSection,
        rules: dict[str, SymbolRules],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.desk = Desk(clock, journal, settings, rules, checkpoint)
        self.refused_duplicates = 0
        self._jobs: deque[tuple[str, Job]] = deque()
        self._label = ""
        self._job: Job | None = None
        self._pending: Message | None = None
        self._wait_until: float | None = None
        # The journal is read now, before any plan can be accepted, so reconciliation sees only the
        # legs of earlier runs.
        self._jobs.append(("reconcile", reconcile(self.desk, journal.legs(*OPEN_STATES), journal.unreported())))

    # ------------------------------------------------------------------ inputs

    @property
    def ready(self) -> bool:
        """True once the journal has been reconciled with the broker."""
        return self.desk.reconciled

    @property
    def market_now(self) -> float:
        return self.desk.market_now

    def set_spec(self, spec: SymbolSpec) -> None:
        """A symbol spec learnt elsewhere (the jobs also ask the gateway for any they lack)."""
        self.desk.specs[spec.name] = spec

    def start(self) -> list[Message]:
        """Begin (the reconciliation is the first job); returns what to send."""
        return self._run()

    def accept(self, plan: OrderPlan) -> list[Message]:
        """Journal a plan's legs as intended, then queue them; a plan or leg id seen before is refused."""
        desk = self.desk
        desk.observe(plan.ts)
        leaving = self._leaves_at_once(plan)
        legs, refused = desk.journal.add_plan(plan, desk.clock.now(), leaving=leaving, market_ts=desk.market_now)
        for reason in refused:
            self.refused_duplicates += 1
            log.warning("refused from plan %s: %s", plan.plan_id, reason)
        if not legs:
            return self._run()
        desk.checkpoint("intended")
        for leg in legs:
            if plan.symbol not in desk.rules:
                finish_rejected(desk, plan, leg, retcode=None, text=f"{plan.symbol} is not a configured symbol",
                                telemetry=Telemetry())
            else:
                self._jobs.append((leg.leg_id, open_leg(desk, plan, leg, journaled_sending=leg.leg_id == leaving)))
        return self._run()

    def _leaves_at_once(self, plan: OrderPlan) -> str | None:
        """The leg of ``plan`` whose request ``_run`` will send within this call, so that the journal can
        record it ``sending`` in the plan's own transaction: the first leg, when no job is in flight or
        waiting, the symbol's spec is known (no question to the gateway first) and the plan has not
        expired (``open_leg`` would refuse it). None otherwise: the leg is written ``intended`` and
        ``sending`` later, just before it leaves."""
        desk = self.desk
        idle = self._job is None and not self._jobs and self._pending is None
        if not idle or not plan.legs or plan.symbol not in desk.rules or plan.symbol not in desk.specs \
                or expired(desk, plan):
            return None
        return plan.legs[0].leg_id

    def command(self, message: Message) -> list[Message]:
        """Queue an owner command (answered with a CommandReply when done); refuse any other request."""
        if isinstance(message, SetProtection):
            self._jobs.append((f"set_{message.level}", set_protection(self.desk, message)))
        elif isinstance(message, CloseAll):
            self._jobs.append(("close_all", close_all(self.desk, message)))
        else:
            text = f"the executor takes set_protection and close_all, not {type(message).__name__}"
            return [ErrorReply(ts=self.desk.market_now, parent=message.id, code="unsupported", text=text)]
        return self._run()

    def next_request(self) -> Message | None:
        """The gateway request to send now (the same one until its reply), or None."""
        return self._pending

    def on_reply(self, reply: Reply) -> list[Message]:
        """The gateway's answer to ``next_request()`` (None: no answer in time)."""
        if self._pending is None or self._job is None:
            return []
        self._pending = None
        if reply is not None:
            self.desk.observe(reply.ts)
        self._advance(reply)
        return self._run()

    def on_timer(self) -> list[Message]:
        """Call often: wakes a paused job when its pause is over."""
        return self._run()

    def delivered(self, message: Message) -> None:
        """The runner handed ``message`` to risk: a final report is not re-sent after a restart."""
        if isinstance(message, ExecutionReport) and message.status != "unknown":
            self.desk.journal.mark_reported(message.leg_id)

    # ------------------------------------------------------------------ state

    @property
    def queue_len(self) -> int:
        return len(self._jobs) + (1 if self._job is not None else 0)

    def status(self) -> ExecutorStatus:
        return ExecutorStatus(ts=self.desk.market_now, queue_len=self.queue_len, sent_total=self.desk.sent_total)

    # ------------------------------------------------------------------ the job machine

    def _run(self) -> list[Message]:
        """Advance jobs until one waits for a reply or a pause, or none is left; return the outbox."""
        clock = self.desk.clock
        while self._pending is None:
            if self._job is None:
                if not self._jobs:
                    break
                self._label, self._job = self._jobs.popleft()
                self._advance(None)
            elif self._wait_until is not None and clock.monotonic() >= self._wait_until:
                self._wait_until = None
                self._advance(None)
            else:
                break
        return self.desk.take_outbox()

    def _advance(self, value: Reply) -> None:
        assert self._job is not None
        try:
            step = self._job.send(value)
        except StopIteration:
            self._job = None
            self._jobs.extendleft(reversed(self.desk.take_spawned()))
            return
        if isinstance(step, Wait):
            self._wait_until = self.desk.clock.monotonic() + step.seconds
        else:
            self._pending = step
