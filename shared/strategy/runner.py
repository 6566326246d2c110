"""The runner both strategy services use: subscribe, warm up from the gateway, analyse, push signals."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

import zmq

from shared import topics
from shared.bus import Pusher, Received, Requester, Subscriber
from shared.clock import LiveClock
from shared.config import ConfigError, LoadedConfig
from shared.messages import HistoryReply, HistoryRequest, Timeframe
from shared.secrets import Secrets
from shared.service import EventLoop, ServeFunction, drain
from shared.strategy.core import StrategyCore
from shared.symbol_config import SymbolConfig

log = logging.getLogger(__name__)
WARMUP_ORDER: tuple[Timeframe, ...] = ("M15", "M5", "M1")


def warm_up(core: StrategyCore, gateway: Requester, count: int, timeout_s: float) -> bool:
    """Ask the gateway for recent history of each timeframe; False if it did not answer."""
    for timeframe in WARMUP_ORDER:
        request = HistoryRequest(ts=0.0, symbol=core.symbol, timeframe=timeframe, count=count)
        reply = gateway.request(request, timeout_s)
        if not isinstance(reply, HistoryReply):
            return False
        used = core.warm_up(list(reply.bars))
        log.info("warmed up %s with %d closed bars", timeframe, used)
    return True


def strategy_server(service: str, symbol: str, make_core: Callable[[SymbolConfig], StrategyCore]) -> ServeFunction:
    """The serve function of one strategy service."""

    def serve(config: LoadedConfig, secrets: Secrets, args: argparse.Namespace) -> None:
        if symbol not in config.symbols:
            raise ConfigError(f"{config.path}: [symbols] has no {symbol!r}, which {service} trades")
        core = make_core(config.symbols[symbol])
        settings = config.system.strategy
        clock = LiveClock()
        ctx = zmq.Context()
        # Subscribe before asking for history, so no bar falls between the two (the core drops overlaps).
        market = Subscriber(ctx, [config.system.endpoint("gateway_pub")], [topics.bar(symbol)],
                            name=f"{service} market data")
        risk_events = Subscriber(ctx, [config.system.endpoint("risk_pub")], [topics.RISK_STATE],
                                 name=f"{service} risk events")
        signals = Pusher(ctx, config.system.endpoint("risk_in"))
        gateway = Requester(ctx, config.system.endpoint("gateway_rep"), service)
        warmed = False

        def try_warm_up() -> None:
            nonlocal warmed
            if not warmed:
                warmed = warm_up(core, gateway, settings.warmup_bars, settings.request_timeout_s)

        def on_message(received: Received) -> None:
            for signal in core.handle(received.message):
                if signals.send(signal):
                    log.info("signal %s %s net_norm=%+.3f confidence=%.2f (%s)", signal.symbol, signal.side,
                             signal.net_norm, signal.confidence, "; ".join(signal.reasons))

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
