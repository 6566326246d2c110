"""The trading day: regimes from the account, the reset at 00:00 UTC market time, restarts on the same file."""

from __future__ import annotations

import pytest

from services.risk.core import Outgoing, RiskCore
from services.risk.store import RiskStore
from shared import topics
from shared.clock import FakeClock
from shared.config import LoadedConfig
from shared.messages import RegimeChanged, RiskState
from tests.unit.risk.helpers import (
    BTC,
    T0,
    XAU,
    account,
    db_path,
    fill_report,
    heartbeat,
    new_core,
    only_plan,
    published,
    ready,
    refused_by,
    signal,
    with_table,
)

MIDNIGHT = 1_752_105_600  # Thu 2025-07-10 00:00:00 UTC, seven hours after T0
SATURDAY = 1_752_278_400  # Sat 2025-07-12 00:00:00 UTC


def regime_events(out: list[Outgoing]) -> list[tuple[str, str, str, str]]:
    """(symbol, old, new, reason) of every RegimeChanged, checking each goes out on the regime topic."""
    found = [(o.topic, o.message) for o in out if isinstance(o.message, RegimeChanged)]
    assert all(topic == topics.RISK_REGIME for topic, _ in found)
    return [(e.symbol, e.old, e.new, e.reason) for _, e in found]


def regimes(core: RiskCore) -> dict[str, str]:
    return {symbol: state.regime for symbol, state in core.status().symbols.items()}


def test_regime_a_to_b_to_c_from_account_snapshots(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))  # day starts at balance 4000
    assert regime_events(core.handle(account(T0 + 1, equity=3950.0))) == []  # -1.25 %
    out = core.handle(account(T0 + 2, equity=3910.0))  # -2.25 %
    assert regime_events(out) == [(XAU, "A", "B", "daily_loss_b"), (BTC, "A", "B", "daily_loss_b")]
    event = published(out, RegimeChanged)[0]
    assert isinstance(event, RegimeChanged) and event.day_return == pytest.approx(-0.0225)
    assert regime_events(core.handle(account(T0 + 3, equity=3990.0))) == []  # B holds for the day
    out = core.handle(account(T0 + 4, equity=3870.0))  # -3.25 %: bitcoin's max_daily_loss_pct is 3 %
    assert regime_events(out) == [(BTC, "B", "C", "max_daily_loss")]
    out = core.handle(account(T0 + 5, equity=3790.0))  # -5.25 %
    assert regime_events(out) == [(XAU, "B", "C", "daily_loss_c")]
    assert regime_events(core.handle(account(T0 + 6, equity=4100.0))) == []  # C holds for the day
    assert regimes(core) == {XAU: "C", BTC: "C"}


def test_reaching_the_daily_target_moves_to_b(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    out = core.handle(account(T0 + 1, equity=4800.0))
    assert regime_events(out) == [(XAU, "A", "B", "daily_target"), (BTC, "A", "B", "daily_target")]


def test_straight_from_a_to_c(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock))
    out = core.handle(account(T0 + 1, equity=3500.0))
    assert regime_events(out) == [(XAU, "A", "C", "max_daily_loss"), (BTC, "A", "C", "max_daily_loss")]


def test_enforce_daily_limits_false_keeps_regime_a(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(with_table(config, XAU, "risk", enforce_daily_limits=False), clock))
    out = core.handle(account(T0 + 1, equity=2000.0))
    assert regime_events(out) == [(BTC, "A", "C", "max_daily_loss")]
    assert regimes(core) == {XAU: "A", BTC: "C"}


def test_midnight_resets_c_and_b_to_a_with_new_anchors(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(with_table(config, XAU, "limits", max_signals_per_day=1), clock))
    only_plan(core.handle(signal(XAU)))
    core.handle(account(T0 + 60, balance=3880.0, equity=3880.0))  # -3 %: gold B, bitcoin C
    assert regimes(core) == {XAU: "B", BTC: "C"}
    assert regime_events(core.handle(heartbeat(MIDNIGHT - 1))) == []
    out = core.handle(heartbeat(MIDNIGHT))
    assert regime_events(out) == [(XAU, "B", "A", "new_day"), (BTC, "C", "A", "new_day")]
    state = published(out, RiskState)[-1]
    assert isinstance(state, RiskState)
    assert (state.day_start_balance, state.day_return) == (3880.0, 0.0)
    assert regimes(core) == {XAU: "A", BTC: "A"}
    # the day's signal counter starts again
    only_plan(core.handle(signal(XAU, bar_time=MIDNIGHT - 60, ts=MIDNIGHT)))
    # later messages of the same day, and a restart on the same file, do not reset again
    assert regime_events(core.handle(account(MIDNIGHT + 60, balance=3880.0, equity=3800.0))) == [
        (XAU, "A", "B", "daily_loss_b"), (BTC, "A", "B", "daily_loss_b")
    ]
    restarted = ready(new_core(config, clock), ts=MIDNIGHT + 300, balance=3880.0)
    assert regimes(restarted) == {XAU: "B", BTC: "B"}
    assert regime_events(restarted.handle(heartbeat(MIDNIGHT + 301))) == []


def test_the_reset_runs_at_weekends_too(config: LoadedConfig, clock: FakeClock) -> None:
    core = ready(new_core(config, clock), ts=SATURDAY - 3600)
    core.handle(account(SATURDAY - 60, equity=3000.0))
    out = core.handle(heartbeat(SATURDAY + 5))
    assert regime_events(out) == [(XAU, "C", "A", "new_day"), (BTC, "C", "A", "new_day")]


def test_the_day_opens_on_the_first_account_after_a_reset_without_one(
    config: LoadedConfig, clock: FakeClock
) -> None:
    core = new_core(config, clock)
    core.handle(heartbeat(T0))  # market time known, no account yet: the day has no start balance
    assert core.status().day_start_balance == 0.0
    core.handle(account(T0 + 1, balance=5000.0, equity=4990.0))
    assert core.status().day_start_balance == 5000.0
    assert core.status().day_return == pytest.approx(-0.002)


def test_restart_on_the_same_file_resumes_c_and_the_switch_off(config: LoadedConfig, clock: FakeClock) -> None:
    first = ready(new_core(config, clock))
    first.handle(account(T0 + 1, equity=3700.0))  # hard stop at 17:00
    first.set_trading(False, "owner via telegram")
    assert refused_by(first.handle(signal(XAU, confidence=0.99))) == "trading_switch"

    second = ready(new_core(config, clock), ts=T0 + 300)  # a flat account: C must still hold
    state = second.status()
    assert state.trading_enabled is False
    assert regimes(second) == {XAU: "C", BTC: "C"}
    assert state.day_start_balance == 4000.0
    assert refused_by(second.handle(signal(XAU, bar_time=T0 + 240))) == "trading_switch"
    second.set_trading(True, "owner")
    assert refused_by(second.handle(signal(XAU, bar_time=T0 + 240, ts=T0 + 301))) == "regime"

    third = new_core(config, clock)  # the switch back on is remembered too
    assert third.status().trading_enabled is True


def test_restart_remembers_planned_bars_cooldowns_and_peak(config: LoadedConfig, clock: FakeClock) -> None:
    first = ready(new_core(config, clock))
    plan = only_plan(first.handle(signal(XAU)))
    first.handle(fill_report(plan))  # filled at market time T0: cooling down until T0 + 60
    first.handle(account(T0 + 1, equity=4100.0))

    second = ready(new_core(config, clock), ts=T0 + 2)
    assert refused_by(second.handle(signal(XAU))) == "duplicate"
    assert refused_by(second.handle(signal(XAU, bar_time=T0 - 30, ts=T0 + 2))) == "cooldown"
    assert second.status().symbols[XAU].open_positions == 1
    day = RiskStore(db_path(config)).load_day()
    assert day is not None and (day.start_balance, day.peak_equity) == (4000.0, 4100.0)


def test_trading_is_on_at_the_first_start(config: LoadedConfig, clock: FakeClock) -> None:
    assert new_core(config, clock).status().trading_enabled is True
    assert RiskStore(db_path(config)).load_switch() == (True, "first start")
