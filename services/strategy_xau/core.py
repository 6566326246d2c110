"""Gold's own rules on top of the shared strategy engine."""

from __future__ import annotations

from dataclasses import dataclass

from shared.messages import Bar
from shared.strategy.core import StrategyCore

REOPEN_GAP_S = 5 * 60


@dataclass
class XauStrategy(StrategyCore):
    """Gold closes every day and at weekends. In the first minutes after it reopens, spreads are wide
    and the first bars are thin, so it stays silent for ``quiet_after_reopen_s`` after any gap in its
    M1 bars longer than five minutes. (Keyed on the data, not on a clock schedule, so it needs no
    daylight-saving rule.)"""

    quiet_after_reopen_s: int = 5 * 60
    _previous_m1: int = -1
    _quiet_until: int = -1

    def skip_reason(self, bar: Bar) -> str | None:
        if self._previous_m1 >= 0 and bar.time - self._previous_m1 > REOPEN_GAP_S:
            self._quiet_until = bar.time + self.quiet_after_reopen_s
        self._previous_m1 = bar.time
        return "gold just reopened: spreads still wide" if bar.time < self._quiet_until else None
