"""Throughput of the full backtest in M1 bars per second, against backtesting.py on the same bars.

Run: ``.venv/bin/python bench/bench_backtest.py`` (about a minute). ``--repeat N`` runs ours N times
(median reported), ``--profile`` adds a run under cProfile and prints where the time goes by module,
``--cpu N`` pins the process to one core.

a) ours: ``backtest.engine.run_backtest`` on the shipped data, both symbols on one market clock, from
   the live start of configs/system.toml to the end: the gateway core over the simulated broker (M5/M15
   built from M1, heartbeats, account snapshots), both strategies with every indicator, risk with its
   SQLite store, the executor with its journal (on tmpfs when there is one), the in-process bus. The
   bars are the M1 bars replayed; the time is the replay loop (warm-up and loading are shown apart).
b) backtesting.py (the ``backtesting`` package) running an EMA(9)/EMA(21) cross with SL 0.3 % and TP
   0.6 % on the same M1 bars, one Backtest per symbol; the time is ``Backtest.run`` (loading apart).
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# After the path set-up, so the script runs from anywhere.
from backtest.engine import run_backtest  # noqa: E402
from backtest.inputs import BacktestSetup, build_setup  # noqa: E402

SYMBOLS = ["XAUUSDm", "BTCUSDm"]
TMPFS = Path("/dev/shm")
BUCKETS = (  # (label, path fragment) in the order they are matched
    ("strategy + indicators", "/shared/strategy/"), ("strategy + indicators", "/shared/indicators/"),
    ("strategy + indicators", "/services/strategy_"), ("risk", "/services/risk/"), ("executor", "/services/executor/"),
    ("simulated broker", "/services/gateway_mt5/sim/"), ("gateway core", "/services/gateway_mt5/"),
    ("backtest (bus, adapters, recorder)", "/backtest/"), ("messages (pydantic)", "pydantic"),
    ("messages (pydantic)", "/shared/messages.py"), ("sqlite", "sqlite3"), ("uuid (message ids)", "uuid"),
)


def ours(setup: BacktestSetup) -> tuple[float, float, int, int]:
    """(replay loop seconds, start-up seconds, M1 bars, trades) of one full run."""
    with tempfile.TemporaryDirectory(prefix="bench-", dir=TMPFS if TMPFS.is_dir() else None) as state:
        result = run_backtest(setup, Path(state))
    return result.seconds, result.startup_seconds, result.m1_bars, len(result.trades)


def frames(setup: BacktestSetup) -> dict[str, pd.DataFrame]:
    """The bars our run replays, as backtesting.py wants them."""
    out = {}
    for symbol, history in setup.histories.items():
        keep = (history.time + 60 > setup.start) & (history.time + 60 <= setup.end)
        out[symbol] = pd.DataFrame(
            {"Open": history.open[keep], "High": history.high[keep], "Low": history.low[keep],
             "Close": history.close[keep], "Volume": history.tick_volume[keep].astype(np.float64)},
            index=pd.to_datetime(history.time[keep], unit="s"),
        )
    return out


def peer(data: dict[str, pd.DataFrame]) -> tuple[float, int, int]:
    """(seconds in Backtest.run, bars, trades) of backtesting.py's EMA cross on every symbol."""
    from backtesting import Backtest, Strategy  # type: ignore[import-untyped]  # noqa: PLC0415  (dev dependency)
    from backtesting.lib import crossover  # type: ignore[import-untyped]  # noqa: PLC0415

    def ema(values: Any, span: int) -> Any:
        return pd.Series(values).ewm(span=span, adjust=False).mean().to_numpy()

    class EmaCross(Strategy):  # type: ignore[misc]
        fast, slow, sl_pct, tp_pct = 9, 21, 0.003, 0.006

        def init(self) -> None:
            self.f = self.I(ema, self.data.Close, self.fast)
            self.s = self.I(ema, self.data.Close, self.slow)

        def next(self) -> None:
            price = self.data.Close[-1]
            if crossover(self.f, self.s):
                self.position.close()
                self.buy(size=0.5, sl=price * (1 - self.sl_pct), tp=price * (1 + self.tp_pct))
            elif crossover(self.s, self.f):
                self.position.close()
                self.sell(size=0.5, sl=price * (1 + self.sl_pct), tp=price * (1 - self.tp_pct))

    seconds, bars, trades = 0.0, 0, 0
    for frame in data.values():
        bt = Backtest(frame, EmaCross, cash=10_000_000, commission=0.0, finalize_trades=True)
        started = time.perf_counter()
        stats = bt.run()
        seconds += time.perf_counter() - started
        bars += len(frame)
        trades += int(stats["# Trades"])
    return seconds, bars, trades


def profile(setup: BacktestSetup) -> list[tuple[str, float]]:
    """Own time (cProfile tottime) per part of the system, as fractions of the run."""
    profiler = cProfile.Profile()
    profiler.runcall(ours, setup)
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    parts: dict[str, float] = defaultdict(float)
    for (filename, _, name), (_, _, tottime, _, _) in stats.items():
        where = f"{filename} {name}"
        label = next((label for label, fragment in BUCKETS if fragment in where), "other (stdlib, numpy, ...)")
        parts[label] += tottime
    total = sum(parts.values())
    return sorted(((label, value / total) for label, value in parts.items()), key=lambda item: -item[1])


def timed(what: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    value = fn()
    print(f"{what}: {time.perf_counter() - started:.2f} s", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="runs of ours (median reported)")
    parser.add_argument("--peer-repeat", type=int, default=3, help="runs of backtesting.py (median reported)")
    parser.add_argument("--profile", action="store_true", help="one more run of ours under cProfile")
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this core")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the cores' warnings (regime changes...) are not the figures
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    setup = timed("load and check the shipped data", lambda: build_setup(ROOT / "configs" / "system.toml",
                                                                         SYMBOLS, ROOT / "data"))
    runs = [ours(setup) for _ in range(args.repeat)]
    loop = statistics.median(run[0] for run in runs)
    startup = statistics.median(run[1] for run in runs)
    bars, trades = runs[0][2], runs[0][3]
    data = frames(setup)
    peers = [peer(data) for _ in range(args.peer_repeat)]
    peer_s = statistics.median(p[0] for p in peers)
    peer_bars, peer_trades = peers[0][1], peers[0][2]
    ours_rate, peer_rate = bars / loop, peer_bars / peer_s
    print(f"\n{'case':<58} {'M1 bars':>9} {'seconds':>8} {'bars/s':>10} {'trades':>7}")
    print(f"{'a) ours: gateway+sim, 2 strategies, risk, executor, bus':<58} {bars:>9,} {loop:>8.2f} "
          f"{ours_rate:>10,.0f} {trades:>7,}")
    print(f"{'   (start-up: cores, sim load, warm-up; not counted)':<58} {'':>9} {startup:>8.2f}")
    print(f"{'b) backtesting.py EMA(9/21) cross, SL 0.3 % / TP 0.6 %':<58} {peer_bars:>9,} {peer_s:>8.2f} "
          f"{peer_rate:>10,.0f} {peer_trades:>7,}")
    print(f"\nours / backtesting.py: {ours_rate / peer_rate:.3f}x (target >= 1x, and >= 100,000 bars/s: "
          f"{'met' if ours_rate >= max(peer_rate, 100_000) else 'NOT met'})")
    if args.profile:
        print("\nwhere the time goes (cProfile own time, one more run):")
        for label, share in profile(setup):
            print(f"  {label:<40} {share:6.1%}")


if __name__ == "__main__":
    main()
