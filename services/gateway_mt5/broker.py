"""The one broker interface the gateway drives, whatever sits behind it (sim, mt5, mt5linux).

It is the MetaTrader5 API as the gateway uses it, with results already converted to the plain,
validated records of ``shared.messages``. The real backends adapt the MetaTrader5 package to it; the
simulated broker implements it natively. The gateway core never knows which one it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from shared.messages import (
    AccountSnapshot,
    Bar,
    DealClosed,
    PositionData,
    SymbolSpec,
    Tick,
    Timeframe,
    TradeRequest,
    TradeResult,
)


class BrokerUnavailable(Exception):  # noqa: N818 (names the state, like MT5's own wording)
    """The terminal cannot be reached right now (IPC error, not initialised). Retry with backoff."""


@dataclass(slots=True)
class MarketUpdate:
    """What happened at the broker since the previous poll.

    ``bars`` are newly CLOSED M1 bars in time order (several symbols interleaved by time); the gateway
    builds M5/M15 from them. ``ticks`` holds at most the latest quote per symbol (the sim keeps the
    inner path of each bar to itself). ``deals`` are exit deals, e.g. SL/TP hits. ``now`` is the
    market time reached.

    ``horizons``: per symbol, the market time up to which its closed M1 bars have all been delivered.
    A live terminal's symbols tick at their own pace, so the gateway closes a symbol's M5/M15 windows
    by its own horizon, and not at all for a symbol missing from it (its poll failed). None (the sim,
    which replays every symbol to ``now``): every window by ``now``.
    """

    now: float
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    deals: list[DealClosed] = field(default_factory=list)
    horizons: dict[str, float] | None = None


class Broker(Protocol):
    """The MetaTrader5 calls the gateway needs, as plain records."""

    backend: str

    def connect(self) -> None:
        """initialize + login + symbol_select; raises BrokerUnavailable."""

    def shutdown(self) -> None: ...

    def symbols(self) -> list[str]: ...

    def symbol_spec(self, symbol: str) -> SymbolSpec: ...

    def market_open(self, symbol: str) -> bool:
        """Whether the symbol trades now (MT5 has no such call: the schedule comes from config)."""

    def account(self) -> AccountSnapshot: ...

    def positions(self, symbol: str | None = None, magic: int | None = None) -> list[PositionData]: ...

    def deals(self, since: float) -> list[DealClosed]:
        """Exit deals with time >= since (history_deals_get)."""

    def history(self, symbol: str, timeframe: Timeframe, count: int) -> list[Bar]:
        """The last ``count`` CLOSED bars of a timeframe, oldest first (copy_rates_from_pos from 1)."""

    def order_send(self, request: TradeRequest) -> TradeResult | None:
        """None is MT5's 'no result': an unknown outcome; last_error() says why."""

    def last_error(self) -> tuple[int, str]: ...

    def poll(self) -> MarketUpdate:
        """Advance (the sim replays up to the clock) and report what is new."""
