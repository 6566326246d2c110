"""Bitcoin's own rules on top of the shared strategy engine."""

from __future__ import annotations

from shared.strategy.core import StrategyCore


class BtcStrategy(StrategyCore):
    """Bitcoin trades 24/7 and its feed carries real volume: the shared engine covers it with
    bitcoin's configuration (configs/btc.toml). The class is the place for a rule only bitcoin needs."""
