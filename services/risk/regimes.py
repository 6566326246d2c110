"""The A / B / C regime of a symbol, from the day's return on the account (first version).

A is normal, B protective (the day's target or the first loss limit reached: only very confident
signals), C the hard stop (no orders). Within one UTC day a regime only gets stricter: B stays B when
the return comes back, C stays C; the reset at 00:00 UTC (market time) brings every symbol back to A.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.messages import Regime
from shared.symbol_config import SymbolConfig

_RANK: dict[Regime, int] = {"A": 0, "B": 1, "C": 2}


def utc_day(ts: float) -> str:
    """The UTC calendar day of a market time, as 'YYYY-MM-DD' (the broker day on Exness, UTC+0)."""
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def day_return(equity: float, start_balance: float) -> float:
    """(equity - the day's start balance) / the day's start balance."""
    return (equity - start_balance) / start_balance


def regime_for(day_ret: float, config: SymbolConfig) -> tuple[Regime, str]:
    """The regime this day's return calls for by itself, and the rule that calls for it."""
    risk = config.risk
    if day_ret <= -risk.max_daily_loss_pct:
        return "C", "max_daily_loss"
    if day_ret <= -risk.daily_loss_c_pct:
        return "C", "daily_loss_c"
    if day_ret >= risk.daily_target_pct:
        return "B", "daily_target"
    if day_ret <= -risk.daily_loss_b_pct:
        return "B", "daily_loss_b"
    return "A", "normal"


def next_regime(current: Regime, day_ret: float, config: SymbolConfig) -> tuple[Regime, str] | None:
    """The new regime and its reason if the day's return moves ``current`` to a stricter one, else None.

    With ``risk.enforce_daily_limits = false`` the regime never moves.
    """
    if not config.risk.enforce_daily_limits:
        return None
    wanted, reason = regime_for(day_ret, config)
    if _RANK[wanted] > _RANK[current]:
        return wanted, reason
    return None


def confidence_threshold(regime: Regime, config: SymbolConfig) -> float:
    """The minimum confidence an order needs in this regime (C: none is enough)."""
    if regime == "A":
        return config.signal.min_confidence_signal
    if regime == "B":
        return config.signal.ultra_confidence_min
    return float("inf")
