"""Confidence: how much a signal deserves to be believed, from its strength and the market's state.

confidence % = min(confidence_bias + confidence_gain x strength, strength tier cap)
               - spread penalty - tick-quality penalty, kept within [confidence_floor, confidence_cap]
(70-96 % as shipped). The tier cap (``confidence_tiers``) makes sure a weak signal never shows high
confidence, whatever the gain; the penalties come after it, so a wide spread or a poor feed always
costs confidence, even when the gain alone would have gone far past the cap.

- spread penalty: the bar's spread in M1 ATRs above ``spread_free_atr``, times
  ``spread_penalty_per_atr``, at most ``spread_penalty_max`` points. A scalp whose spread eats a big
  part of a bar's range starts behind. Unknown (no penalty) until the gateway gave the symbol's point.
- tick-quality penalty, at most ``tick_penalty_max`` points: ``tick_gap_penalty`` on the first bar
  after a gap in the M1 bars (missing minutes, or a market break); up to ``tick_thin_penalty`` for a
  bar with little volume (below ``tick_thin_fraction`` x its recent average; an empty or flat bar
  takes it all; only when the feed has volume at all, else only a flat bar counts);
  ``tick_stale_penalty`` while the gateway's heartbeat says the symbol's data is not ok (stale, no
  data) although its market is open.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

from shared.messages import SymbolHealth
from shared.symbol_config import SignalTable


class Confidence(NamedTuple):
    """A computed confidence and how it came about (percent points, for the signal's reasons)."""

    value: float  # fraction, within [floor, cap]
    raw_pct: float  # bias + gain x strength
    spread_penalty: float
    tick_penalty: float
    tier_cap: float  # fraction
    notes: tuple[str, ...] = ()  # what the tick-quality penalty saw

    def explain(self, strength: float, formula: str) -> str:
        """The formula with this signal's numbers, e.g. 'confidence 78%: min(50+120x0.45=104.0, tier
        cap 88) - spread 10.0 - ticks 0.0'; ``formula`` is the '50+120x' of the symbol's config."""
        before = min(self.raw_pct, 100.0 * self.tier_cap) - self.spread_penalty - self.tick_penalty
        floor = ", raised to the floor" if 100.0 * self.value > before + 1e-6 else ""
        return "confidence %.0f%%: min(%s%.2f=%.1f, tier cap %.0f) - spread %.1f - ticks %.1f%s" % (  # noqa: UP031
            100 * self.value, formula, strength, self.raw_pct, 100 * self.tier_cap, self.spread_penalty,
            self.tick_penalty, floor)  # %-format: faster than an f-string with format specs


class ConfidenceModel:
    """``confidence_*`` and the penalty keys of one symbol's ``[signal]`` table, applied."""

    __slots__ = ("_bias", "_cap", "_floor", "_gain", "_spread_free", "_spread_max", "_spread_rate", "_tiers")

    def __init__(self, signal: SignalTable) -> None:
        self._bias, self._gain = signal.confidence_bias, signal.confidence_gain
        self._floor, self._cap = signal.confidence_floor, signal.confidence_cap
        self._tiers = signal.confidence_tiers
        self._spread_free = signal.spread_free_atr
        self._spread_rate = signal.spread_penalty_per_atr
        self._spread_max = signal.spread_penalty_max

    def tier_cap(self, strength: float) -> float:
        """The highest confidence a signal of this strength may show."""
        for bound, cap in self._tiers:
            if strength < bound:
                return min(cap, self._cap)
        return self._cap

    def spread_penalty(self, spread_price: float, atr: float) -> float:
        """Confidence points a spread of ``spread_price`` costs against an M1 ATR of ``atr``."""
        if not (atr > 0.0 and spread_price >= 0.0):
            return 0.0
        excess = spread_price / atr - self._spread_free
        return min(self._spread_max, self._spread_rate * excess) if excess > 0.0 else 0.0

    def compute(self, strength: float, spread_penalty: float = 0.0, tick_penalty: float = 0.0,
                notes: Iterable[str] = ()) -> Confidence:
        """The confidence of a signal of ``strength`` (|net_norm|) with these penalties (points)."""
        raw = self._bias + self._gain * strength
        cap = self.tier_cap(strength)
        value = min(raw / 100.0, cap) - (spread_penalty + tick_penalty) / 100.0
        value = min(self._cap, max(self._floor, value))
        return Confidence(round(value, 4), raw, spread_penalty, tick_penalty, cap, tuple(notes))


class TickQuality:
    """The tick-quality penalty of each closed M1 bar (see the module docstring)."""

    __slots__ = ("_alpha", "_avg_volume", "_before", "_gap", "_max", "_stale", "_thin", "_thin_fraction")

    def __init__(self, signal: SignalTable, volume_lookback: int) -> None:
        self._gap, self._thin = signal.tick_gap_penalty, signal.tick_thin_penalty
        self._stale = signal.tick_stale_penalty
        self._thin_fraction = signal.tick_thin_fraction
        self._max = signal.tick_penalty_max
        self._alpha = 2.0 / (volume_lookback + 1)
        self._avg_volume = self._before = math.nan

    def observe(self, volume: int) -> None:
        """Fold one M1 bar's tick volume into the running average (once per bar, before ``penalty``,
        which compares the bar with the average of the bars before it)."""
        avg = self._before = self._avg_volume
        self._avg_volume = float(volume) if math.isnan(avg) else avg + self._alpha * (volume - avg)

    def penalty(self, *, gap_s: int, volume: int, flat: bool, has_volume: bool,
                health: SymbolHealth | None) -> tuple[float, list[str]]:
        """Points off and what caused them, for an M1 bar that came ``gap_s`` seconds after the one
        before it should have (0 = on time), with this ``volume``; ``flat`` when high == low;
        ``health`` the gateway's latest word on the symbol if it is current, else None."""
        points, notes = 0.0, []
        if gap_s > 0:
            points += self._gap
            notes.append(f"{gap_s // 60} M1 bar(s) missing before this one")
        avg = self._before
        if has_volume and avg > 0.0:
            thin_below = self._thin_fraction * avg
            if flat or volume < thin_below:
                points += self._thin * (1.0 if flat or thin_below <= 0 else 1.0 - volume / thin_below)
                notes.append(f"thin bar: volume {volume} vs average {avg:.0f}")
        elif flat:
            points += self._thin
            notes.append("flat bar: no price change")
        if health is not None and health.market_open and not health.ok:
            points += self._stale
            notes.append(f"gateway says {health.reason}")
        return min(points, self._max), notes
