"""What a backtest runs on: the symbols' configs, their M1 files, the replay window and the sim's settings.

Everything is checked before any core is built, and every problem is one ``InputError`` line naming
the file (and, for history, the line and the problem: the sim's own loader ``load_m1`` reads the files,
so a backtest refuses exactly what the live sim would refuse: NaN or unreadable fields, unsorted or
duplicate bars, OHLC that do not hold together).

A gap (minutes missing while the configured market hours say the market was open) is not an error: the
sim replays the bars there are, as a live feed skips a minute nobody traded, and the gap is counted
for the report. The window is (start, end]: bars CLOSING after ``start`` and at or before ``end`` are
replayed, so ``--from 2024-01-01 --to 2024-02-01`` is the bars opening in January; bars closed by
``start`` are history, the strategies' warm-up. Without ``--from`` the start is the live replay's
(``[sim] start`` of system.toml) when it falls inside the data, else the sim's default (the first bar
plus ``sim.warmup_minutes``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from services.gateway_mt5.hours import MarketSchedule
from services.gateway_mt5.sim.config import FaultConfig, SimConfig, epoch
from services.gateway_mt5.sim.history import HistoryError, M1History, load_m1
from shared.config import ConfigError, LoadedConfig, format_validation_error, load_config

FAULT_KEYS = tuple(name for name in FaultConfig.model_fields if name not in ("disconnects", "stale"))
SLIPPAGE_KEYS = {"slippage": ("sl_slippage_points", "tp_slippage_points"),
                 "sl_slippage": ("sl_slippage_points",), "tp_slippage": ("tp_slippage_points",)}
FAULTS_HELP = (
    "pessimistic fills (the sim's seeded fault injection). Either KEY=VALUE,... with KEY among requote, "
    "price_changed, price_off, timeout, none_filled, none_not_filled (probability per order_send, summing "
    "to <= 1), requote_shift_points (largest adverse move behind a requote), seed (of the faults' RNG), "
    "slippage / sl_slippage / tp_slippage (points by which SL / TP fills are worse, every symbol), e.g. "
    "requote=0.05,timeout=0.01,slippage=20; or a TOML file with any keys of the [sim] table of system.toml, "
    "e.g. [faults] requote = 0.05, disconnects = [{start = 2025-07-15T10:00:00, end = 2025-07-15T10:05:00}] "
    "and [symbols.XAUUSDm] sl_slippage_points = 30"
)


class InputError(ValueError):
    """Something a backtest cannot run on, said in one line (file, line, problem where there is one)."""


@dataclass(frozen=True, slots=True)
class Gaps:
    """Runs of minutes missing from a symbol's file while its market was open, inside the window."""

    runs: int
    minutes: int


@dataclass(frozen=True)
class BacktestSetup:
    """The validated inputs of one run."""

    config: LoadedConfig  # only the symbols backtested
    sim: SimConfig
    start: float
    end: float
    histories: dict[str, M1History]
    gaps: dict[str, Gaps]
    m1_bars: int  # bars replayed (every symbol)
    fault_text: str  # how the fills were made worse, for the report ('none' by default)


def parse_when(text: str) -> datetime:
    """'2024-01-01' or '2024-01-01T12:30' (UTC)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def data_file(symbol: str, data_dir: Path, preset: Path | None) -> Path:
    """The symbol's file in ``data_dir``: the sim's configured name if present, else the one file named SYMBOL*."""
    data_dir = data_dir.resolve()  # the sim reads a relative path from its own data directory
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: not a directory (--data takes the folder holding the M1 files)")
    if preset is not None and (data_dir / preset).is_file():
        return data_dir / preset
    found = sorted(p for p in data_dir.iterdir() if p.is_file() and p.name.startswith(symbol))
    if len(found) != 1:
        what = "no file" if not found else f"{len(found)} files ({', '.join(p.name for p in found)})"
        raise InputError(f"{data_dir}: {what} named {symbol}*: put exactly one M1 file per symbol there "
                         "(the shipped CSV layout or an MT5 export)")
    return found[0]


def fault_overrides(spec: str, symbols: list[str]) -> dict[str, Any]:
    """The [sim] keys a --faults value sets (see FAULTS_HELP)."""
    if not spec:
        return {}
    path = Path(spec)
    if path.suffix == ".toml" or path.is_file():
        try:
            with path.open("rb") as handle:
                return tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InputError(f"{path}: cannot read the faults file: {exc}") from None
    faults: dict[str, Any] = {}
    per_symbol: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or number is None:
            raise InputError(f"--faults {item!r}: expected KEY=NUMBER, e.g. requote=0.05 or slippage=20")
        if key in SLIPPAGE_KEYS:
            for name in SLIPPAGE_KEYS[key]:
                per_symbol[name] = int(number)
        elif key in FAULT_KEYS:
            faults[key] = int(number) if key in ("seed", "requote_shift_points") else number
        else:
            allowed = ", ".join((*FAULT_KEYS, *SLIPPAGE_KEYS))
            raise InputError(f"--faults: unknown key {key!r}; allowed: {allowed}")
    out: dict[str, Any] = {"faults": faults} if faults else {}
    if per_symbol:
        out["symbols"] = {symbol: dict(per_symbol) for symbol in symbols}
    return out


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def count_gaps(times: np.ndarray, schedule: MarketSchedule, start: float, end: float) -> Gaps:
    """Runs of whole minutes inside (start, end] with no bar although the schedule says the market was open."""
    closes = times + 60
    inside = times[(closes > start) & (closes <= end)]
    runs = minutes = 0
    for before, after in zip(inside[:-1].tolist(), inside[1:].tolist(), strict=True):
        if after - before <= 60:
            continue
        missing = sum(1 for t in range(before + 60, after, 60) if schedule.is_open(t))
        if missing:
            runs += 1
            minutes += missing
    return Gaps(runs, minutes)


def build_setup(
    config_path: Path, symbols: list[str], data_dir: Path, *, start: datetime | None = None,
    end: datetime | None = None, balance: float = 1000.0, faults: str = "",
) -> BacktestSetup:
    """Load and check everything a run needs; InputError (or ConfigError / HistoryError) on any problem."""
    config = load_config(config_path)
    unknown = [s for s in symbols if s not in config.symbols]
    if unknown or not symbols:
        raise InputError(f"--symbols {','.join(symbols) or '(none)'}: {config.path} configures "
                         f"{', '.join(config.symbols)}; choose among them")
    raw = _merge(dict(config.system.sim), fault_overrides(faults, symbols))
    base_symbols = raw.get("symbols", {})
    presets = SimConfig().symbols
    tables: dict[str, Any] = {}
    for symbol in symbols:
        table = dict(base_symbols.get(symbol, {}))
        preset = Path(table["data"]) if "data" in table else presets[symbol].data if symbol in presets else None
        table["data"] = data_file(symbol, data_dir, preset)
        tables[symbol] = table
    raw.update(speed=0.0, max_bars_per_poll=1, initial_balance=balance, symbols=tables)
    configured = raw.pop("start", None)
    try:
        sim = SimConfig.model_validate(raw)
    except ValidationError as exc:
        raise InputError(format_validation_error(Path(faults or config.path), SimConfig, exc)) from None
    histories = {symbol: load_m1(sim.symbols[symbol].data, sim.symbols[symbol].format) for symbol in symbols}
    first = min(int(h.time[0]) for h in histories.values())
    last_close = max(int(h.time[-1]) + 60 for h in histories.values())
    if start is not None:
        begin = start.timestamp()
    elif isinstance(configured, datetime) and first < epoch(configured) < last_close:
        begin = epoch(configured)  # the live replay's start, [sim] start of system.toml
    else:
        begin = float(first + sim.warmup_minutes * 60)
    finish = min(end.timestamp(), float(last_close)) if end else float(last_close)
    closes = [h.time[(h.time + 60 > begin) & (h.time + 60 <= finish)] + 60 for h in histories.values()]
    m1_bars = sum(len(c) for c in closes)
    if m1_bars == 0:
        span = f"{_iso(first)} to {_iso(last_close)}"
        raise InputError(f"no bar closes between {_iso(begin)} and {_iso(finish)}: the data covers {span}")
    finish = float(max(int(c[-1]) for c in closes if len(c)))  # the last step: no bar past it is replayed
    sim = sim.model_copy(update={"start": datetime.fromtimestamp(begin, UTC)})
    gaps = {symbol: count_gaps(h.time, MarketSchedule(sim.symbols[symbol].hours), begin, finish)
            for symbol, h in histories.items()}
    system = config.system.model_copy(update={"symbols": {s: config.system.symbols[s] for s in symbols}})
    restricted = LoadedConfig(path=config.path, system=system, symbols={s: config.symbols[s] for s in symbols})
    return BacktestSetup(restricted, sim, begin, finish, histories, gaps, m1_bars, _describe_faults(sim, symbols))


def _describe_faults(sim: SimConfig, symbols: list[str]) -> str:
    parts = [f"{name} {getattr(sim.faults, name):g}" for name in FAULT_KEYS
             if name not in ("seed", "requote_shift_points") and getattr(sim.faults, name)]
    for symbol in symbols:
        table = sim.symbols[symbol]
        if table.sl_slippage_points or table.tp_slippage_points:
            parts.append(f"{symbol} SL/TP slippage {table.sl_slippage_points}/{table.tp_slippage_points} points")
    windows = len(sim.faults.disconnects) + len(sim.faults.stale)
    if windows:
        parts.append(f"{windows} disconnect/stale window(s)")
    return f"{', '.join(parts)} (seed {sim.faults.seed})" if parts else "none"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


__all__ = ["BacktestSetup", "ConfigError", "Gaps", "HistoryError", "InputError", "build_setup", "parse_when"]
