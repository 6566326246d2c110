"""Lot, SL and TP for one signal: balance tiers, USD -> price distance, broker floors, multi-order legs.

Pure functions of (signal, symbol config, symbol spec, balance), so the tests and the backtest can
check every number without a process. Prices are rounded to the tick size (then the digits), volumes
DOWN to the volume step and clamped to [volume_min, volume_max]. Anything that cannot give a valid
order raises ``SizingError``; the core turns it into a refusal (rule "sizing").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from shared.messages import OrderLeg, Side, Signal, SymbolSpec
from shared.symbol_config import MultiOrderTable, SizingTable, SlTpTable, SymbolConfig

_EPS = 1e-9  # absorbs binary noise such as 0.29 / 0.01 = 28.999999999999996
EXTRA_LEG_STRENGTH_FACTOR = 0.8  # extra legs need |net_norm| >= 0.8 x multi_order_min_strength


class SizingError(ValueError):
    """The signal cannot be turned into a valid order (bad spec, balance, or a TP below zero)."""


def _decimals(step: float) -> int:
    """How many decimals a step like 0.01 has (2), so rounded values print cleanly."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def tier_lot_and_tp_usd(sizing: SizingTable, balance: float) -> tuple[float, float]:
    """The lot and the TP in USD for this balance (linear gold rule or the table's last matching row)."""
    if sizing.mode == "linear":
        step = max(0, math.floor(balance / sizing.balance_step + _EPS) - 1)
        lot = sizing.base_lot + sizing.lot_per_step * step
        return lot, sizing.base_tp_usd + sizing.tp_usd_per_step * step
    rows = [row for row in sizing.tiers if row[0] <= balance]
    row = rows[-1] if rows else sizing.tiers[0]  # below the first row: the smallest size
    return row[1], row[2]


def volume_steps(volume: float, spec: SymbolSpec) -> int:
    """Whole volume steps in ``volume``, rounded DOWN."""
    return math.floor(volume / spec.volume_step + _EPS)


def round_volume(volume: float, spec: SymbolSpec) -> float:
    """Round DOWN to the volume step, then clamp to [volume_min, volume_max]."""
    stepped = round(volume_steps(volume, spec) * spec.volume_step, _decimals(spec.volume_step))
    return min(max(stepped, spec.volume_min), spec.volume_max)


def round_price(price: float, spec: SymbolSpec) -> float:
    """Nearest multiple of the tick size, written with the symbol's digits."""
    return round(round(price / spec.trade_tick_size) * spec.trade_tick_size, spec.digits)


def ceil_to_tick(distance: float, spec: SymbolSpec) -> float:
    """A distance rounded UP to whole ticks, so a floor still holds after rounding."""
    ticks = math.ceil(distance / spec.trade_tick_size - _EPS)
    return round(ticks * spec.trade_tick_size, spec.digits)


def tp_usd_to_distance(usd: float, lot: float, spec: SymbolSpec) -> float:
    """The price move that earns ``usd`` on ``lot``: ticks = usd / (tick_value x lot), x tick_size."""
    if spec.trade_tick_value <= 0 or lot <= 0:
        raise SizingError(f"{spec.name}: trade_tick_value {spec.trade_tick_value} and lot {lot} must be > 0")
    return usd / (spec.trade_tick_value * lot) * spec.trade_tick_size


def is_trend(signal: Signal) -> bool:
    """The strategy's word on the market when it gives one; else a trend when M5 and M15 confirmed the signal
    (the strategies send a signal only when every fresh timeframe agrees), a range otherwise."""
    if signal.market_regime is not None:
        return signal.market_regime == "trend"
    return {"M5", "M15"} <= set(signal.timeframes)


@dataclass(frozen=True, slots=True)
class SlFloors:
    """The SL distance from the ATR multiple and every floor it is raised to (all in price units)."""

    atr: float  # ATR x sl_atr_mult_trend or sl_atr_mult_range
    atr_floor: float  # ATR x sltp_sl_floor_mult
    broker: float  # (stops + freeze + padding) points, plus the spread MT5 measures across
    cost: float  # spread x spread mult + expected slippage x slip mult + ATR x move mult (the noise)

    @property
    def distance(self) -> float:
        return max(self.atr, self.atr_floor, self.broker, self.cost)


def broker_floor_points(sltp: SlTpTable, spec: SymbolSpec) -> int:
    """stops level + freeze level + padding: closer than this MT5 refuses the stop (10016) or freezes it."""
    return spec.trade_stops_level + spec.trade_freeze_level + sltp.broker_padding_points


def sl_floors(
    atr: float, spread_points: int, sltp: SlTpTable, spec: SymbolSpec, *, trend: bool = True,
    expected_slippage_points: float = 0.0,
) -> SlFloors:
    """The SL from ATR (trend or range multiple) with every floor beside it.

    The broker floor is measured from the price MT5 checks: a BUY's SL against the bid while we enter at
    the ask (a SELL's against the ask, entering at the bid), so the spread is added (MT5-FACTS, 'Stops').
    The cost floor keeps the SL beyond what the trade costs and what the market does in a bar anyway:
    the spread, the slippage the execution monitor expects (its EWMA) and the noise (ATR x move mult).
    """
    spread = spread_points * spec.point
    return SlFloors(
        atr=atr * (sltp.sl_atr_mult_trend if trend else sltp.sl_atr_mult_range),
        atr_floor=atr * sltp.sltp_sl_floor_mult,
        broker=broker_floor_points(sltp, spec) * spec.point + spread,
        cost=(spread * sltp.sltp_cost_spread_mult + expected_slippage_points * spec.point * sltp.sltp_cost_slip_mult
              + atr * sltp.sltp_cost_move_mult),
    )


def spread_bps(signal: Signal, spec: SymbolSpec) -> float:
    """The signal's spread in basis points of its price."""
    return signal.spread_points * spec.point / signal.price * 10_000


def leg_count(confidence: float, net_norm: float, multi: MultiOrderTable, spread_in_bps: float = 0.0) -> int:
    """1 leg at the regime threshold, 2 from tiers[0], 3 from tiers[1], at most multi_order_max_orders; extra
    legs need |net_norm| >= 0.8 x multi_order_min_strength and a spread of at most max_spread_bps_for_multi."""
    tiers = multi.multi_order_confidence_tiers
    count = 1 + (confidence >= tiers[0]) + (confidence >= tiers[1])
    count = min(count, multi.multi_order_max_orders)
    if abs(net_norm) < EXTRA_LEG_STRENGTH_FACTOR * multi.multi_order_min_strength:
        return 1
    if spread_in_bps > multi.max_spread_bps_for_multi:
        return 1
    return count


def split_volumes(lot: float, legs: int, spec: SymbolSpec, split: bool) -> list[float]:
    """Each leg's volume: the lot split in whole steps (earlier legs take the remainder) when ``split``,
    with fewer legs when a share would fall below volume_min; otherwise every leg gets the full lot."""
    if not split:
        return [lot] * legs
    total = volume_steps(lot, spec)
    decimals = _decimals(spec.volume_step)
    while legs > 1:
        base, extra = divmod(total, legs)
        if base * spec.volume_step >= spec.volume_min - _EPS:
            return [round((base + (i < extra)) * spec.volume_step, decimals) for i in range(legs)]
        legs -= 1
    return [lot]


@dataclass(frozen=True, slots=True)
class SizedOrder:
    """The legs of one plan and the numbers behind them (kept for logs and tests)."""

    entry: float
    lot: float
    tp_usd: float
    sl_distance: float
    tp_distance: float
    legs: tuple[OrderLeg, ...]


def entry_price(side: Side, price: float, spread_points: int, spec: SymbolSpec) -> float:
    """The expected fill: the bar close is a bid, so a BUY pays the spread (ask), a SELL does not."""
    return round_price(price + spread_points * spec.point if side == "buy" else price, spec)


def size_order(
    signal: Signal, config: SymbolConfig, spec: SymbolSpec, balance: float, *, max_legs: int, plan_id: str,
    reduced: bool = False, expected_slippage_points: float = 0.0,
) -> SizedOrder:
    """Every number of a plan for ``signal``; at most ``max_legs`` legs (the open-position headroom).

    ``reduced`` is regime B (or a C that trading ignores): the lot x risk.regime_b_lot_factor (rounded down,
    never below volume_min) and at most risk.regime_b_max_orders legs. The TP's price distance still comes
    from the full tier lot and its TP in USD, so the target in price is the same and the USD at TP shrinks
    with the lot. The SL is the same for every leg: extra legs are never tightened.
    """
    if balance <= 0:
        raise SizingError(f"balance {balance} must be > 0")
    tier_lot, tp_usd = tier_lot_and_tp_usd(config.sizing, balance)
    if config.risk.fixed_volume > 0:
        tier_lot = config.risk.fixed_volume
    full_lot = round_volume(tier_lot, spec)
    lot = round_volume(full_lot * config.risk.regime_b_lot_factor, spec) if reduced else full_lot
    entry = entry_price(signal.side, signal.price, signal.spread_points, spec)
    floors = sl_floors(signal.atr, signal.spread_points, config.sltp, spec, trend=is_trend(signal),
                       expected_slippage_points=expected_slippage_points)
    sl_dist = ceil_to_tick(floors.distance, spec)
    broker_min = broker_floor_points(config.sltp, spec) * spec.point  # TP: checked from the far side, no spread
    tp_dist = ceil_to_tick(max(tp_usd_to_distance(tp_usd, full_lot, spec), broker_min), spec)
    count = min(leg_count(signal.confidence, signal.net_norm, config.multi_order, spread_bps(signal, spec)),
                max(1, max_legs), config.risk.regime_b_max_orders if reduced else 3)
    volumes = split_volumes(lot, count, spec, config.multi_order.multi_order_split_lot)
    bonus = 1.0 + config.multi_order.multi_order_tp_bonus_pct
    direction = 1.0 if signal.side == "buy" else -1.0
    legs = []
    for index, volume in enumerate(volumes):
        leg_tp_dist = tp_dist if index == 0 else ceil_to_tick(tp_dist * bonus, spec)
        sl = round_price(entry - direction * sl_dist, spec)  # same distance for every leg: never tighter
        tp = round_price(entry + direction * leg_tp_dist, spec)
        if sl <= 0 or tp <= 0:
            raise SizingError(f"SL {sl} / TP {tp} at or below zero for entry {entry}")
        legs.append(OrderLeg(leg_id=f"{plan_id}-{index + 1}", volume=volume, sl=sl, tp=tp))
    return SizedOrder(entry, lot, tp_usd, sl_dist, tp_dist, tuple(legs))
