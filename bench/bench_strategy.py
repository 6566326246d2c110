"""Cost of one strategy analysis step per closed M1 bar, against a naive bot's window recompute.

Run: ``.venv/bin/python bench/bench_strategy.py`` (about 40 s; prints a table). ``--cpu N`` pins the
process to one core; ``--pandas-samples`` sets how many bars the slow pandas case samples per symbol.

On the shipped gold and bitcoin M1 history (M5/M15 built by the gateway's own aggregation, spreads as
the simulator's defaults) it times, bar by bar (p50 / p99 / mean, microseconds):

a) the full step of ``XauStrategy`` / ``BtcStrategy``: ``handle`` of the closed M1 bar and of the M5
   and M15 bars that close with it (all classic indicators of the three timeframes, the five structure
   detectors, the scoring, the filters and, on the bars that give one, the Signal with its reasons
   and confidence); also split into bars with and without a signal;
b) what a naive live bot does instead: recompute the same classic indicators (EMA x4, ATR, RSI, ADX
   +DI -DI, MACD, Bollinger, Z-volume) with TA-Lib over the last 500 bars, on M1 alone and on M1, M5
   and M15;
c) the same with pandas ewm/rolling (sampled bars: it is slow).
Each timing includes one perf_counter_ns pair (its cost is printed as "timer overhead").
"""

from __future__ import annotations

import argparse
import gc
import gzip
import os
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import talib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# After the path set-up, so the script runs from anywhere.
from timing import timed  # noqa: E402  (bench/timing.py, beside this script)

from services.gateway_mt5.aggregate import aggregate_bars  # noqa: E402
from services.strategy_btc.core import BtcStrategy  # noqa: E402
from services.strategy_xau.core import XauStrategy  # noqa: E402
from shared.config import load_config  # noqa: E402
from shared.messages import Bar  # noqa: E402
from shared.strategy.core import StrategyCore  # noqa: E402

FILES = {
    "XAUUSDm": ROOT / "data" / "XAUUSDm_M1_2025-07-09_2025-08-12.csv.gz",
    "BTCUSDm": ROOT / "data" / "BTCUSDm_M1_2025-07-09_2025-08-12.csv.gz",
}
STRATEGIES: dict[str, type[StrategyCore]] = {"XAUUSDm": XauStrategy, "BTCUSDm": BtcStrategy}
SIM_SPREAD = {"XAUUSDm": (200, 0.001), "BTCUSDm": (1000, 0.01)}  # (points, point): the simulator's defaults
WINDOW = 500
FloatArray = npt.NDArray[np.float64]
Columns = dict[str, FloatArray]


def load(symbol: str) -> tuple[list[Bar], dict[str, Columns], list[list[Bar]]]:
    """M1 Bar messages, the columns of M1/M5/M15, and per M1 bar the bars a live strategy receives
    when it closes (the M1 bar, then the M5 and M15 bars closing at the same time)."""
    with gzip.open(FILES[symbol], "rt") as handle:
        frame = pd.read_csv(handle, dtype={"volume": np.float64})
    times = (pd.to_datetime(frame["time_utc"]) - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    volume = np.floor(np.nan_to_num(frame["volume"].to_numpy(), nan=0.0) + 0.5).astype(np.int64)
    spread = SIM_SPREAD[symbol][0]
    m1 = [
        Bar(ts=float(t + 60), symbol=symbol, timeframe="M1", time=int(t), open=o, high=h, low=lo, close=c,
            tick_volume=int(v), spread=spread)
        for t, o, h, lo, c, v in zip(times.tolist(), frame["open"].tolist(), frame["high"].tolist(),
                                     frame["low"].tolist(), frame["close"].tolist(), volume.tolist(), strict=True)
    ]
    by_tf = {"M1": m1, "M5": aggregate_bars(m1, "M5"), "M15": aggregate_bars(m1, "M15")}
    closing: dict[int, list[Bar]] = {}
    for tf in ("M5", "M15"):
        for bar in by_tf[tf]:
            closing.setdefault(bar.close_time, []).append(bar)
    steps = [[bar, *closing.get(bar.close_time, [])] for bar in m1]
    columns = {
        tf: {name: np.array([getattr(b, name) for b in bars], dtype=np.float64)
             for name in ("open", "high", "low", "close", "tick_volume")}
        for tf, bars in by_tf.items()
    }
    for tf, bars in by_tf.items():
        columns[tf]["close_time"] = np.array([b.close_time for b in bars], dtype=np.float64)
    return m1, columns, steps



def strategy_steps(symbol: str, steps: list[list[Bar]], first: int) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """(a) The full step per closed M1 bar from bar ``first`` on (earlier bars warm the core up)."""
    config = load_config(ROOT / "configs" / "system.toml").symbols[symbol]
    core = STRATEGIES[symbol](config)
    core.point = SIM_SPREAD[symbol][1]
    core.warm_up([bar for group in steps[:first] for bar in group])
    # The whole history is in memory here, unlike in a live process: keep the collector off it.
    gc.collect()
    gc.freeze()
    handle = core.handle
    emitted = np.zeros(len(steps) - first, dtype=bool)

    def step(i: int) -> None:
        for bar in steps[i]:
            if handle(bar):
                emitted[i - first] = True

    return timed(step, range(first, len(steps))), emitted


def window_positions(columns: dict[str, Columns]) -> dict[str, npt.NDArray[np.int64]]:
    """Per M1 bar, how many bars of each timeframe have closed by its close (M1: itself included)."""
    ends = columns["M1"]["close_time"]
    return {tf: np.searchsorted(columns[tf]["close_time"], ends, side="right") for tf in ("M1", "M5", "M15")}


def talib_indicators(cols: Columns, end: int) -> tuple[float, ...]:
    """All classic indicators by TA-Lib over the WINDOW bars before ``end``; the newest values."""
    s = slice(max(0, end - WINDOW), end)
    h, lo, c, v = cols["high"][s], cols["low"][s], cols["close"][s], cols["tick_volume"][s][-80:]
    upper, middle, lower = (x[-1] for x in talib.BBANDS(c, 20, 2.0, 2.0))
    std = v.std()
    return (
        *(talib.EMA(c, p)[-1] for p in (9, 21, 50, 200)),
        talib.ATR(h, lo, c, 14)[-1], talib.RSI(c, 14)[-1], talib.ADX(h, lo, c, 14)[-1],
        talib.PLUS_DI(h, lo, c, 14)[-1], talib.MINUS_DI(h, lo, c, 14)[-1],
        *(x[-1] for x in talib.MACD(c, 12, 26, 9)),
        upper, middle, lower, (upper - lower) / middle, 0.0 if std == 0.0 else (v[-1] - v.mean()) / std,
    )


def pandas_indicators(frame: pd.DataFrame, end: int) -> tuple[float, ...]:
    """All classic indicators with pandas ewm/rolling over the WINDOW bars before ``end``."""
    df = frame.iloc[max(0, end - WINDOW) : end]
    c, h, lo, v = df["close"], df["high"], df["low"], df["tick_volume"]
    wilder = {"alpha": 1.0 / 14, "adjust": False}
    emas = [c.ewm(span=p, adjust=False).mean().iloc[-1] for p in (9, 21, 50, 200)]
    prev = c.shift()
    atr = pd.concat([h - lo, (h - prev).abs(), (lo - prev).abs()], axis=1).max(axis=1).ewm(**wilder).mean()
    delta = c.diff()
    gain = delta.clip(lower=0.0).ewm(**wilder).mean()
    loss = (-delta).clip(lower=0.0).ewm(**wilder).mean()
    up, down = h.diff(), -lo.diff()
    plus_di = 100.0 * up.where((up > down) & (up > 0), 0.0).ewm(**wilder).mean() / atr
    minus_di = 100.0 * down.where((down > up) & (down > 0), 0.0).ewm(**wilder).mean() / atr
    adx = (100.0 * (plus_di - minus_di).abs() / (plus_di + minus_di)).ewm(**wilder).mean()
    line = c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()
    signal = line.ewm(span=9, adjust=False).mean()
    middle, std = c.rolling(20).mean(), c.rolling(20).std(ddof=0)
    z = (v - v.rolling(80).mean()) / v.rolling(80).std(ddof=0)
    return (
        *emas, atr.iloc[-1], (100.0 - 100.0 / (1.0 + gain / loss)).iloc[-1], adx.iloc[-1], plus_di.iloc[-1],
        minus_di.iloc[-1], line.iloc[-1], signal.iloc[-1], (line - signal).iloc[-1], (middle + 2 * std).iloc[-1],
        middle.iloc[-1], (middle - 2 * std).iloc[-1], (4 * std / middle).iloc[-1], z.iloc[-1],
    )


def measure(symbol: str, pandas_samples: int, rng: np.random.Generator) -> list[tuple[str, FloatArray]]:
    """Every case on one symbol: (name, microseconds per M1 bar)."""
    _, columns, steps = load(symbol)
    first = WINDOW
    micros, emitted = strategy_steps(symbol, steps, first)
    out = [
        ("a) full step (3 TFs, filters, signal)", micros),
        ("   ... on bars with a signal", micros[emitted]),
        ("   ... on bars without", micros[~emitted]),
    ]
    ends = window_positions(columns)
    idx = list(range(first, len(steps)))
    m1_cols, m5_cols, m15_cols = columns["M1"], columns["M5"], columns["M15"]
    e1, e5, e15 = ends["M1"], ends["M5"], ends["M15"]
    out.append((f"b) TA-Lib {WINDOW}-bar window, M1 only", timed(lambda i: talib_indicators(m1_cols, e1[i]), idx)))
    out.append((f"b) TA-Lib {WINDOW}-bar window, M1+M5+M15", timed(
        lambda i: (talib_indicators(m1_cols, e1[i]), talib_indicators(m5_cols, e5[i]),
                   talib_indicators(m15_cols, e15[i])), idx)))
    f1, f5, f15 = (pd.DataFrame(columns[tf]) for tf in ("M1", "M5", "M15"))
    sample = sorted(int(i) for i in rng.choice(idx, size=min(pandas_samples, len(idx)), replace=False))
    out.append((f"c) pandas {WINDOW}-bar window, M1 only", timed(lambda i: pandas_indicators(f1, e1[i]), sample)))
    out.append((f"c) pandas {WINDOW}-bar window, M1+M5+M15", timed(
        lambda i: (pandas_indicators(f1, e1[i]), pandas_indicators(f5, e5[i]), pandas_indicators(f15, e15[i])),
        sample)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pandas-samples", type=int, default=400, help="sampled bars per symbol for (c)")
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this core")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    rng = np.random.default_rng(0)
    results: dict[str, list[FloatArray]] = {}
    began = time.perf_counter()
    for symbol in FILES:
        for name, micros in measure(symbol, args.pandas_samples, rng):
            results.setdefault(name, []).append(micros)
    overhead = timed(lambda i: None, range(200_000))
    print(f"{'case':<44}{'bars':>8}{'p50 us':>10}{'p99 us':>10}{'mean us':>10}{'p50 / (a)':>11}")
    base = None
    for name, parts in results.items():
        micros = np.concatenate(parts)
        p50, p99 = np.percentile(micros, [50, 99])
        base = base if base is not None else p50
        print(f"{name:<44}{len(micros):>8}{p50:>10.1f}{p99:>10.1f}{micros.mean():>10.1f}{p50 / base:>10.1f}x")
    signals = int(sum(len(m) for m in results["   ... on bars with a signal"]))
    bars = int(sum(len(m) for m in results["a) full step (3 TFs, filters, signal)"]))
    print(f"signals on {signals:,} of {bars:,} timed M1 bars; timer overhead (p50) "
          f"{np.percentile(overhead, 50):.2f} us; cpu {'pinned to ' + str(args.cpu) if args.cpu is not None else 'any'}"
          f"; total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
