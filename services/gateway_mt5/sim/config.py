"""Configuration of the simulated broker: the ``[sim]`` table of configs/system.toml.

Every model is frozen and refuses unknown keys, so a typo in the TOML is an error naming the key.
The two shipped symbols have presets (Exness-like specs, spreads and market hours): a TOML table
``[sim.symbols.XAUUSDm]`` only needs the keys that differ from the preset. Any other symbol must give
its data file, spec and hours in full.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, model_validator

from services.gateway_mt5.hours import MarketHours

XAU_DATA = Path("XAUUSDm_M1_2025-07-09_2025-08-12.csv.gz")
BTC_DATA = Path("BTCUSDm_M1_2025-07-09_2025-08-12.csv.gz")
"""Shipped files; a relative ``data`` path is taken from the data directory (paths.data_dir)."""


class Frozen(BaseModel):
    """Base of the sim's config models: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def epoch(value: datetime) -> float:
    """Epoch seconds of a config datetime; a naive datetime is read as UTC (the broker's server time)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


class SpreadConfig(Frozen):
    """How the ask is made from the bid: ask = bid + spread * point, one spread per M1 bar.

    ``fixed``: always ``points``. ``random``: a uniform integer in [min_points, max_points] per bar,
    drawn from ``seed`` (same seed, same spreads). ``data``: the <SPREAD> column of an MT5 export.
    """

    mode: Literal["fixed", "random", "data"] = "fixed"
    points: int = Field(default=200, ge=0)
    min_points: int = Field(default=0, ge=0)
    max_points: int = Field(default=0, ge=0)
    seed: int = Field(default=0, ge=0, description="any non-negative integer: the same seed, the same draws")

    @model_validator(mode="after")
    def _range_valid(self) -> Self:
        if self.mode == "random" and not 0 <= self.min_points <= self.max_points:
            raise ValueError(
                f"spread mode 'random' needs min_points <= max_points, got {self.min_points} > "
                f"{self.max_points}: set both, e.g. min_points = 160, max_points = 400"
            )
        return self


class SpecConfig(Frozen):
    """symbol_info() fields (MT5-FACTS). Defaults are Exness XAUUSDm; prices are quoted in USD."""

    digits: int = Field(default=3, ge=0, le=10)
    point: PositiveFloat = 0.001
    trade_tick_size: PositiveFloat = 0.001
    trade_tick_value: PositiveFloat = 0.1
    trade_contract_size: PositiveFloat = 100.0
    volume_min: PositiveFloat = 0.01
    volume_max: PositiveFloat = 200.0
    volume_step: PositiveFloat = 0.01
    trade_stops_level: int = Field(default=0, ge=0)
    trade_freeze_level: int = Field(default=0, ge=0)
    trade_mode: int = Field(default=4, ge=0, le=4)
    filling_mode: int = Field(default=3, ge=0, le=7)
    margin_rate: PositiveFloat = Field(default=1.0, description="MT5 initial margin rate (multiplier)")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if abs(round(self.point, self.digits) - self.point) > 1e-12:
            raise ValueError(f"point {self.point} does not fit digits {self.digits}: point = 10**-digits")
        ticks = self.trade_tick_size / self.point
        if abs(ticks - round(ticks)) > 1e-9 or round(ticks) < 1:
            raise ValueError(
                f"trade_tick_size {self.trade_tick_size} must be a multiple of point {self.point}"
            )
        expected = self.trade_tick_size * self.trade_contract_size
        if abs(self.trade_tick_value - expected) > 1e-9 * max(1.0, expected):
            raise ValueError(
                f"trade_tick_value {self.trade_tick_value} != trade_tick_size * trade_contract_size = "
                f"{expected:g}: the sim only knows USD-quoted symbols in a USD account; fix one of the three"
            )
        if not self.volume_min <= self.volume_max:
            raise ValueError(f"volume_min {self.volume_min} > volume_max {self.volume_max}")
        return self


class SymbolConfig(Frozen):
    """One replayed symbol: its M1 history, costs, spec and hours."""

    data: Path = Field(description="M1 history file; relative = inside the data directory")
    format: Literal["auto", "csv", "mt5"] = "auto"
    spread: SpreadConfig = SpreadConfig()
    sl_slippage_points: int = Field(default=0, ge=0, description="how much worse than the SL an SL fills")
    tp_slippage_points: int = Field(default=0, ge=0, description="how much worse than the TP a TP fills")
    commission_per_lot: NonNegativeFloat = Field(default=0.0, description="USD per lot, charged on each deal")
    swap_long_per_lot: float = Field(default=0.0, description="USD per lot per night, + credit, - debit")
    swap_short_per_lot: float = 0.0
    swap_triple_weekday: int = Field(default=2, ge=0, le=6, description="0 = Monday; that night counts 3x")
    spec: SpecConfig = SpecConfig()
    hours: MarketHours = MarketHours()


class Window(Frozen):
    """A market-time interval [start, end) in UTC."""

    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if epoch(self.end) <= epoch(self.start):
            raise ValueError(f"window end {self.end} must be after start {self.start}")
        return self


class StaleWindow(Window):
    """A window in which a symbol's feed freezes (no bars, no ticks) while the market runs on."""

    symbol: str | None = Field(default=None, description="None: every symbol")


class FaultConfig(Frozen):
    """Seeded, repeatable faults; all off by default.

    The probabilities are per order_send that passes validation, drawn from one RNG seeded by
    ``seed``: the same requests in the same order meet the same faults. Their sum must be <= 1.
    """

    seed: int = Field(default=0, ge=0, description="any non-negative integer: the same seed, the same draws")
    requote: float = Field(default=0.0, ge=0.0, le=1.0)
    price_changed: float = Field(default=0.0, ge=0.0, le=1.0)
    price_off: float = Field(default=0.0, ge=0.0, le=1.0)
    timeout: float = Field(default=0.0, ge=0.0, le=1.0)
    none_filled: float = Field(default=0.0, ge=0.0, le=1.0)
    none_not_filled: float = Field(default=0.0, ge=0.0, le=1.0)
    requote_shift_points: int = Field(default=50, ge=1, description="max adverse move behind a requote")
    disconnects: tuple[Window, ...] = ()
    stale: tuple[StaleWindow, ...] = ()

    @model_validator(mode="after")
    def _probabilities_sum(self) -> Self:
        total = (
            self.requote + self.price_changed + self.price_off + self.timeout
            + self.none_filled + self.none_not_filled
        )
        if total > 1.0 + 1e-12:
            raise ValueError(f"fault probabilities sum to {total:g} > 1: lower some of them")
        return self


def _xau_preset() -> dict[str, Any]:
    return {"data": XAU_DATA, "spread": {"mode": "fixed", "points": 200}, "spec": {}, "hours": {}}


def _btc_preset() -> dict[str, Any]:
    return {
        "data": BTC_DATA,
        "spread": {"mode": "fixed", "points": 1000},
        "spec": {
            "digits": 2, "point": 0.01, "trade_tick_size": 0.01, "trade_tick_value": 0.01,
            "trade_contract_size": 1.0, "volume_min": 0.01, "volume_max": 100.0, "volume_step": 0.01,
        },
        "hours": {"always_open": True},
    }


PRESETS: dict[str, Any] = {"XAUUSDm": _xau_preset, "BTCUSDm": _btc_preset}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class SimConfig(Frozen):
    """The simulated broker: replay pacing, account, symbols and faults."""

    speed: NonNegativeFloat = Field(default=1.0, description="1 = real time, 0 = as fast as possible")
    start: datetime | None = Field(default=None, description="market time to start at (UTC)")
    warmup_minutes: int = Field(default=1440, ge=0, description="with no start: first bar + this")
    initial_balance: PositiveFloat = 1000.0
    leverage: int = Field(default=200, ge=1)
    currency: Literal["USD"] = "USD"
    login: int = Field(default=0, ge=0)
    stop_out_level_pct: NonNegativeFloat = Field(
        default=0.0, description="close the worst position when margin level <= this (Exness: 0 %)"
    )
    max_bars_per_poll: int = Field(default=1000, ge=1, description="speed 0: M1 bars replayed per poll")
    symbols: dict[str, SymbolConfig] = Field(
        default_factory=lambda: {name: SymbolConfig.model_validate(make()) for name, make in PRESETS.items()}
    )
    faults: FaultConfig = FaultConfig()

    @model_validator(mode="before")
    @classmethod
    def _apply_presets(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("symbols"), dict):
            return data
        symbols = {}
        for name, table in data["symbols"].items():
            preset = isinstance(table, dict) and name in PRESETS
            symbols[name] = _merge(PRESETS[name](), table) if preset else table
        return {**data, "symbols": symbols}

    @model_validator(mode="after")
    def _symbols_known(self) -> Self:
        if not self.symbols:
            raise ValueError("sim.symbols is empty: configure at least one symbol")
        known = set(self.symbols)
        for window in self.faults.stale:
            if window.symbol is not None and window.symbol not in known:
                raise ValueError(
                    f"faults.stale names symbol {window.symbol!r}, not in sim.symbols {sorted(known)}"
                )
        return self

