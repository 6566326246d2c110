"""Bitcoin's own rules on top of the shared strategy engine."""

from __future__ import annotations

from shared.strategy.core import StrategyCore


class BtcStrategy(StrategyCore):
    """Bitcoin trades 24/7; the shared engine needs no extra rule for it yet (its config differs)."""
