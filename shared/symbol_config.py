"""Every parameter of one traded symbol (configs/xau.toml, configs/btc.toml).

The names and defaults are those of the old config_xau.py / config_btc.py, grouped into tables. A
symbol file should spell out every key (the shipped ones do), so that reading it tells the whole story;
a missing key takes the default written here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Fraction = float  # documented as such in Field descriptions; constrained per field
Weight = Annotated[float, Field(ge=0, le=100)]  # relative: each is divided by the sum of its table


class Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SymbolTable(Table):
    name: str = Field(pattern=r"^[A-Za-z0-9._#-]+$", description="the broker's symbol name")
    magic: int = Field(777001, ge=1, le=2**31 - 1, description="magic number of our orders")
    market_open_24_5: bool = Field(True, description="true: trades Mon-Fri only (gold); false: 24/7")
    active_sessions: tuple[tuple[int, int], ...] = Field(
        ((0, 24),), description="UTC hour ranges [start, end) when new orders are allowed"
    )
    ignore_sessions: bool = True
    tf_primary: Literal["M1"] = "M1"
    tf_confirm: Literal["M5"] = "M5"
    tf_long: Literal["M15"] = "M15"


class RiskTable(Table):
    daily_target_pct: float = Field(0.20, gt=0, le=5, description="day's return that moves A -> B")
    daily_loss_b_pct: float = Field(0.02, gt=0, le=1, description="day's loss that moves A -> B")
    daily_loss_c_pct: float = Field(0.05, gt=0, le=1, description="day's loss that moves to C")
    max_daily_loss_pct: float = Field(0.10, gt=0, le=1, description="absolute daily loss cap -> C")
    protect_drawdown_from_peak_pct: float = Field(0.30, gt=0, le=1)
    max_drawdown: float = Field(0.12, gt=0, le=1)
    enforce_daily_limits: bool = True
    ignore_daily_stop_for_trading: bool = False
    enforce_drawdown_limits: bool = False
    ignore_external_positions: bool = True
    profit_lock_buffer_pct: float = Field(0.005, ge=0, le=1, description="above target by this -> track peak")
    max_risk_per_trade: float = Field(0.02, gt=0, le=0.1)
    max_positions: int = Field(3, ge=1, le=100, description="open positions of ours on this symbol")
    fixed_volume: float = Field(0.0, ge=0, description="0 = lot from the balance tiers")
    # Added with the risk service (issue 5): how regime B reduces risk. Defaults keep older files loading.
    regime_b_lot_factor: float = Field(0.5, gt=0, le=1, description="regime B: lot x this (then the step)")
    regime_b_max_orders: int = Field(1, ge=1, le=3, description="regime B: at most this many legs per plan")

    @model_validator(mode="after")
    def _ordered(self) -> RiskTable:
        if self.daily_loss_b_pct > self.daily_loss_c_pct:
            raise ValueError("daily_loss_b_pct must be <= daily_loss_c_pct (B comes before C)")
        return self


class SignalTable(Table):
    min_confidence_signal: float = Field(0.80, gt=0, le=1, description="regime A threshold")
    ultra_confidence_min: float = Field(0.90, gt=0, le=1, description="regime B threshold")
    conf_min: int = Field(80, ge=0, le=100)
    conf_min_low: int = Field(80, ge=0, le=100)
    conf_min_high: int = Field(90, ge=0, le=100)
    strong_conf_min: int = Field(90, ge=0, le=100)
    net_norm_signal_threshold: float = Field(0.10, ge=0, le=1)
    confidence_gain: float = Field(70.0, ge=0, le=500)
    confidence_bias: float = Field(50.0, ge=0, le=100)
    confidence_floor: float = Field(0.70, ge=0, le=1, description="lowest confidence a signal shows")
    confidence_cap: float = Field(0.96, ge=0, le=1, description="highest confidence a signal shows")
    require_ema_stack: bool = True
    signal_amplification: float = Field(1.10, gt=0, le=5)
    signal_stability_eps: float = Field(0.012, ge=0, le=1)
    weights: dict[str, Weight] = Field(
        default_factory=lambda: {"trend": 0.50, "momentum": 0.25, "meanrev": 0.10, "structure": 0.10,
                                 "volume": 0.05},
        description="trend, momentum, meanrev, structure, volume: each 0-100, relative",
    )
    # Added with the strategy engine (shared/strategy); every key has a default, so older files still load.
    tf_weights: dict[str, Weight] = Field(
        default_factory=lambda: {"M1": 0.50, "M5": 0.30, "M15": 0.20},
        description="how much each timeframe counts in a vote when M5 and M15 are fresh (M1 alone otherwise)",
    )
    confidence_tiers: tuple[tuple[float, float], ...] = Field(
        ((0.25, 0.80), (0.45, 0.88), (0.60, 0.92), (0.75, 0.95)),
        description="rows [strength, cap]: a signal weaker than `strength` shows at most `cap`; "
        "from the last row's strength on, confidence_cap",
    )
    spread_free_atr: float = Field(0.10, ge=0, le=10, description="spread (in M1 ATRs) that costs nothing")
    spread_penalty_per_atr: float = Field(20.0, ge=0, le=1000, description="confidence points per ATR above that")
    spread_penalty_max: float = Field(10.0, ge=0, le=100, description="most confidence points a spread costs")
    tick_gap_penalty: float = Field(4.0, ge=0, le=100, description="points off after missing M1 bars")
    tick_thin_fraction: float = Field(0.25, ge=0, le=1, description="a bar below this x average volume is thin")
    tick_thin_penalty: float = Field(4.0, ge=0, le=100, description="points off for an empty bar (less if thin)")
    tick_stale_penalty: float = Field(8.0, ge=0, le=100, description="points off while the gateway says stale")
    tick_penalty_max: float = Field(10.0, ge=0, le=100, description="most confidence points tick quality costs")
    off_volatility_factor: float = Field(
        0.6, ge=0, le=1, description="strength x this when the M5 ATR/price is outside [atr_rel_lo, atr_rel_hi]"
    )

    @model_validator(mode="after")
    def _engine_keys(self) -> SignalTable:
        unknown = set(self.weights) - {"trend", "momentum", "meanrev", "structure", "volume"}
        if unknown or any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError(f"weights {self.weights}: names trend, momentum, meanrev, structure, volume only, "
                             "each >= 0, summing to more than 0")
        if set(self.tf_weights) != {"M1", "M5", "M15"} or any(w < 0 for w in self.tf_weights.values()) \
                or self.tf_weights["M1"] <= 0:
            raise ValueError(f"tf_weights {self.tf_weights}: give M1 (> 0), M5 and M15 (>= 0)")
        strengths = [row[0] for row in self.confidence_tiers]
        if strengths != sorted(set(strengths)) or any(not 0 < s <= 1 or not 0 < c <= 1
                                                      for s, c in self.confidence_tiers):
            raise ValueError("confidence_tiers rows [strength, cap] need strictly increasing strengths, "
                             "both in (0, 1]")
        if self.confidence_floor > self.confidence_cap:
            raise ValueError("confidence_floor must be <= confidence_cap")
        return self


class IndicatorTable(Table):
    ema_short: int = Field(9, ge=2, le=1000)
    ema_mid: int = Field(21, ge=2, le=1000)
    ema_long: int = Field(50, ge=2, le=1000)
    ema_vlong: int = Field(200, ge=2, le=2000)
    atr_period: int = Field(14, ge=2, le=500)
    rsi_period: int = Field(14, ge=2, le=500)
    adx_period: int = Field(14, ge=2, le=500)
    vol_lookback: int = Field(80, ge=2, le=5000)
    adx_trend_lo: float = Field(16.0, ge=0, le=100)
    adx_trend_hi: float = Field(32.0, ge=0, le=100)
    adx_impulse_hi: float = Field(42.0, ge=0, le=100)
    atr_rel_lo: float = Field(0.0008, ge=0, le=1)
    atr_rel_hi: float = Field(0.01, ge=0, le=1)
    min_body_pct_of_atr: float = Field(0.09, ge=0, le=10)
    min_bars_m1: int = Field(200, ge=1, le=5000)
    min_bars_m5_m15: int = Field(180, ge=1, le=5000)
    min_bar_age_sec: int = Field(1, ge=0, le=3600)
    macd_fast: int = Field(12, ge=1, le=500)
    macd_slow: int = Field(26, ge=2, le=1000)
    macd_signal: int = Field(9, ge=1, le=500)
    bb_period: int = Field(20, ge=2, le=1000)
    bb_nbdev: float = Field(2.0, gt=0, le=10, description="Bollinger band width in standard deviations")

    @model_validator(mode="after")
    def _emas_increase(self) -> IndicatorTable:
        if not self.ema_short < self.ema_mid < self.ema_long < self.ema_vlong:
            raise ValueError("EMA periods must increase: ema_short < ema_mid < ema_long < ema_vlong")
        if self.macd_fast >= self.macd_slow:
            raise ValueError("macd_fast must be < macd_slow")
        return self


class PatternTable(Table):
    z_vol_hot: float = Field(2.2, ge=0, le=20)
    rn_step: float = Field(5.0, gt=0, description="round-number step in price units (gold 5, bitcoin 100)")
    rn_buffer_pct: float = Field(
        0.0012, ge=0, le=0.1,
        description="a PERCENT of price: 0.0012 means 0.0012 % (gold at 3,300: +-0.04 around each 5 USD level)",
    )
    fvg_min_atr_mult: float = Field(0.35, ge=0, le=10)
    sweep_min_atr_mult: float = Field(0.15, ge=0, le=10)
    extreme_lookback: int = Field(120, ge=1, le=5000)
    extreme_atr_mult: float = Field(1.7, ge=0, le=20)
    extreme_near_pct: float = Field(0.12, ge=0, le=1, description="a FRACTION of the lookback's high-low range")
    # Added with the strategy engine (shared/strategy); every key has a default.
    structure_memory_bars: int = Field(5, ge=1, le=500, description="bars a pattern keeps voting, fading")
    sweep_lookback: int = Field(20, ge=1, le=5000)
    ob_impulse_atr_mult: float = Field(1.5, ge=0, le=20)
    ob_max_bars: int = Field(3, ge=1, le=100)
    div_pivot_bars: int = Field(3, ge=1, le=100, description="bars each side of a divergence pivot")
    div_lookback: int = Field(60, ge=1, le=5000)
    rn_strength_factor: float = Field(0.85, ge=0, le=1, description="strength x this near a round number")


class SlTpTable(Table):
    sl_atr_mult_trend: float = Field(1.15, gt=0, le=20)
    tp_atr_mult_trend: float = Field(2.7, gt=0, le=20)
    sl_atr_mult_range: float = Field(1.35, gt=0, le=20)
    tp_atr_mult_range: float = Field(2.0, gt=0, le=20)
    tp_rr_cap: float = Field(2.0, gt=0, le=20)
    min_rr: float = Field(1.05, gt=0, le=20)
    sltp_cost_spread_mult: float = Field(1.8, ge=0, le=20)
    sltp_cost_slip_mult: float = Field(1.0, ge=0, le=20)
    sltp_cost_move_mult: float = Field(0.6, ge=0, le=20)
    sltp_sl_floor_mult: float = Field(1.15, ge=0, le=20)
    sltp_tp_floor_mult: float = Field(1.6, ge=0, le=20)
    broker_padding_points: int = Field(10, ge=0, le=100_000, description="added to stops + freeze level")
    be_trigger_R: float = Field(0.8, ge=0, le=20)  # noqa: N815 (the old config's name)
    be_lock_spread_mult: float = Field(1.25, ge=0, le=20)
    trail_atr_mult: float = Field(1.05, ge=0, le=20)
    trail_on_entry: bool = True


class SizingTable(Table):
    """Balance tiers. ``mode = "linear"``: lot = base_lot + lot_per_step * step and TP = base_tp_usd +
    tp_usd_per_step * step with step = max(0, floor(balance / balance_step) - 1) (the gold rule).
    ``mode = "table"``: the last row of ``tiers`` whose balance <= the account balance."""

    mode: Literal["linear", "table"] = "linear"
    base_lot: float = Field(0.02, gt=0)
    lot_per_step: float = Field(0.01, ge=0)
    base_tp_usd: float = Field(2.0, gt=0)
    tp_usd_per_step: float = Field(1.0, ge=0)
    balance_step: float = Field(100.0, gt=0)
    tiers: tuple[tuple[float, float, float], ...] = Field(
        (), description="rows [min_balance, lot, tp_usd], increasing balance (mode = 'table')"
    )

    @model_validator(mode="after")
    def _tiers_present(self) -> SizingTable:
        if self.mode == "table":
            if not self.tiers:
                raise ValueError("mode 'table' needs at least one [min_balance, lot, tp_usd] row in tiers")
            balances = [row[0] for row in self.tiers]
            if balances != sorted(balances) or any(row[1] <= 0 or row[2] <= 0 for row in self.tiers):
                raise ValueError("tiers rows must increase by balance and have lot > 0 and tp_usd > 0")
        return self


class MultiOrderTable(Table):
    multi_order_confidence_tiers: tuple[float, float, float] = (0.85, 0.90, 0.90)
    multi_order_max_orders: int = Field(3, ge=1, le=3)
    multi_order_tp_bonus_pct: float = Field(0.15, ge=0, le=5)
    multi_order_sl_tighten_pct: float = Field(0.0, ge=0, le=0, description="must stay 0: SL never tightened")
    multi_order_split_lot: bool = True
    multi_order_min_strength: float = Field(0.25, ge=0, le=1, description="extra legs need net_norm >= 0.8x")
    max_spread_bps_for_multi: float = Field(6.0, ge=0)


class LimitsTable(Table):
    max_trades_per_hour: int = Field(20, ge=0, description="0 = unlimited")
    max_signals_per_day: int = Field(0, ge=0, description="0 = unlimited")
    max_signals_per_hour: int = Field(0, ge=0, description="plans in the last hour of market time, 0 = unlimited")
    cooldown_seconds: float = Field(60.0, ge=0, description="market seconds after a fill")
    analysis_cooldown_sec: float = Field(1.0, ge=0)
    overnight_block_hours: float = Field(0.0, ge=0, le=24)


class ExecutionTable(Table):
    deviation_points: int = Field(50, ge=0)
    slippage_limit_ticks: float = Field(12.0, ge=0)
    latency_rtt_ms_limit: int = Field(250, ge=0)
    cooldown_after_latency_s: int = Field(300, ge=0)
    spread_cb_pct: float = Field(0.0008, gt=0, le=0.1, description="spread/price that trips the breaker")
    rtt_cb_ms: int = Field(400, ge=0)
    slippage_backoff: float = Field(0.4, ge=0, le=1)
    exec_window: int = Field(300, ge=1)
    exec_max_p95_latency_ms: float = Field(550.0, gt=0)
    exec_max_p95_slippage_points: float = Field(20.0, ge=0)
    exec_max_spread_points: float = Field(500.0, gt=0)
    exec_max_ewma_slippage_points: float = Field(15.0, ge=0)
    exec_breaker_sec: float = Field(120.0, ge=0)
    max_spread_points: float = Field(0.0, ge=0, description="0 = no fixed cap")
    # Added with the risk service (issue 5): the execution-quality monitor over the last exec_window reports.
    exec_max_reject_rate: float = Field(0.5, ge=0, le=1, description="rejected + unknown legs / reports")
    exec_min_samples: int = Field(10, ge=1, description="reports in the window before the monitor may pause")
    exec_ewma_alpha: float = Field(0.2, gt=0, le=1, description="weight of the newest slippage in the EWMA")


class MarketTable(Table):
    market_min_bar_age_sec: float = Field(120.0, ge=0)
    market_max_bar_age_mult: float = Field(2.0, gt=0)
    market_validate_interval_sec: float = Field(1.0, gt=0)
    tick_stale_threshold_sec: float = Field(15.0, gt=0)


class SymbolConfig(Table):
    """One symbol's file."""

    symbol: SymbolTable
    risk: RiskTable = RiskTable()
    signal: SignalTable = SignalTable()
    indicators: IndicatorTable = IndicatorTable()
    patterns: PatternTable = PatternTable()
    sltp: SlTpTable = SlTpTable()
    sizing: SizingTable = SizingTable()
    multi_order: MultiOrderTable = MultiOrderTable()
    limits: LimitsTable = LimitsTable()
    execution: ExecutionTable = ExecutionTable()
    market: MarketTable = MarketTable()

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> SymbolConfig:
        if self.signal.ultra_confidence_min < self.signal.min_confidence_signal:
            raise ValueError("signal.ultra_confidence_min must be >= signal.min_confidence_signal")
        return self


# Keys of the old config_*.py that are read and validated but change nothing in this version: no code reads
# them. The shipped files mark each one "no effect yet", and main.py (and the backtest) name the ones a file
# spells out at every start, so that no owner believes a per-trade risk cap, a break-even move or a trailing
# stop is at work. tests/unit/shared/test_inert_keys.py keeps this list equal to the keys no code reads. Keys
# that can hold only one value (tf_primary = "M1", multi_order_sl_tighten_pct = 0) cannot mislead; not listed.
INERT_KEYS: dict[str, tuple[str, ...]] = {
    "risk": ("max_drawdown", "enforce_drawdown_limits", "max_risk_per_trade"),
    "signal": ("conf_min", "conf_min_low", "conf_min_high", "strong_conf_min"),
    "indicators": ("adx_impulse_hi", "min_bar_age_sec"),
    "sltp": ("tp_atr_mult_trend", "tp_atr_mult_range", "tp_rr_cap", "min_rr", "sltp_tp_floor_mult", "be_trigger_R",
             "be_lock_spread_mult", "trail_atr_mult", "trail_on_entry"),
    "limits": ("analysis_cooldown_sec", "overnight_block_hours"),
    "execution": ("slippage_limit_ticks", "slippage_backoff"),
    "market": ("market_min_bar_age_sec", "market_max_bar_age_mult", "market_validate_interval_sec",
               "tick_stale_threshold_sec"),
}


def inert_keys_set(config: SymbolConfig) -> list[str]:
    """``table.key`` of each inert key (``INERT_KEYS``) the file spells out; a key left out misleads no one."""
    found = []
    for table, keys in INERT_KEYS.items():
        section: Table = getattr(config, table)
        found += [f"{table}.{key}" for key in keys if key in section.model_fields_set]
    return found
