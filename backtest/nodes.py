"""Each core behind the few lines its runner wraps around it: the only place the backtest touches a core's API.

The runners (``services/*/runner.py``, ``shared/strategy/runner.py``) move messages between a core and
its sockets; these adapters do the same between a core and the in-process ``Bus``:

- ``GatewayNode``: ``GatewayCore`` over the ``SimBroker``. A step is one poll (the sim replays the next
  M1 close time, every symbol's bar of that minute together, and the core builds M5/M15 from them),
  published in the two halves of the lockstep gateway (``services/gateway_mt5/lockstep.py``): exit
  deals, quotes, heartbeat and account first, the bars after. Requests of the other nodes are plain
  calls of ``handle_request`` with the caller's identity, as the ROUTER serves them.
- ``StrategyNode``: the spec and the warm-up history first, then bars, heartbeats and risk's state and
  regime events in; signals pushed to risk.
- ``RiskNode``: signals and reports (inbox) and heartbeat, account and deals (gateway) in; plans pushed
  to the executor, events published. ``sync`` is the runner's poll of the gateway, ``timer`` its tick.
- ``ExecutorNode``: plans in, the core's one request at a time served at once, reports pushed to risk.
  ``wait_out`` is the runner's 50 ms tick, for a job that pauses (a backoff before a resend).

Where a runner does something with no bearing on a decision in one process (the ExecutorStatus queue
length for the health line, the periodic re-fetch of deals and specs that covers messages lost on
PUB/SUB, a RiskState every second, a message that repeats the last one), the adapter leaves it out or
does it less often; each such place says why no decision can change.
"""

from __future__ import annotations

from typing import cast

from backtest.bus import Bus, MarketClock
from services.executor.core import ExecutorCore
from services.gateway_mt5.core import GatewayCore, Publication
from services.gateway_mt5.lockstep import split_step
from services.risk.core import Outgoing, RiskCore
from services.risk.regimes import day_start
from shared import topics
from shared.messages import (
    AccountRequest,
    AccountSnapshot,
    AnyMessage,
    Bar,
    DealClosed,
    DealsRequest,
    ExecutionReport,
    HistoryReply,
    HistoryRequest,
    Message,
    OrderPlan,
    PositionsReply,
    PositionsRequest,
    SymbolSpecReply,
    SymbolSpecRequest,
    Timeframe,
)
from shared.strategy.core import StrategyCore

PLAN_TOPIC = "plan"  # order plans travel on no PUB socket; observers see them under this name
WARMUP_ORDER: tuple[Timeframe, ...] = ("M15", "M5", "M1")  # as shared/strategy/runner.py asks
EXECUTOR_TICK_S = 0.05  # services/executor/runner.py TIMER_TICK_S
RISK_IDENTITY, EXECUTOR_IDENTITY = "risk", "executor"
STATE_INTERVAL_S = 3600.0  # RiskState broadcast in a backtest (see RiskNode.timer)


class GatewayNode:
    """The gateway: publishes market data on the bus one step at a time and answers requests."""

    def __init__(self, core: GatewayCore, bus: Bus) -> None:
        self.core = core
        self.bus = bus
        self.m1_bars = 0
        self._bars: list[Publication] = []

    def start(self) -> None:
        self.core.connect()

    def step(self) -> bool:
        """The first half of a step, as the lockstep gateway publishes it (``split_step``): one poll's exit
        deals and quotes, the heartbeat and the account. False when the poll brought nothing."""
        core, publish = self.core, self.bus.publish
        state, self._bars = split_step(core.poll())
        if not state and not self._bars:
            return False
        for topic, message in state:
            publish(topic, message)
        publish(*core.heartbeat())
        snapshot = core.account_snapshot()
        if snapshot is not None:
            publish(*snapshot)
        return True

    def publish_bars(self) -> None:
        """The second half: the poll's bars (M1 and the M5/M15 they complete)."""
        publish = self.bus.publish
        for topic, message in self._bars:
            if isinstance(message, Bar) and message.timeframe == "M1":
                self.m1_bars += 1
            publish(topic, message)
        self._bars = []

    def request(self, caller: str, request: Message) -> Message:
        return self.core.handle_request(caller, request)


class StrategyNode:
    """One strategy service: subscribed to its bars, the heartbeat and risk's state and regime events."""

    def __init__(self, service: str, core: StrategyCore, gateway: GatewayNode, bus: Bus, warmup_bars: int) -> None:
        self.name = service
        self.core = core
        self.subscriptions: tuple[str, ...] = (topics.bar(core.symbol), topics.HEARTBEAT, topics.RISK_STATE,
                                               topics.RISK_REGIME)
        self._gateway = gateway
        self._bus = bus
        self._warmup_bars = warmup_bars
        self.signals = 0

    def start(self) -> int:
        """The runner's start: the symbol spec, then the last closed bars of M15, M5 and M1 folded in."""
        reply = self._gateway.request(self.name, SymbolSpecRequest(ts=0.0, symbol=self.core.symbol))
        if isinstance(reply, SymbolSpecReply):
            self.core.handle(reply)
        history: list[Bar] = []
        for timeframe in WARMUP_ORDER:
            request = HistoryRequest(ts=0.0, symbol=self.core.symbol, timeframe=timeframe, count=self._warmup_bars)
            answer = self._gateway.request(self.name, request)
            if not isinstance(answer, HistoryReply):
                raise RuntimeError(f"{self.name}: no {timeframe} history from the gateway: {answer}")
            history.extend(answer.bars)
        return self.core.warm_up(history)

    def take(self, message: Message) -> None:
        for signal in self.core.handle(message):
            self.signals += 1
            self._bus.push(RISK_IDENTITY, signal)


class RiskNode:
    """The risk service: its inbox and its subscription to the gateway share one FIFO (see ``bus.py``)."""

    name = RISK_IDENTITY
    subscriptions: tuple[str, ...] = (topics.HEARTBEAT, topics.ACCOUNT, topics.DEAL)

    def __init__(self, core: RiskCore, gateway: GatewayNode, bus: Bus, magic: int | None) -> None:
        self.core = core
        self._gateway = gateway
        self._bus = bus
        self._magic = magic  # one magic for every symbol: ask the gateway only for ours, as the runner does
        self._positions_known = False  # the last position list risk was given had a position in it
        self._account_seen: tuple[float, ...] = ()
        self._may_be_open: set[int] = set()  # tickets of filled legs whose exit deal has not come
        self._always_ask = False  # a leg's outcome was unknown once: ask for the positions at every step
        self._next_state_at = -1.0

    def take(self, message: Message) -> None:
        if isinstance(message, AccountSnapshot):
            seen = (message.balance, message.equity, message.margin, message.profit)
            if seen == self._account_seen:
                return  # the same account as last time: the core would change nothing (see ``sync``)
            self._account_seen = seen
        elif isinstance(message, ExecutionReport):
            if message.status == "filled" and message.ticket is not None:
                self._may_be_open.add(message.ticket)
            elif message.status == "unknown":
                self._always_ask = True
        elif isinstance(message, DealClosed):
            self._may_be_open.discard(message.position_id)
        self._route(self.core.handle(message))

    def _route(self, outgoing: list[Outgoing]) -> None:
        bus = self._bus
        for out in outgoing:
            if out.channel == "executor":
                bus.push(EXECUTOR_IDENTITY, out.message)
                bus.observe(PLAN_TOPIC, out.message)
            else:
                bus.publish(out.topic, out.message)

    def timer(self, now: float) -> None:
        """The runner's tick: the RiskState broadcast, here once an hour of market time.

        Live it goes out every ``risk.state_interval_s``; the strategies take only the regime from it, and
        every regime change also goes out at once as a RegimeChanged, so a slower cadence changes no
        decision while it saves a status build and two deliveries per step."""
        if now >= self._next_state_at:
            self._next_state_at = now + STATE_INTERVAL_S
            self._route(self.core.on_timer(now))

    def sync(self) -> None:
        """The runner's poll of the gateway: open positions (our floating P&L), anything still unknown (specs,
        the account), and the day's exit deals while a closed position's deal is missing.

        Shortcuts that change no decision: an empty position list after an empty one, like an account
        snapshot equal to the previous one but for its time (``take``), is not handed to the core again (it
        would change nothing: the heartbeat of the same step has moved market time already), and the list
        is not even asked for while no filled leg can still be open (every fill is reported, every exit is
        a deal: SL, TP or stop-out close whole positions, and nothing else trades the sim's account); the
        deals and specs are not re-fetched every minute (that re-fetch recovers messages lost on PUB/SUB;
        the bus loses none, and the sim's specs do not change)."""
        core, ts = self.core, self.core.market_now
        ask = self._may_be_open or self._positions_known or self._always_ask
        wanted: list[Message] = [PositionsRequest(ts=ts)] if ask else []
        wanted += [AccountRequest(ts=ts) if item == "account" else SymbolSpecRequest(ts=ts, symbol=item)
                   for item in core.missing_broker_info()]
        day = core.day
        if core.awaiting_deals and day is not None:
            wanted.append(DealsRequest(ts=ts, since=day_start(day), magic=self._magic))
        for request in wanted:
            reply = self._gateway.request(RISK_IDENTITY, request)
            if isinstance(reply, PositionsReply):
                if not reply.positions and not self._positions_known:
                    continue
                self._positions_known = bool(reply.positions)
            self._route(core.handle(reply))


class ExecutorNode:
    """The executor service: plans in, its requests served one at a time, reports pushed to risk."""

    name = EXECUTOR_IDENTITY
    subscriptions: tuple[str, ...] = ()  # it subscribes to nothing: plans come by PUSH

    def __init__(self, core: ExecutorCore, gateway: GatewayNode, bus: Bus, clock: MarketClock) -> None:
        self.core = core
        self._gateway = gateway
        self._bus = bus
        self._clock = clock

    def start(self) -> None:
        """The start-up reconciliation (an empty journal: it only asks the broker what it holds)."""
        self._route(self.core.start())
        self._work()

    def take(self, message: Message) -> None:
        if isinstance(message, OrderPlan):
            self._route(self.core.accept(message))
            self._work()

    def _work(self) -> None:
        core, gateway = self.core, self._gateway
        while (request := core.next_request()) is not None:
            reply = cast(AnyMessage, gateway.request(EXECUTOR_IDENTITY, request))  # what the DEALER decodes
            self._route(core.on_reply(reply))

    def _route(self, messages: list[Message]) -> None:
        for message in messages:
            self._bus.push(RISK_IDENTITY, message)
            if isinstance(message, ExecutionReport):
                self.core.delivered(message)

    @property
    def waiting(self) -> bool:
        """A job is paused (a backoff) with nothing to ask the gateway: only time can wake it."""
        return self.core.queue_len > 0 and self.core.next_request() is None

    def wait_out(self, until: float) -> None:
        """Tick the executor's timer in 50 ms steps of the clock while a job pauses, at most up to ``until``
        (the next bar's close): the market does not move between bar closes in the sim, so a backoff of
        0.1 s ends with the same quote it began with, as it would live."""
        while self.waiting and self._clock.monotonic() + EXECUTOR_TICK_S < until:
            self._clock.advance_to(self._clock.monotonic() + EXECUTOR_TICK_S)
            self._route(self.core.on_timer())
            self._work()
            self._bus.drain()
