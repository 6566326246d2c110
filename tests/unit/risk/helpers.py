"""Builders for the risk tests: a real config in tmp_path, real specs, messages with sensible defaults."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from services.risk.core import Outgoing, RiskCore
from services.risk.store import RiskStore
from shared.clock import FakeClock
from shared.config import LoadedConfig, load_config, load_toml
from shared.messages import (
    AccountSnapshot,
    DealClosed,
    ExecutionReport,
    GatewayHeartbeat,
    Message,
    OrderPlan,
    PositionData,
    PositionsReply,
    Side,
    Signal,
    SignalRejected,
    SymbolHealth,
    SymbolSpec,
)
from shared.symbol_config import SymbolConfig

REPO = Path(__file__).resolve().parents[3]
T0 = 1_752_080_400  # Wed 2025-07-09 17:00:00 UTC: a bar boundary, gold open
XAU = "XAUUSDm"
BTC = "BTCUSDm"

# MT5-FACTS: gold digits 3, tick 0.001 worth 0.1 USD a lot; bitcoin 1 BTC a lot, digits 2.
XAU_SPEC = SymbolSpec(
    name=XAU, digits=3, point=0.001, trade_tick_size=0.001, trade_tick_value=0.1, trade_contract_size=100.0,
    volume_min=0.01, volume_max=200.0, volume_step=0.01, trade_stops_level=0, trade_freeze_level=0,
    trade_mode=4, filling_mode=3, spread=200,
)
BTC_SPEC = SymbolSpec(
    name=BTC, digits=2, point=0.01, trade_tick_size=0.01, trade_tick_value=0.01, trade_contract_size=1.0,
    volume_min=0.01, volume_max=100.0, volume_step=0.01, trade_stops_level=0, trade_freeze_level=0,
    trade_mode=4, filling_mode=3, spread=1000,
)
SPECS = {XAU: XAU_SPEC, BTC: BTC_SPEC}
PRICES = {XAU: 3300.0, BTC: 110_000.0}


def shipped_symbol_config(symbol: str) -> SymbolConfig:
    """The symbol's config file as shipped in configs/ (for pure functions that need no paths)."""
    return load_toml(REPO / "configs" / ("xau.toml" if symbol == XAU else "btc.toml"), SymbolConfig)


SHIPPED = load_config(REPO / "configs" / "system.toml")
"""The shipped configuration, for cores given their own SQLite path (its paths are never used then)."""


def write_system_toml(root: Path, risk: str = "") -> Path:
    """configs/system.toml under ``root`` with every path in ``root``, plus the shipped symbol files."""
    configs = root / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    for name in ("xau.toml", "btc.toml"):
        shutil.copy(REPO / "configs" / name, configs / name)
    path = configs / "system.toml"
    path.write_text(
        f'[paths]\nlogs_dir = "{root}/Logs"\nrun_dir = "{root}/run"\nstate_dir = "{root}/state"\n'
        f'data_dir = "{root}/data"\n\n[risk]\n{risk}\n'
    )
    return path


def with_table(config: LoadedConfig, symbol: str, table: str, **values: Any) -> LoadedConfig:
    """``config`` with ``[table]`` of one symbol changed (as if its TOML file said so)."""
    old: SymbolConfig = config.symbols[symbol]
    new_table = getattr(old, table).model_copy(update=values)
    symbols = {**config.symbols, symbol: old.model_copy(update={table: new_table})}
    return config.model_copy(update={"symbols": symbols})


def db_path(config: LoadedConfig) -> Path:
    return config.system.paths.state_dir / "risk.sqlite"


def new_core(config: LoadedConfig, clock: FakeClock, path: Path | None = None) -> RiskCore:
    """A core on the config's SQLite file or ``path`` (a second call is a restart on the same file). The
    tests of the logic skip the fsync per commit; the process tests (test_runner) run durable."""
    return RiskCore(config, RiskStore(path or db_path(config), sync="off"), clock)


def heartbeat(
    ts: float, *, ok: bool = True, market_open: bool = True, reason: str = "ok", connected: bool = True
) -> GatewayHeartbeat:
    health = SymbolHealth(ok=ok, reason=reason, market_open=market_open)
    return GatewayHeartbeat(ts=ts, backend="sim", connected=connected, symbols={XAU: health, BTC: health})


def account(ts: float, balance: float = 4000.0, equity: float | None = None) -> AccountSnapshot:
    equity = balance if equity is None else equity
    return AccountSnapshot(ts=ts, leverage=200, balance=balance, equity=equity, margin=0.0,
                           margin_free=equity, profit=equity - balance)


def signal(
    symbol: str = XAU,
    *, bar_time: int = T0 - 60, side: Side = "buy", confidence: float = 0.82,
    strength: float = 0.5, ts: float | None = None, atr: float | None = None, spread_points: int = 200,
) -> Signal:
    return Signal(
        ts=bar_time + 60 if ts is None else ts, symbol=symbol, side=side,
        net_norm=strength if side == "buy" else -strength, confidence=confidence, bar_time=bar_time,
        price=PRICES[symbol], atr=atr if atr is not None else PRICES[symbol] * 0.0003,
        spread_points=spread_points, timeframes=("M1", "M5", "M15"), reasons=("ema stack",),
    )


def ready(core: RiskCore, ts: float = T0, balance: float = 4000.0) -> RiskCore:
    """Feed what every order needs: both specs, a healthy heartbeat, an account, the (empty) position list."""
    for spec in SPECS.values():
        core.set_symbol_spec(spec)
    core.handle(heartbeat(ts))
    core.handle(account(ts, balance))
    core.handle(PositionsReply(ts=ts, parent="poll", positions=()))
    return core


def position(ticket: int, symbol: str = XAU, *, profit: float = 0.0, magic: int = 777001,
             ts: float = T0) -> PositionData:
    """An open position as the gateway lists it (ours by default)."""
    return PositionData(ticket=ticket, symbol=symbol, side="buy", volume=0.1, price_open=PRICES[symbol], sl=0.0,
                        tp=0.0, price_current=PRICES[symbol], profit=profit, magic=magic, time=ts)


def set_pnl(core: RiskCore, ts: float, ours: float, *, balance: float = 4000.0, external: float = 0.0,
            realised: float = 0.0) -> list[Outgoing]:
    """Market time ``ts`` with our floating P&L at ``ours`` - ``realised`` (one open position of ours) and an
    external position floating at ``external``; the account's equity shows both. All outgoing messages."""
    out = core.handle(heartbeat(ts))
    listed = [position(900, profit=ours - realised, ts=ts)]
    if external:
        listed.append(position(901, profit=external, magic=42, ts=ts))
    out += core.handle(PositionsReply(ts=ts, parent="poll", positions=tuple(listed)))
    out += core.handle(account(ts, balance, balance + ours - realised + external))
    return out


def plans(out: list[Outgoing]) -> list[OrderPlan]:
    return [o.message for o in out if o.channel == "executor" and isinstance(o.message, OrderPlan)]


def rejections(out: list[Outgoing]) -> list[SignalRejected]:
    return [o.message for o in out if isinstance(o.message, SignalRejected)]


def published(out: list[Outgoing], kind: type[Message]) -> list[Message]:
    return [o.message for o in out if o.channel == "publish" and isinstance(o.message, kind)]


def only_plan(out: list[Outgoing]) -> OrderPlan:
    found = plans(out)
    assert len(found) == 1, f"expected one plan, got {out}"
    return found[0]


def refused_by(out: list[Outgoing]) -> str:
    found = rejections(out)
    assert len(found) == 1 and not plans(out), f"expected one refusal, got {out}"
    return found[0].rule


def fill_report(plan: OrderPlan, leg: int = 0, ticket: int = 5000, status: str = "filled") -> ExecutionReport:
    """The executor's report for one leg of ``plan``."""
    chosen = plan.legs[leg]
    return ExecutionReport(
        ts=plan.ts, plan_id=plan.plan_id, leg_id=chosen.leg_id, symbol=plan.symbol, side=plan.side,
        status=status, retcode=10009, ticket=ticket, volume=chosen.volume, requested_price=plan.price,
        fill_price=plan.price, sl=chosen.sl, tp=chosen.tp, latency_ms=12.0, confidence=plan.confidence,
        regime=plan.regime, reasons=plan.reasons,
    )


def closing_deal(ts: float, symbol: str, position_id: int, magic: int = 777001, *, profit: float = 1.0,
                 ticket: int | None = None) -> DealClosed:
    """An exit deal (entry out, reason TP) of one of our positions."""
    return DealClosed(ts=ts, ticket=position_id + 1 if ticket is None else ticket, order=position_id + 2,
                      position_id=position_id, symbol=symbol, side="sell", entry=1, reason=5, volume=0.01,
                      price=PRICES[symbol], profit=profit, magic=magic, time=ts)


def exec_report(symbol: str, n: int, *, status: str = "filled", latency_ms: float = 12.0,
                slippage_points: float = 0.0, ts: float = T0) -> ExecutionReport:
    """The report of leg ``n`` of some earlier plan (for the execution-quality monitor)."""
    filled = status == "filled"
    return ExecutionReport(
        ts=ts, plan_id=f"P{n}", leg_id=f"P{n}-1", symbol=symbol, side="buy", status=status,
        retcode=10009 if filled else 10006, ticket=7000 + n if filled else None, volume=0.01,
        requested_price=PRICES[symbol], fill_price=PRICES[symbol] if filled else None, sl=PRICES[symbol] - 5,
        tp=PRICES[symbol] + 5, latency_ms=latency_ms, slippage_points=slippage_points, confidence=0.9,
        regime="A",
    )
