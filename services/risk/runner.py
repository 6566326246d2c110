"""The risk process: the sockets around ``RiskCore``, nothing else.

- PULL ``risk_in``: signals (strategies), execution reports, adopted positions and status (executor).
- SUB ``gateway_pub``: heartbeat, account, deals.
- PUB ``risk_pub``: regime changes, trade-locks, new days, refusals, forwarded execution reports and
  adoptions, the periodic RiskState.
- PUSH -> ``executor_in``: order plans.
- ROUTER ``risk_rep``: the trading switch and state requests (Telegram).
- DEALER (identity "risk") -> ``gateway_rep``: symbol specs and the account until known; the open
  positions every gateway.account_interval_s (our floating P&L and open counts); the day's exit deals at
  start, after a gap on the deal topic, while a closed position's deal is missing, and every minute with
  the specs (1 s timeouts; a silent gateway is asked again after 1 s, backing off to 30 s).

A crash inside the core ends the process (status 1, logged): supervisord restarts it and the state
comes back from SQLite, which is safer for the owner of the trading day than going on half-updated.
"""

from __future__ import annotations

import argparse
import logging

import zmq

from services.risk.core import Outgoing, RiskCore
from services.risk.regimes import day_start
from services.risk.store import RiskStore
from shared import topics
from shared.bus import Publisher, Puller, Pusher, Received, Replier, Requester, Subscriber
from shared.clock import Clock, LiveClock
from shared.config import LoadedConfig
from shared.logs import append_line
from shared.messages import (
    AccountRequest,
    AccountSnapshot,
    AnyMessage,
    DealClosed,
    DealsRequest,
    ErrorReply,
    ExecutionReport,
    ExecutorStatus,
    GatewayHeartbeat,
    Message,
    PositionAdopted,
    PositionsRequest,
    ServiceHeartbeat,
    Signal,
    SymbolSpecRequest,
)
from shared.secrets import Secrets
from shared.service import EventLoop, drain

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 1.0
FETCH_RETRY_MIN_S = 1.0
FETCH_RETRY_MAX_S = 30.0
RECONCILE_S = 60.0  # the day's exit deals and the symbol specs, asked again at this cadence
TIMER_TICK_S = 0.1
CHECKPOINT_POLL_S = 0.02  # how often to ask whether the store's WAL can be checkpointed (shared/wal.py)
HEALTH_FILE = "portfolio_engine_health.log"
# What each socket may carry: a valid message of another type on it (a heartbeat pushed into the inbox, a
# signal on the gateway's stream) is hostile or a wiring mistake, and is dropped like a malformed frame.
INBOX_TYPES = (Signal, ExecutionReport, ExecutorStatus, PositionAdopted, ServiceHeartbeat)
GATEWAY_TYPES = (GatewayHeartbeat, AccountSnapshot, DealClosed)
STORE_FILE = "risk.sqlite"


class RiskRunner:
    """Owns the sockets, the store and the event loop of the risk process."""

    def __init__(self, config: LoadedConfig, ctx: zmq.Context[zmq.Socket[bytes]], clock: Clock) -> None:
        system = config.system
        self.clock = clock
        self.store = RiskStore(system.paths.state_dir / STORE_FILE, sync=system.risk.store_sync)
        self.core = RiskCore(config, self.store, clock)
        self.health_path = system.paths.logs_dir / HEALTH_FILE
        self.inbox = Puller(ctx, system.endpoint("risk_in"), name="risk_in")
        self.gateway = Subscriber(ctx, [system.endpoint("gateway_pub")],
                                  [topics.HEARTBEAT, topics.ACCOUNT, topics.DEAL], name="gateway_pub")
        self.publisher = Publisher(ctx, system.endpoint("risk_pub"))
        self.executor = Pusher(ctx, system.endpoint("executor_in"))
        self.replier = Replier(ctx, system.endpoint("risk_rep"), name="risk_rep")
        self.requester = Requester(ctx, system.endpoint("gateway_rep"), identity="risk")
        self._symbols = list(config.symbols)
        magics = {cfg.symbol.magic for cfg in config.symbols.values()}
        self._magic = magics.pop() if len(magics) == 1 else None  # one magic for every symbol: ask only ours
        self._poll_s = system.gateway.account_interval_s
        self._deals_wanted = True  # at start: deals published while risk was down were lost on PUB/SUB
        self._fetch_retry_s = FETCH_RETRY_MIN_S
        self._next_sync_at = 0.0
        self._next_reconcile_at = 0.0
        self.loop = EventLoop(clock)
        self.loop.on_readable(self.inbox.socket, self._on_inbox)
        self.loop.on_readable(self.gateway.socket, self._on_gateway)
        self.loop.on_readable(self.replier.socket, self._on_requests)
        self.loop.every(TIMER_TICK_S, self._on_tick)
        self.loop.every(CHECKPOINT_POLL_S, self._checkpoint)
        self.loop.every(system.risk.health_interval_s, self._write_health)

    def run(self) -> None:
        """Serve until SIGTERM / SIGINT."""
        self._sync_with_gateway()
        self.loop.run()

    def close(self) -> None:
        self.inbox.close()
        self.gateway.close()
        self.publisher.close()
        self.executor.close()
        self.replier.close()
        self.requester.close()
        self.store.close()

    # ------------------------------------------------------------------ handlers

    def _route(self, outgoing: list[Outgoing]) -> None:
        for out in outgoing:
            if out.channel == "executor":
                self.executor.send(out.message)  # logs and counts a failure itself; the plan then expires
            else:
                self.publisher.publish(out.topic, out.message)

    def _on_inbox(self) -> None:
        def handle(message: AnyMessage) -> None:
            if isinstance(message, INBOX_TYPES):
                self._handle(message)
            else:
                self.inbox.drops.drop("unexpected_type", type(message).__name__)

        drain(self.inbox.receive, handle)

    def _on_gateway(self) -> None:
        def handle(received: Received) -> None:
            if received.gap and received.topic == topics.DEAL:
                self._deals_wanted = True  # a deal was lost: fetch the day's deals again (each counts once)
            if isinstance(received.message, GATEWAY_TYPES):
                self._handle(received.message)
            else:
                self.gateway.drops.drop("unexpected_type", type(received.message).__name__)

        drain(self.gateway.receive, handle)

    def _handle(self, message: AnyMessage) -> None:
        self._route(self.core.handle(message))
        self.store.quiet.busy(self.clock.monotonic())

    def _checkpoint(self) -> None:
        self.store.quiet.poll(self.clock.monotonic())

    def _on_requests(self) -> None:
        def answer(request: tuple[str, AnyMessage]) -> None:
            identity, message = request
            reply, outgoing = self.core.handle_request(message)
            self.replier.reply(identity, reply)
            self._route(outgoing)

        drain(self.replier.receive, answer)

    def _on_tick(self) -> None:
        now = self.clock.monotonic()
        self._route(self.core.on_timer(now))
        if now >= self._next_sync_at:
            self._sync_with_gateway()

    def _write_health(self) -> None:
        append_line(self.health_path, self.core.health_line())

    # ------------------------------------------------------------------ broker info from the gateway

    def _wanted(self, now: float) -> list[Message]:
        """What to ask the gateway now: whatever is still unknown, our positions (every poll: the floating
        P&L and the open counts), and on the reconcile cadence or after a lost deal the day's exit deals and
        fresh specs (stops and freeze levels widen on news)."""
        ts = self.core.market_now
        reconcile = now >= self._next_reconcile_at
        missing = self.core.missing_broker_info()
        # Positions before the account: an account moves market time, and if that opens a new day, the
        # previous day's result should include our floating P&L.
        wanted: list[Message] = [PositionsRequest(ts=ts)]
        wanted += [AccountRequest(ts=ts) if item == "account" else SymbolSpecRequest(ts=ts, symbol=item)
                   for item in missing]
        if reconcile:
            wanted += [SymbolSpecRequest(ts=ts, symbol=s) for s in self._symbols if s not in missing]
        day = self.core.day
        if (reconcile or self._deals_wanted or self.core.awaiting_deals) and day is not None:
            wanted.append(DealsRequest(ts=ts, since=day_start(day), magic=self._magic))
        return wanted

    def _sync_with_gateway(self) -> None:
        """Ask for what is wanted; stop at the first silence and try again later (backing off to 30 s)."""
        now = self.clock.monotonic()
        complete = True
        for request in self._wanted(now):
            reply = self.requester.request(request, REQUEST_TIMEOUT_S)
            if reply is None:  # the gateway is not answering: do not block the loop any longer now
                complete = False
                break
            if isinstance(request, DealsRequest):
                self._deals_wanted = False  # asked again at the next reconcile if refused now
            if isinstance(reply, ErrorReply):
                log.error("gateway refused %s: %s %s", request.__class__.__name__, reply.code, reply.text)
                complete = False
                continue
            self._route(self.core.handle(reply))
        if complete:
            if now >= self._next_reconcile_at:
                self._next_reconcile_at = now + RECONCILE_S
            self._fetch_retry_s = FETCH_RETRY_MIN_S
            self._next_sync_at = now + self._poll_s
            return
        self._next_sync_at = now + self._fetch_retry_s
        self._fetch_retry_s = min(self._fetch_retry_s * 2, FETCH_RETRY_MAX_S)


def serve(config: LoadedConfig, secrets: Secrets, args: argparse.Namespace) -> None:
    """Run the risk process until stopped (``run_service`` loads the config and sets up logging)."""
    del secrets, args  # risk needs no secret and no extra argument
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    runner = RiskRunner(config, ctx, LiveClock())
    log.info("risk: inbox %s, gateway %s, publishing on %s, plans to %s",
             config.system.endpoint("risk_in"), config.system.endpoint("gateway_pub"),
             config.system.endpoint("risk_pub"), config.system.endpoint("executor_in"))
    try:
        runner.run()
    finally:
        runner.close()
        ctx.term()
