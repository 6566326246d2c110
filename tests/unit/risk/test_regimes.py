"""The regime rules at their edges, and properties of whole P&L paths through the real core."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.risk.regimes import DayFigures, confidence_threshold, profit_lock_armed, regime_for
from shared.config import LoadedConfig
from tests.unit.risk.helpers import BTC, SHIPPED, XAU, shipped_symbol_config, with_table
from tests.unit.risk.scenario import Day

GOLD = shipped_symbol_config(XAU)  # target 20 %, B at -2 %, C at -5 %, max loss 10 %, buffer 0.5 %
RANK = {"A": 0, "B": 1, "C": 2}


@pytest.mark.parametrize(
    ("pnl", "peak", "regime", "reason"),
    [(0.0, 0.0, "A", "normal"), (-19.99, 0.0, "A", "normal"), (-20.0, 0.0, "B", "daily_loss_b"),
     (-50.0, 0.0, "C", "daily_loss_c"), (-100.0, 0.0, "C", "max_daily_loss"), (199.99, 0.0, "A", "normal"),
     (200.0, 0.0, "B", "daily_target"), (204.99, 204.99, "B", "daily_target"),
     (200.0, 204.99, "B", "daily_target"), (200.0, 205.0, "C", "profit_lock"), (150.0, 210.0, "C", "profit_lock"),
     (-19.0, 190.0, "A", "normal"), (-20.0, 190.0, "B", "daily_loss_b"), (10.0, 310.0, "C", "profit_lock")],
)
def test_regime_for_at_the_edges(pnl: float, peak: float, regime: str, reason: str) -> None:
    assert regime_for(DayFigures(1000.0, pnl, peak), GOLD) == (regime, reason)


def test_the_drawdown_from_the_peak_counts_in_points_of_the_start_balance() -> None:
    risk = GOLD.risk.model_copy(update={"protect_drawdown_from_peak_pct": 0.10})
    gold = GOLD.model_copy(update={"risk": risk})
    assert regime_for(DayFigures(1000.0, 91.0, 190.0), gold) == ("A", "normal")
    assert regime_for(DayFigures(1000.0, 90.0, 190.0), gold) == ("C", "drawdown_from_peak")
    assert regime_for(DayFigures(1000.0, -10.0, 90.0), gold) == ("C", "drawdown_from_peak")


def test_the_peak_is_never_below_zero_nor_below_the_current_pnl() -> None:
    figures = DayFigures(1000.0, -30.0, 0.0)
    assert figures.peak_ret == 0.0 and figures.drawdown == pytest.approx(0.03)
    assert DayFigures(1000.0, 210.0, 0.0).peak_ret == pytest.approx(0.21)
    assert profit_lock_armed(DayFigures(1000.0, 205.0, 0.0), GOLD)


def test_confidence_thresholds_by_regime(config: LoadedConfig) -> None:
    btc = config.symbols[BTC]
    assert [confidence_threshold(r, btc) for r in ("A", "B", "C")] == [0.75, 0.92, float("inf")]
    unlocked = with_table(config, BTC, "risk", ignore_daily_stop_for_trading=True).symbols[BTC]
    assert confidence_threshold("C", unlocked) == 0.92


PNL = st.sampled_from([-120.0, -100.0, -60.0, -50.0, -30.0, -20.0, -10.0, 0.0, 50.0, 150.0, 199.0, 200.0,
                       204.0, 205.0, 230.0, 320.0])


@settings(max_examples=25, deadline=None)
@given(st.lists(PNL, min_size=1, max_size=7))
def test_any_pnl_path_through_the_core(path: list[float]) -> None:
    """Regimes never relax within a day; the profit lock, the C loss and the drawdown always end in C with one
    lock event per symbol; a calm path stays in A without any event."""
    with tempfile.TemporaryDirectory() as tmp:
        day = Day(SHIPPED, balance=1000.0, path=Path(tmp) / "risk.sqlite")
        seen: list[tuple[str | float | None, ...]] = []
        previous = day.regimes()
        for minute, pnl in enumerate(path, start=1):
            seen += day.step(f"10:{minute:02d}", pnl=pnl)
            now = day.regimes()
            assert all(RANK[now[s]] >= RANK[previous[s]] for s in now)
            previous = now
        peak, armed_then_fell, deepest_drawdown = 0.0, False, 0.0
        for pnl in path:
            peak = max(peak, pnl)
            armed_then_fell |= peak >= 205.0 and pnl <= 200.0
            deepest_drawdown = max(deepest_drawdown, peak - pnl)
        must_stop = armed_then_fell or min(path) <= -50.0 or deepest_drawdown >= 300.0
        locks = [event for event in seen if event[0] == "lock"]
        if must_stop:
            assert day.regimes() == {XAU: "C", BTC: "C"}
        if day.regimes()[XAU] == "C":
            assert sum(1 for event in locks if event[1] == XAU) == 1
        if all(-20.0 < pnl < 200.0 for pnl in path) and deepest_drawdown < 300.0 and min(path) > -30.0:
            assert seen == [] and day.regimes() == {XAU: "A", BTC: "A"}
