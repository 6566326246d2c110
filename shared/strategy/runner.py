"""The runner both strategy services use: subscribe, warm up from the gateway, analyse, push signals.

Start-up is recovery: the market and risk subscriptions open first, then the gateway is asked for the
symbol spec and the recent history of M15, M5 and M1, which the core folds in exactly as live bars
(``StrategyCore.warm_up``), so a strategy restarted mid-session analyses fully from its next bar.
Bars that arrive while the history is being fetched wait in ``pending`` and follow it (the core drops
the ones the history already holds). If the gateway does not answer, the timer asks again; should
``MAX_PENDING`` bars pile up meanwhile, the strategy starts cold from them rather than wait forever.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections import deque
from collections.abc import Callable

import zmq

from shared import topics
from shared.bus import Pusher, Received, Requester, Subscriber
from shared.clock import LiveClock
from shared.config import ConfigError, LoadedConfig
from shared.messages import Bar, HistoryReply, HistoryRequest, Message, SymbolSpecReply, SymbolSpecRequest, Timeframe
from shared.secrets import Secrets
from shared.service import EventLoop, ServeFunction, drain
from shared.strategy.core import StrategyCore
from shared.symbol_config import SymbolConfig

log = logging.getLogger(__name__)
WARMUP_ORDER: tuple[Timeframe, ...] = ("M15", "M5", "M1")
MAX_PENDING = 2000
# Benchmarks only: "1" makes every analysed M1 bar a signal (``StrategyCore.signal_every_bar``).
EVERY_BAR_VARIABLE = "PORTFOLIO_BENCH_SIGNAL_EVERY_BAR"
# Logged once, at the first live M1 bar that gets a full analysis: the start-up benchmark waits for it.
FIRST_ANALYSIS_MARKER = "first bar analysed"
# Logged once the warm-up is done and live data is taken (in any regime, the market open or closed): the chaos
# test reads it as "the restarted process is back at work".
LIVE_MARKER = "taking live data"


def fetch_spec(core: StrategyCore, gateway: Requester, timeout_s: float) -> bool:
    """Ask the gateway for the symbol spec (the spread penalty needs its point); False if no answer."""
    reply = gateway.request(SymbolSpecRequest(ts=0.0, symbol=core.symbol), timeout_s)
    if not isinstance(reply, SymbolSpecReply):
        return False
    core.handle(reply)
    return True


def warm_up(core: StrategyCore, gateway: Requester, count: int, timeout_s: float) -> bool:
    """Fold the gateway's last ``count`` closed bars of each timeframe into ``core``; False (and
    nothing folded) if the gateway did not answer every request."""
    history: list[Bar] = []
    for timeframe in WARMUP_ORDER:
        request = HistoryRequest(ts=0.0, symbol=core.symbol, timeframe=timeframe, count=count)
        reply = gateway.request(request, timeout_s)
        if not isinstance(reply, HistoryReply):
            log.warning("no %s history from the gateway yet (%s)", timeframe, type(reply).__name__)
            return False
        history.extend(reply.bars)
    used = core.warm_up(history)
    log.info("warmed up with %d closed bars (M1 %d, M5 %d, M15 %d); full analysis %s", used,
             core.m1.bars, core.m5.bars, core.m15.bars, "ready" if core.ready else "not ready yet")
    return True


def apply_bench_mode(core: StrategyCore) -> None:
    """Benchmarks only: with PORTFOLIO_BENCH_SIGNAL_EVERY_BAR=1 every analysed M1 bar is a signal."""
    if os.environ.get(EVERY_BAR_VARIABLE) == "1":
        core.signal_every_bar = True
        log.warning("BENCHMARK MODE (%s=1): every analysed M1 bar is a signal", EVERY_BAR_VARIABLE)


class FirstAnalysis:
    """Logs FIRST_ANALYSIS_MARKER once, after the first live M1 bar the core analysed (start-up bench)."""

    def __init__(self, core: StrategyCore) -> None:
        self.core = core
        self.done = False

    def after(self, message: Message) -> None:
        analysed = self.core.last_analysis
        if self.done or not isinstance(message, Bar) or message.timeframe != "M1" or analysed is None:
            return
        if analysed.bar_time == message.time:
            self.done = True
            log.info("%s: %s M1 %d", FIRST_ANALYSIS_MARKER, self.core.symbol, analysed.bar_time)


def strategy_server(service: str, symbol: str, make_core: Callable[[SymbolConfig], StrategyCore]) -> ServeFunction:
    """The serve function of one strategy service."""

    def serve(config: LoadedConfig, secrets: Secrets, args: argparse.Namespace) -> None:
        if symbol not in config.symbols:
            raise ConfigError(f"{config.path}: [symbols] has no {symbol!r}, which {service} trades")
        core = make_core(config.symbols[symbol])
        apply_bench_mode(core)
        settings = config.system.strategy
        clock = LiveClock()
        ctx = zmq.Context()
        # Subscribe before asking for history, so no bar falls between the two (the core drops overlaps).
        market = Subscriber(ctx, [config.system.endpoint("gateway_pub")], [topics.bar(symbol), topics.HEARTBEAT],
                            name=f"{service} market data")
        risk_events = Subscriber(ctx, [config.system.endpoint("risk_pub")], [topics.RISK_STATE, topics.RISK_REGIME],
                                 name=f"{service} risk events")
        signals = Pusher(ctx, config.system.endpoint("risk_in"))
        gateway = Requester(ctx, config.system.endpoint("gateway_rep"), service)
        pending: deque[Bar] = deque()
        warmed = spec_known = False
        first = FirstAnalysis(core)

        def analyse(message: Message) -> None:
            emitted = core.handle(message)
            first.after(message)
            for signal in emitted:
                if signals.send(signal):
                    log.info("signal %s %s net_norm=%+.3f confidence=%.2f (%s)", signal.symbol, signal.side,
                             signal.net_norm, signal.confidence, "; ".join(signal.reasons))

        def try_warm_up() -> None:
            nonlocal warmed, spec_known
            if not spec_known:
                spec_known = fetch_spec(core, gateway, settings.request_timeout_s)
            if warmed:
                return
            warmed = warm_up(core, gateway, settings.warmup_bars, settings.request_timeout_s)
            if not warmed and len(pending) < MAX_PENDING:
                return
            if not warmed:
                log.warning("no history from the gateway after %d live bars: starting cold", len(pending))
                warmed = True
            while pending:
                analyse(pending.popleft())
            log.info("%s: %s", LIVE_MARKER, symbol)

        def on_message(received: Received) -> None:
            message = received.message
            if isinstance(message, Bar) and not warmed:
                pending.append(message)
                return
            analyse(message)

        try_warm_up()
        loop = EventLoop(clock)
        loop.on_readable(market.socket, lambda: drain(market.receive, on_message))
        loop.on_readable(risk_events.socket, lambda: drain(risk_events.receive, on_message))
        loop.every(settings.request_timeout_s, try_warm_up)
        try:
            loop.run()
        finally:
            for closable in (market, risk_events, signals, gateway):
                closable.close()
            ctx.term()

    return serve
