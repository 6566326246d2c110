"""Sizing: balance tiers, TP in USD -> price, SL floors, rounding, multi-order legs (pure functions)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.risk.sizing import (
    SizingError,
    ceil_to_tick,
    is_trend,
    leg_count,
    round_price,
    round_volume,
    size_order,
    sl_floors,
    split_volumes,
    tier_lot_and_tp_usd,
    tp_usd_to_distance,
)
from shared.config import LoadedConfig
from shared.messages import Side, SymbolSpec
from tests.unit.risk.helpers import BTC, BTC_SPEC, XAU, XAU_SPEC, shipped_symbol_config, signal


@pytest.mark.parametrize(
    ("balance", "lot", "tp_usd"),
    [(0.0, 0.02, 2.0), (150.0, 0.02, 2.0), (200.0, 0.03, 3.0), (299.99, 0.03, 3.0), (1000.0, 0.11, 11.0),
     (4000.0, 0.41, 41.0), (10_050.0, 1.01, 101.0)],
)
def test_gold_linear_tiers(config: LoadedConfig, balance: float, lot: float, tp_usd: float) -> None:
    got_lot, got_tp = tier_lot_and_tp_usd(config.symbols[XAU].sizing, balance)
    assert round_volume(got_lot, XAU_SPEC) == lot
    assert got_tp == pytest.approx(tp_usd)


@pytest.mark.parametrize(
    ("balance", "lot", "tp_usd"),
    [(0.0, 0.01, 2.0), (499.99, 0.01, 2.0), (500.0, 0.02, 4.0), (1999.0, 0.03, 6.0), (4000.0, 0.05, 10.0),
     (5000.0, 0.10, 20.0), (1_000_000.0, 0.20, 40.0)],
)
def test_bitcoin_table_takes_the_last_row_at_or_below_the_balance(
    config: LoadedConfig, balance: float, lot: float, tp_usd: float
) -> None:
    assert tier_lot_and_tp_usd(config.symbols[BTC].sizing, balance) == (lot, tp_usd)


@given(balance=st.floats(min_value=0, max_value=10_000_000, allow_nan=False))
def test_gold_tiers_follow_the_formula_for_any_balance(balance: float) -> None:
    exact = Decimal(balance)
    assume(abs(exact / 100 - round(exact / 100)) > Decimal("1e-6"))  # a hair from a tier edge: either side
    step = max(0, int(exact // 100) - 1)
    lot, tp_usd = tier_lot_and_tp_usd(shipped_symbol_config(XAU).sizing, balance)
    assert round_volume(lot, XAU_SPEC) == min(200.0, float(Decimal("0.02") + Decimal("0.01") * step))
    assert tp_usd == pytest.approx(2.0 + step)


def test_tp_usd_becomes_a_price_distance_through_tick_value_and_size() -> None:
    # gold: 41 USD on 0.41 lot = 1000 ticks of 0.001 worth 0.1 USD a lot -> a 1.000 move
    assert tp_usd_to_distance(41.0, 0.41, XAU_SPEC) == pytest.approx(1.0)
    # bitcoin: 2 USD on 0.01 lot = a 200 USD move (the comment in configs/btc.toml)
    assert tp_usd_to_distance(2.0, 0.01, BTC_SPEC) == pytest.approx(200.0)


def test_sl_is_the_atr_multiple_when_above_every_floor(config: LoadedConfig) -> None:
    floors = sl_floors(1.0, 200, config.symbols[XAU].sltp, XAU_SPEC)
    assert floors.distance == pytest.approx(1.15)


def test_sl_is_raised_to_the_broker_floor(config: LoadedConfig) -> None:
    spec = XAU_SPEC.model_copy(update={"trade_stops_level": 1500, "trade_freeze_level": 500})
    floors = sl_floors(1.0, 200, config.symbols[XAU].sltp, spec)
    # (1500 + 500 + 10 padding) points, plus the spread MT5 measures a BUY's SL across (bid vs ask)
    assert floors.distance == pytest.approx(2.010 + 0.2)


def test_sl_is_raised_to_the_cost_floor(config: LoadedConfig) -> None:
    sltp = config.symbols[XAU].sltp
    # 1000 points = 1.0 of spread x 1.8, plus the noise: ATR 0.1 x 0.6
    assert sl_floors(0.1, 1000, sltp, XAU_SPEC).distance == pytest.approx(1.8 + 0.06)
    # the slippage the execution monitor expects: 50 points = 0.05 x sltp_cost_slip_mult 1.0
    assert sl_floors(0.1, 1000, sltp, XAU_SPEC, expected_slippage_points=50).distance == pytest.approx(1.91)


def test_sl_is_raised_to_the_atr_floor(config: LoadedConfig) -> None:
    sltp = config.symbols[XAU].sltp.model_copy(update={"sl_atr_mult_trend": 0.5})
    assert sl_floors(1.0, 200, sltp, XAU_SPEC).distance == pytest.approx(1.15)  # sltp_sl_floor_mult


def test_trend_and_range_take_their_own_atr_multiple(config: LoadedConfig) -> None:
    sltp = config.symbols[XAU].sltp
    assert sl_floors(1.0, 200, sltp, XAU_SPEC, trend=False).distance == pytest.approx(1.35)
    confirmed, m1_only = signal(XAU), signal(XAU).model_copy(update={"timeframes": ("M1",)})
    assert (is_trend(confirmed), is_trend(m1_only)) == (True, False)
    told = m1_only.model_copy(update={"market_regime": "trend"})
    assert is_trend(told) and not is_trend(confirmed.model_copy(update={"market_regime": "range"}))
    sized = size_order(m1_only.model_copy(update={"atr": 1.0}), config.symbols[XAU], XAU_SPEC, 4000.0,
                       max_legs=3, plan_id="p")
    assert sized.sl_distance == pytest.approx(1.35)


def test_prices_round_to_the_tick_and_volumes_down_to_the_step() -> None:
    assert round_price(3300.12349, XAU_SPEC) == 3300.123
    tick_5 = XAU_SPEC.model_copy(update={"trade_tick_size": 0.005})
    assert round_price(3300.1234, tick_5) == 3300.125
    assert ceil_to_tick(1.1501, XAU_SPEC) == 1.151
    assert round_volume(0.419, XAU_SPEC) == 0.41
    assert round_volume(0.29, XAU_SPEC) == 0.29  # 0.29 / 0.01 is 28.999... in binary: still 29 steps
    assert round_volume(0.001, XAU_SPEC) == 0.01  # clamped up to volume_min
    assert round_volume(5000.0, XAU_SPEC) == 200.0  # clamped down to volume_max


@pytest.mark.parametrize(
    ("confidence", "strength", "legs"),
    [(0.80, 0.5, 1), (0.849, 0.5, 1), (0.85, 0.5, 2), (0.90, 0.5, 3), (0.96, 0.5, 3), (0.96, 0.19, 1),
     (0.96, 0.20, 3)],
)
def test_leg_count_by_confidence_and_strength(
    config: LoadedConfig, confidence: float, strength: float, legs: int
) -> None:
    assert leg_count(confidence, strength, config.symbols[XAU].multi_order) == legs


def test_leg_count_is_capped_by_max_orders(config: LoadedConfig) -> None:
    multi = config.symbols[XAU].multi_order.model_copy(update={"multi_order_max_orders": 2})
    assert leg_count(0.95, 0.9, multi) == 2


def test_split_lot_uses_whole_steps_and_never_goes_below_volume_min() -> None:
    assert split_volumes(0.41, 3, XAU_SPEC, split=True) == [0.14, 0.14, 0.13]
    assert split_volumes(0.02, 3, XAU_SPEC, split=True) == [0.01, 0.01]
    assert split_volumes(0.01, 3, XAU_SPEC, split=True) == [0.01]
    assert split_volumes(0.41, 3, XAU_SPEC, split=False) == [0.41, 0.41, 0.41]


def test_a_three_leg_gold_buy_at_4000(config: LoadedConfig) -> None:
    sized = size_order(signal(XAU, confidence=0.92, atr=1.0), config.symbols[XAU], XAU_SPEC, 4000.0,
                       max_legs=3, plan_id="XAU1752080340b")
    assert (sized.lot, sized.tp_usd, sized.entry) == (0.41, 41.0, 3300.2)  # the ask: close + 200 points
    assert [(leg.leg_id, leg.volume, leg.sl, leg.tp) for leg in sized.legs] == [
        ("XAU1752080340b-1", 0.14, 3299.05, 3301.2),
        ("XAU1752080340b-2", 0.14, 3299.05, 3301.35),  # TP x 1.15 for extra legs, same SL
        ("XAU1752080340b-3", 0.13, 3299.05, 3301.35),
    ]


def test_a_gold_sell_is_mirrored_from_the_bid(config: LoadedConfig) -> None:
    sized = size_order(signal(XAU, side="sell", confidence=0.82, atr=1.0), config.symbols[XAU], XAU_SPEC,
                       4000.0, max_legs=3, plan_id="p")
    assert [(leg.volume, leg.sl, leg.tp) for leg in sized.legs] == [(0.41, 3301.15, 3299.0)]


def test_regime_b_halves_the_lot_keeps_the_tp_price_and_sends_one_leg(config: LoadedConfig) -> None:
    sized = size_order(signal(XAU, confidence=0.95, atr=1.0), config.symbols[XAU], XAU_SPEC, 4000.0,
                       max_legs=3, plan_id="p", reduced=True)
    assert (sized.lot, sized.tp_distance) == (0.2, 1.0)  # 0.41 x 0.5 rounded down; 41 USD on 0.41 lot
    assert [(leg.volume, leg.sl, leg.tp) for leg in sized.legs] == [(0.2, 3299.05, 3301.2)]


def test_a_wide_spread_in_basis_points_keeps_one_leg(config: LoadedConfig) -> None:
    multi = config.symbols[XAU].multi_order
    assert leg_count(0.95, 0.5, multi, spread_in_bps=6.0) == 3
    assert leg_count(0.95, 0.5, multi, spread_in_bps=6.1) == 1


def test_fixed_volume_overrides_the_tier_lot(config: LoadedConfig) -> None:
    btc = config.symbols[BTC]
    btc = btc.model_copy(update={"risk": btc.risk.model_copy(update={"fixed_volume": 0.07})})
    sized = size_order(signal(BTC), btc, BTC_SPEC, 4000.0, max_legs=3, plan_id="p")
    assert sized.lot == 0.07
    assert sized.tp_distance == pytest.approx(10.0 / (0.01 * 0.07) * 0.01, abs=0.01)


SPEC_VARIANTS = [
    XAU_SPEC,
    BTC_SPEC,
    XAU_SPEC.model_copy(update={"volume_step": 0.1, "volume_min": 0.1, "trade_stops_level": 300,
                                "trade_freeze_level": 50}),
    BTC_SPEC.model_copy(update={"volume_min": 0.05, "volume_max": 0.5, "trade_tick_size": 0.5, "digits": 1}),
]


@settings(max_examples=150, deadline=None)
@given(
    spec_index=st.integers(0, len(SPEC_VARIANTS) - 1),
    balance=st.floats(min_value=1.0, max_value=5_000_000.0),
    confidence=st.floats(min_value=0.0, max_value=1.0),
    strength=st.floats(min_value=0.01, max_value=1.0),
    atr_fraction=st.floats(min_value=1e-6, max_value=0.01),
    spread_points=st.integers(0, 5000),
    side=st.sampled_from(["buy", "sell"]),
    max_legs=st.integers(1, 3),
    trend=st.booleans(),
    slippage=st.floats(min_value=0.0, max_value=500.0),
)
def test_any_order_respects_volume_limits_and_every_sl_floor(
    *, spec_index: int, balance: float, confidence: float, strength: float, atr_fraction: float,
    spread_points: int, side: Side, max_legs: int, trend: bool, slippage: float,
) -> None:
    spec = SPEC_VARIANTS[spec_index]
    symbol = XAU if spec.name == XAU else BTC
    sig = signal(symbol, side=side, confidence=confidence, strength=strength, spread_points=spread_points)
    sig = sig.model_copy(update={"atr": sig.price * atr_fraction, "market_regime": "trend" if trend else "range"})
    cfg = shipped_symbol_config(symbol)
    full, reduced = (size_order(sig, cfg, spec, balance, max_legs=max_legs, plan_id="p", reduced=flag,
                                expected_slippage_points=slippage) for flag in (False, True))
    floors = sl_floors(sig.atr, spread_points, cfg.sltp, spec, trend=trend, expected_slippage_points=slippage)
    assert sum(leg.volume for leg in reduced.legs) <= sum(leg.volume for leg in full.legs) + 1e-9
    assert len(reduced.legs) <= min(len(full.legs), cfg.risk.regime_b_max_orders)
    spread = spread_points * spec.point
    for sized in (full, reduced):
        assert 1 <= len(sized.legs) <= max_legs
        first_sl_distance = abs(sized.entry - sized.legs[0].sl)
        for leg in sized.legs:
            assert spec.volume_min - 1e-9 <= leg.volume <= spec.volume_max + 1e-9
            steps = leg.volume / spec.volume_step
            assert abs(steps - round(steps)) < 1e-6 or leg.volume == spec.volume_max
            sl_distance = abs(sized.entry - leg.sl)
            assert sl_distance >= max(floors.atr, floors.atr_floor, floors.broker, floors.cost) - 1e-9
            assert sl_distance >= first_sl_distance - 1e-9  # extra legs never get a tighter SL
            # never inside the broker's limits, measured from the price MT5 checks (bid for a BUY's SL)
            assert sl_distance - spread >= (spec.trade_stops_level + spec.trade_freeze_level) * spec.point - 1e-9
            assert (leg.sl < sized.entry < leg.tp) if side == "buy" else (leg.tp < sized.entry < leg.sl)
            for price in (leg.sl, leg.tp):
                ticks = price / spec.trade_tick_size
                assert abs(ticks - round(ticks)) < 1e-6


def test_specs_with_a_tick_value_of_zero_are_refused(config: LoadedConfig) -> None:
    broken: SymbolSpec = XAU_SPEC.model_copy(update={"trade_tick_value": 0.0})
    with pytest.raises(SizingError, match="trade_tick_value"):
        size_order(signal(XAU), config.symbols[XAU], broken, 4000.0, max_legs=3, plan_id="p")
