"""Gold's own rules on top of the shared strategy engine."""

from __future__ import annotations

from shared.messages import Bar
from shared.strategy.core import StrategyCore


class XauStrategy(StrategyCore):
    """Gold closes every day and at weekends. In the first minutes after it reopens, spreads are wide
    and the first bars are thin, so it stays silent for ``quiet_after_reopen_s`` after any pause in
    its M1 bars longer than five minutes. (Keyed on the data, not on a clock schedule, so it needs no
    daylight-saving rule.) While the market is closed the shared engine already emits nothing: the
    gateway's heartbeat says so."""

    quiet_after_reopen_s = 5 * 60

    def skip_reason(self, bar: Bar) -> str | None:
        resumed = self.m1.resumed_at
        if resumed >= 0 and bar.time < resumed + self.quiet_after_reopen_s:
            return "gold just reopened: spreads still wide"
        return None
