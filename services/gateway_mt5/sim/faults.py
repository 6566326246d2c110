"""Seeded, repeatable faults: order_send outcomes, IPC disconnect windows and stale-feed windows."""

from __future__ import annotations

import random
from typing import Any, Literal

from services.gateway_mt5.sim.config import FaultConfig, epoch

Fault = Literal["requote", "price_changed", "price_off", "timeout", "none_filled", "none_not_filled"]
FAULTS: tuple[Fault, ...] = (
    "requote", "price_changed", "price_off", "timeout", "none_filled", "none_not_filled",
)


class FaultInjector:
    """Draws one outcome per order_send from its own RNG: same seed + same requests = same faults."""

    def __init__(self, config: FaultConfig) -> None:
        self._rng = random.Random(config.seed)
        self._table = [(name, float(getattr(config, name))) for name in FAULTS if getattr(config, name) > 0]
        self.requote_shift_points = config.requote_shift_points
        self._disconnects = sorted((epoch(w.start), epoch(w.end)) for w in config.disconnects)
        self._stale = [(w.symbol, epoch(w.start), epoch(w.end)) for w in config.stale]
        self.injected: dict[str, int] = {}
        """How many order_sends each fault hit (kept with the simulator's state, for chaos reports)."""

    def draw(self) -> Fault | None:
        """The fault hitting this order_send, or None. Draws nothing when every probability is 0."""
        if not self._table:
            return None
        u = self._rng.random()
        for name, probability in self._table:
            if u < probability:
                self.injected[name] = self.injected.get(name, 0) + 1
                return name
            u -= probability
        return None

    def rng_state(self) -> list[Any]:
        """The RNG's state as JSON-able lists, so a resumed broker draws the faults it would have drawn."""
        version, internal, gauss = self._rng.getstate()
        return [version, list(internal), gauss]

    def set_rng_state(self, state: list[Any]) -> None:
        """Restore a state from ``rng_state``."""
        version, internal, gauss = state
        self._rng.setstate((version, tuple(internal), gauss))

    def shift(self) -> int:
        """How many points the market moved behind a requote (1..requote_shift_points)."""
        return self._rng.randint(1, self.requote_shift_points)

    def disconnected(self, t: float) -> bool:
        """Whether market time ``t`` falls in an IPC disconnect window."""
        return any(start <= t < end for start, end in self._disconnects)

    def next_disconnect(self, after: float) -> float | None:
        """Start of the first disconnect window starting strictly after ``after``, if any."""
        return next((start for start, _ in self._disconnects if start > after), None)

    def stale_since(self, symbol: str, t: float) -> float | None:
        """Start of the stale window covering ``symbol`` at ``t`` (earliest if several), else None."""
        starts = [
            start for sym, start, end in self._stale if (sym is None or sym == symbol) and start <= t < end
        ]
        return min(starts) if starts else None

    @property
    def has_stale(self) -> bool:
        """Whether any stale window is configured (lets the replay skip the check entirely)."""
        return bool(self._stale)
