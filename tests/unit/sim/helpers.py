"""Helpers of the simulator tests: synthetic M1 files, brokers over them, and order requests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from services.gateway_mt5.sim.broker import SimBroker
from services.gateway_mt5.sim.config import SimConfig
from shared import mt5
from shared.clock import FakeClock
from shared.messages import TradeRequest, TradeResult

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data"
XAU_FILE = DATA / "XAUUSDm_M1_2025-07-09_2025-08-12.csv.gz"
BTC_FILE = DATA / "BTCUSDm_M1_2025-07-09_2025-08-12.csv.gz"
T0 = 1_752_573_600  # 2025-07-15 10:00 UTC, a Tuesday: both markets open

Row = tuple[float, float, float, float]


def stamp(t: int) -> str:
    """A bar time in the shipped CSV layout."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def write_csv(path: Path, rows: list[Row], start: int = T0) -> Path:
    """Consecutive M1 bars (open, high, low, close) from ``start``, shipped layout, no volume."""
    lines = ["time_utc,open,high,low,close,volume"]
    lines += [f"{stamp(start + 60 * k)},{o},{h},{lo},{c}," for k, (o, h, lo, c) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def flat(price: float, count: int) -> list[Row]:
    """``count`` bars that do not move."""
    return [(price, price, price, price)] * count


def broker(
    tmp_path: Path,
    xau: list[Row] | None = None,
    btc: list[Row] | None = None,
    *,
    start_bars: int = 1,
    t0: int = T0,
    symbols: dict[str, dict[str, Any]] | None = None,
    **settings: Any,
) -> SimBroker:
    """A connected speed-0 broker over synthetic bars from ``t0``; the first ``start_bars`` are history.

    ``symbols`` adds keys to each symbol's table (merged onto the XAUUSDm / BTCUSDm presets).
    """
    tables: dict[str, dict[str, Any]] = {}
    for name, rows in (("XAUUSDm", xau), ("BTCUSDm", btc)):
        if rows is not None:
            table: dict[str, Any] = {"data": str(write_csv(tmp_path / f"{name}.csv", rows, t0))}
            table.update((symbols or {}).get(name, {}))
            tables[name] = table
    config = SimConfig.model_validate({
        "speed": 0, "start": datetime.fromtimestamp(t0 + 60 * start_bars, UTC), "symbols": tables, **settings,
    })
    sim = SimBroker(config, FakeClock())
    sim.connect()
    return sim


def deal(symbol: str, side: str, volume: float, **fields: Any) -> TradeRequest:
    """A TRADE_ACTION_DEAL request with the symbol's allowed filling (FOK for both presets)."""
    kind = mt5.ORDER_TYPE_BUY if side == "buy" else mt5.ORDER_TYPE_SELL
    return TradeRequest(action=mt5.TRADE_ACTION_DEAL, symbol=symbol, volume=volume, type=kind,
                        type_filling=mt5.ORDER_FILLING_FOK, **fields)


def sltp(symbol: str, position: int, sl: float, tp: float) -> TradeRequest:
    """A TRADE_ACTION_SLTP request."""
    return TradeRequest(action=mt5.TRADE_ACTION_SLTP, symbol=symbol, position=position, sl=sl, tp=tp)


def filled(result: TradeResult | None) -> TradeResult:
    """The result, asserted to be a 10009 fill."""
    assert result is not None
    assert result.retcode == 10009, result
    return result


def cents(value: Decimal) -> float:
    """Reference rounding of money: half away from zero to cents."""
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def expected_profit(side: str, price_open: float, price_close: float, volume: float, contract: float) -> float:
    """(close - open) * volume * contract, signed by side, exactly, to the cent."""
    diff = Decimal(str(price_close)) - Decimal(str(price_open))
    sign = 1 if side == "buy" else -1
    return cents(diff * Decimal(str(volume)) * Decimal(str(contract)) * sign)
