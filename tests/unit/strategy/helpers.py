"""Builders for the strategy tests: the shipped config, hand-built bars and the shipped history as the
gateway publishes it (M1 bars, then the M5/M15 bars closing with them, built by the gateway's own
aggregation)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from services.gateway_mt5.aggregate import aggregate_bars
from services.strategy_btc.core import BtcStrategy
from services.strategy_xau.core import XauStrategy
from shared.config import load_config
from shared.messages import (
    TIMEFRAME_MINUTES,
    Bar,
    GatewayHeartbeat,
    Regime,
    RiskState,
    Signal,
    SymbolHealth,
    SymbolRiskState,
    SymbolSpec,
    Timeframe,
)
from shared.strategy.core import StrategyCore

REPO = Path(__file__).resolve().parents[3]
CONFIG = load_config(REPO / "configs" / "system.toml")
XAU, BTC = "XAUUSDm", "BTCUSDm"
T0 = 1_752_163_200  # 2025-07-10 16:00 UTC, a Thursday: gold open
DATA = {
    XAU: REPO / "data" / "XAUUSDm_M1_2025-07-09_2025-08-12.csv.gz",
    BTC: REPO / "data" / "BTCUSDm_M1_2025-07-09_2025-08-12.csv.gz",
}
SIM_SPREAD = {XAU: 200, BTC: 1000}  # points: the simulator's default spreads
SPECS = {  # MT5-FACTS, as the simulator presets have them
    XAU: SymbolSpec(name=XAU, digits=3, point=0.001, trade_tick_size=0.001, trade_tick_value=0.1,
                    trade_contract_size=100.0, volume_min=0.01, volume_max=200.0, volume_step=0.01,
                    trade_stops_level=0, trade_freeze_level=0, trade_mode=4, filling_mode=3, spread=200),
    BTC: SymbolSpec(name=BTC, digits=2, point=0.01, trade_tick_size=0.01, trade_tick_value=0.01,
                    trade_contract_size=1.0, volume_min=0.01, volume_max=100.0, volume_step=0.01,
                    trade_stops_level=0, trade_freeze_level=0, trade_mode=4, filling_mode=3, spread=1000),
}


def strategy(symbol: str) -> StrategyCore:
    """The symbol's strategy service core on the shipped config."""
    return (XauStrategy if symbol == XAU else BtcStrategy)(CONFIG.symbols[symbol])


def bar(symbol: str, minute: int, close: float, *, timeframe: Timeframe = "M1", open_: float | None = None,
        spread: int = 200, volume: int = 0, span: float = 0.1) -> Bar:
    """A closed bar ``minute`` timeframe-bars after T0 (open defaults to close - 0.05)."""
    seconds = TIMEFRAME_MINUTES[timeframe] * 60
    time = T0 + minute * seconds
    opened = close - 0.05 if open_ is None else open_
    return Bar(ts=time + seconds, symbol=symbol, timeframe=timeframe, time=time, open=opened,
               high=max(opened, close) + span, low=min(opened, close) - span, close=close, tick_volume=volume,
               spread=spread)


def wave(n: int, drift: float, start: float) -> float:
    """A trending price with a small zigzag, so RSI and the bands stay meaningful."""
    return start + drift * n + (0.3 if n % 3 == 0 else -0.2 if n % 3 == 1 else 0.0) * abs(drift) * 4


def feed(core: StrategyCore, bars: Iterable[Bar]) -> list[Signal]:
    signals: list[Signal] = []
    for one in bars:
        signals += core.handle(one)
    return signals


def trend_bars(symbol: str, minutes: range, drift: float, start: float, timeframe: Timeframe = "M1") -> list[Bar]:
    return [bar(symbol, n, wave(n, drift, start), timeframe=timeframe, open_=wave(n, drift, start) - drift,
                span=abs(drift)) for n in minutes]


def risk_state(symbol: str, regime: Regime, open_positions: int = 0) -> RiskState:
    state = SymbolRiskState(regime=regime, data_ok=True, data_reason="ok", open_positions=open_positions)
    return RiskState(ts=0, trading_enabled=True, day_start_balance=1000, day_return=0, symbols={symbol: state})


def heartbeat(symbol: str, ts: float, *, market_open: bool = True, ok: bool = True,
              reason: str = "ok") -> GatewayHeartbeat:
    health = SymbolHealth(ok=ok, reason=reason, market_open=market_open)
    return GatewayHeartbeat(ts=ts, backend="sim", connected=True, symbols={symbol: health})


@cache
def shipped_m1(symbol: str) -> tuple[Bar, ...]:
    """The shipped M1 history as the gateway's Bar messages (gold has no volume: tick_volume 0)."""
    frame = pd.read_csv(DATA[symbol], dtype={"volume": np.float64})
    times = (pd.to_datetime(frame["time_utc"]) - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    volume = np.floor(np.nan_to_num(frame["volume"].to_numpy(), nan=0.0) + 0.5).astype(np.int64)
    columns = (times.tolist(), frame["open"].tolist(), frame["high"].tolist(), frame["low"].tolist(),
               frame["close"].tolist(), volume.tolist())
    return tuple(
        Bar(ts=float(t + 60), symbol=symbol, timeframe="M1", time=int(t), open=o, high=h, low=lo, close=c,
            tick_volume=int(v), spread=SIM_SPREAD[symbol])
        for t, o, h, lo, c, v in zip(*columns, strict=True)
    )


@cache
def shipped_stream(symbol: str) -> tuple[Bar, ...]:
    """M1, M5 and M15 bars in the order the gateway publishes them (close time, M1 first)."""
    m1 = list(shipped_m1(symbol))
    bars = m1 + aggregate_bars(m1, "M5") + aggregate_bars(m1, "M15")
    return tuple(sorted(bars, key=lambda b: (b.close_time, TIMEFRAME_MINUTES[b.timeframe])))
