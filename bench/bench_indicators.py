"""Per-bar cost of the classic indicators: our incremental states against recomputing a window.

Run: ``.venv/bin/python bench/bench_indicators.py`` (about 20-40 s; prints a table).

On the shipped gold and bitcoin M1 history it times, bar by bar (p50 / p99 / mean, microseconds):

a) ``IndicatorSet.update``: EMA 9/21/50/200, ATR, RSI, ADX/+DI/-DI, MACD, Bollinger, Z-volume, every bar;
   and the same plus ``snapshot()``, which a strategy reads on each bar;
b) recomputing the same indicators with TA-Lib over the last 500 bars, every bar;
c) the same with pandas ewm/rolling over the last 500 bars, as a naive live bot does (sampled bars);
plus the live structure detectors (FVG, sweep, order block, RSI and MACD divergence) for reference.
Each timing includes one perf_counter_ns pair (its cost is printed as "timer overhead").
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import talib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timing import timed  # noqa: E402  (bench/timing.py, beside this script)

from shared.indicators import (  # noqa: E402  (after the path set-up, so the script runs from anywhere)
    DivergenceDetector,
    FvgDetector,
    IndicatorSet,
    OrderBlockDetector,
    SweepDetector,
)

FILES = {
    "XAUUSDm": ROOT / "data" / "XAUUSDm_M1_2025-07-09_2025-08-12.csv.gz",
    "BTCUSDm": ROOT / "data" / "BTCUSDm_M1_2025-07-09_2025-08-12.csv.gz",
}
WINDOW = 500
FloatArray = npt.NDArray[np.float64]
Columns = dict[str, FloatArray]


def load(path: Path) -> Columns:
    """The CSV's price and volume columns as float64 arrays (empty volume -> NaN)."""
    with gzip.open(path, "rt") as handle:
        frame = pd.read_csv(handle, dtype={"volume": np.float64})
    return {name: frame[name].to_numpy(np.float64) for name in ("open", "high", "low", "close", "volume")}



def incremental(cols: Columns, with_snapshot: bool) -> FloatArray:
    """(a) IndicatorSet.update on every bar, optionally followed by snapshot()."""
    indicators = IndicatorSet()
    bars = list(zip(*(cols[c].tolist() for c in ("open", "high", "low", "close", "volume")), strict=True))
    update, snapshot = indicators.update, indicators.snapshot
    if with_snapshot:
        return timed(lambda i: (update(*bars[i]), snapshot()), range(len(bars)))
    return timed(lambda i: update(*bars[i]), range(len(bars)))


def structure(cols: Columns) -> FloatArray:
    """The five live structure detectors on every bar (ATR and oscillators precomputed)."""
    o, h, lo, c = (cols[k].tolist() for k in ("open", "high", "low", "close"))
    atr = talib.ATR(cols["high"], cols["low"], cols["close"], 14).tolist()
    rsi = talib.RSI(cols["close"], 14).tolist()
    macd = talib.MACD(cols["close"], 12, 26, 9)[0].tolist()
    fvg, sweep, block = FvgDetector(), SweepDetector(), OrderBlockDetector()
    rsi_div, macd_div = DivergenceDetector(), DivergenceDetector()

    def step(i: int) -> None:
        fvg.update(h[i], lo[i], atr[i])
        sweep.update(h[i], lo[i], c[i], atr[i])
        block.update(o[i], h[i], lo[i], c[i], atr[i])
        rsi_div.update(h[i], lo[i], rsi[i])
        macd_div.update(h[i], lo[i], macd[i])

    return timed(step, range(len(c)))


def talib_window(cols: Columns) -> FloatArray:
    """(b) All indicators recomputed by TA-Lib over the last WINDOW bars, each bar."""
    h, lo, c = cols["high"], cols["low"], cols["close"]
    v = np.nan_to_num(cols["volume"], nan=0.0)

    def step(i: int) -> tuple[float, ...]:
        s = slice(i - WINDOW + 1, i + 1)
        hh, ll, cc, vv = h[s], lo[s], c[s], v[s][-80:]
        emas = [talib.EMA(cc, p)[-1] for p in (9, 21, 50, 200)]
        upper, middle, lower = (x[-1] for x in talib.BBANDS(cc, 20, 2.0, 2.0))
        std = vv.std()
        z = 0.0 if std == 0.0 else (vv[-1] - vv.mean()) / std
        return (
            *emas,
            talib.ATR(hh, ll, cc, 14)[-1],
            talib.RSI(cc, 14)[-1],
            talib.ADX(hh, ll, cc, 14)[-1],
            talib.PLUS_DI(hh, ll, cc, 14)[-1],
            talib.MINUS_DI(hh, ll, cc, 14)[-1],
            *(x[-1] for x in talib.MACD(cc, 12, 26, 9)),
            upper,
            middle,
            lower,
            (upper - lower) / middle,
            z,
        )

    return timed(step, range(WINDOW - 1, len(c)))


def pandas_window(cols: Columns, samples: int, rng: np.random.Generator) -> FloatArray:
    """(c) All indicators recomputed with pandas ewm/rolling over the last WINDOW bars."""
    frame = pd.DataFrame(cols)
    frame["volume"] = frame["volume"].fillna(0.0)
    wilder = {"alpha": 1.0 / 14, "adjust": False}

    def step(i: int) -> tuple[float, ...]:
        df = frame.iloc[i - WINDOW + 1 : i + 1]
        c, h, lo, v = df["close"], df["high"], df["low"], df["volume"]
        emas = [c.ewm(span=p, adjust=False).mean().iloc[-1] for p in (9, 21, 50, 200)]
        prev = c.shift()
        tr = pd.concat([h - lo, (h - prev).abs(), (lo - prev).abs()], axis=1).max(axis=1)
        atr = tr.ewm(**wilder).mean()
        delta = c.diff()
        gain = delta.clip(lower=0.0).ewm(**wilder).mean()
        loss = (-delta).clip(lower=0.0).ewm(**wilder).mean()
        rsi = 100.0 - 100.0 / (1.0 + gain / loss)
        up, down = h.diff(), -lo.diff()
        plus_di = 100.0 * up.where((up > down) & (up > 0), 0.0).ewm(**wilder).mean() / atr
        minus_di = 100.0 * down.where((down > up) & (down > 0), 0.0).ewm(**wilder).mean() / atr
        adx = (100.0 * (plus_di - minus_di).abs() / (plus_di + minus_di)).ewm(**wilder).mean()
        line = c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()
        signal = line.ewm(span=9, adjust=False).mean()
        middle, std = c.rolling(20).mean(), c.rolling(20).std(ddof=0)
        z = (v - v.rolling(80).mean()) / v.rolling(80).std(ddof=0)
        return (
            *emas,
            atr.iloc[-1],
            rsi.iloc[-1],
            adx.iloc[-1],
            plus_di.iloc[-1],
            minus_di.iloc[-1],
            line.iloc[-1],
            signal.iloc[-1],
            (line - signal).iloc[-1],
            (middle + 2 * std).iloc[-1],
            middle.iloc[-1],
            (middle - 2 * std).iloc[-1],
            (4 * std / middle).iloc[-1],
            z.iloc[-1],
        )

    n = len(frame)
    picks = sorted(rng.choice(np.arange(WINDOW - 1, n), size=min(samples, n - WINDOW + 1), replace=False))
    return timed(step, [int(i) for i in picks])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pandas-samples", type=int, default=1000, help="sampled bars per symbol for (c)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data = {symbol: load(path) for symbol, path in FILES.items()}
    cases: list[tuple[str, Callable[[Columns], FloatArray]]] = [
        ("a) incremental IndicatorSet.update", lambda cols: incremental(cols, False)),
        ("a) incremental update + snapshot()", lambda cols: incremental(cols, True)),
        ("   structure detectors (5, live)", structure),
        (f"b) TA-Lib over {WINDOW}-bar window", talib_window),
        (f"c) pandas over {WINDOW}-bar window", lambda cols: pandas_window(cols, args.pandas_samples, rng)),
    ]
    overhead = timed(lambda i: None, range(200_000))
    began = time.perf_counter()
    print(f"{'case':<38}{'bars':>8}{'p50 us':>11}{'p99 us':>11}{'mean us':>11}{'p50 x (a)':>11}")
    base = None
    for name, run in cases:
        micros = np.concatenate([run(cols) for cols in data.values()])
        p50, p99 = np.percentile(micros, [50, 99])
        base = base if base is not None else p50
        print(f"{name:<38}{len(micros):>8}{p50:>11.2f}{p99:>11.2f}{micros.mean():>11.2f}{p50 / base:>10.0f}x")
    sizes = ", ".join(f"{symbol} {len(cols['close']):,} bars" for symbol, cols in data.items())
    print(
        f"timer overhead (empty call, p50): {np.percentile(overhead, 50):.2f} us; {sizes}; "
        f"total {time.perf_counter() - began:.0f} s"
    )


if __name__ == "__main__":
    main()
