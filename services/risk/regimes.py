"""The A / B / C regime of a symbol from the day's figures: pure functions, no state.

A is normal, B protective (only very confident signals, reduced size), C the hard stop (no orders, the
strategies skip analysis). Every threshold is a fraction of the balance at the start of the UTC day, as
configs/*.toml say, and the day's P&L starts at 0, so its peak is never below 0:

- C: return <= -max_daily_loss_pct ("max_daily_loss"), <= -daily_loss_c_pct ("daily_loss_c"); the profit lock
  ("profit_lock": the peak reached target + profit_lock_buffer_pct and the return fell back to the target or
  below); the drawdown from the day's peak, peak return - return, >= protect_drawdown_from_peak_pct
  ("drawdown_from_peak").
- B: return >= daily_target_pct ("daily_target") or <= -daily_loss_b_pct ("daily_loss_b").

Within one UTC day a regime only gets stricter (B stays B when the return comes back, C stays C); the
reset at 00:00 UTC market time brings every symbol back to A. ``enforce_daily_limits = false`` turns all
of it off (the symbol stays in A). ``ignore_daily_stop_for_trading`` keeps C reported but not locked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from shared.messages import Regime
from shared.symbol_config import SymbolConfig

_RANK: dict[Regime, int] = {"A": 0, "B": 1, "C": 2}
EPS = 1e-9  # every limit is inclusive ("reaching" it counts) despite binary noise: 205 / 1000 < 0.20 + 0.005
DAY_S = 86_400


def utc_day(ts: float) -> str:
    """The UTC calendar day of a market time, as 'YYYY-MM-DD' (the broker day on Exness, UTC+0)."""
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def day_start(day: str) -> float:
    """00:00:00 UTC of 'YYYY-MM-DD' in epoch seconds."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).timestamp()


@dataclass(frozen=True, slots=True)
class DayFigures:
    """The day's P&L on one measure (account currency) against the balance it started with."""

    start_balance: float
    pnl: float
    peak_pnl: float  # the highest P&L of the day, >= 0

    @property
    def ret(self) -> float:
        """The day's return: P&L / start balance."""
        return self.pnl / self.start_balance

    @property
    def peak_ret(self) -> float:
        return max(0.0, self.peak_pnl, self.pnl) / self.start_balance

    @property
    def drawdown(self) -> float:
        """How far the return is below the day's peak return, as a fraction of the start balance."""
        return self.peak_ret - self.ret


def profit_lock_armed(figures: DayFigures, config: SymbolConfig) -> bool:
    """The peak went past the target by profit_lock_buffer_pct or more: falling back to the target is C."""
    risk = config.risk
    return figures.peak_ret >= risk.daily_target_pct + risk.profit_lock_buffer_pct - EPS


def regime_for(figures: DayFigures, config: SymbolConfig) -> tuple[Regime, str]:
    """The regime the day's figures call for by themselves, and the rule that calls for it (C rules first)."""
    risk = config.risk
    ret = figures.ret
    if ret <= -risk.max_daily_loss_pct + EPS:
        return "C", "max_daily_loss"
    if ret <= -risk.daily_loss_c_pct + EPS:
        return "C", "daily_loss_c"
    if profit_lock_armed(figures, config) and ret <= risk.daily_target_pct + EPS:
        return "C", "profit_lock"
    if figures.drawdown >= risk.protect_drawdown_from_peak_pct - EPS:
        return "C", "drawdown_from_peak"
    if ret >= risk.daily_target_pct - EPS:
        return "B", "daily_target"
    if ret <= -risk.daily_loss_b_pct + EPS:
        return "B", "daily_loss_b"
    return "A", "normal"


def next_regime(current: Regime, figures: DayFigures, config: SymbolConfig) -> tuple[Regime, str] | None:
    """The new regime and its reason if the figures move ``current`` to a stricter one, else None."""
    if not config.risk.enforce_daily_limits:
        return None
    wanted, reason = regime_for(figures, config)
    if _RANK[wanted] > _RANK[current]:
        return wanted, reason
    return None


def trading_locked(regime: Regime, config: SymbolConfig) -> bool:
    """Regime C locks trading unless ignore_daily_stop_for_trading says to go on (C is still reported)."""
    return regime == "C" and not config.risk.ignore_daily_stop_for_trading


def protective(regime: Regime) -> bool:
    """B, and C when trading goes on in it: the ultra confidence threshold and the reduced size apply."""
    return regime != "A"


def confidence_threshold(regime: Regime, config: SymbolConfig) -> float:
    """The minimum confidence an order needs: A min_confidence_signal; B (and an unlocked C)
    ultra_confidence_min; a locked C none is enough."""
    if trading_locked(regime, config):
        return float("inf")
    if protective(regime):
        return config.signal.ultra_confidence_min
    return config.signal.min_confidence_signal
