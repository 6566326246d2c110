"""`python main.py backtest ...` (and `make backtest`): run the live cores over history, write the report.

    python main.py backtest --from 2025-07-11 --to 2025-08-01 --symbols XAUUSDm,BTCUSDm \\
        --data data --balance 1000 --out reports/july

The output folder receives trades.csv (one row per leg), orders.csv (every plan risk sent, one row per
leg: what the parity test compares), summary.json / summary.txt, equity.png, drawdown.png and
report.html (viewable offline), and backtest.log (the cores' warnings). The summary is also printed.
A bad input prints one line naming the file (and line) and exits with status 2.
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from backtest.engine import BacktestResult, run_backtest
from backtest.inputs import FAULTS_HELP, BacktestSetup, InputError, build_setup, parse_when
from backtest.progress import ProgressBar
from backtest.report import format_summary, iso, summarise, write_report
from services.gateway_mt5.sim.history import HistoryError
from shared.config import CONFIG_EXIT_STATUS, ConfigError, inert_key_notices

ROOT = Path(__file__).resolve().parent.parent
TMPFS = Path("/dev/shm")  # the journal commits with fsync: on tmpfs that costs nothing
ORDER_COLUMNS = ("plan_id", "symbol", "side", "bar_time", "leg_id", "lots", "sl", "tp", "price", "confidence",
                 "regime")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python main.py backtest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "system.toml",
                   help="system.toml naming the symbol files and the [sim] table (default: configs/system.toml)")
    p.add_argument("--from", dest="start", type=parse_when, default=None,
                   help="first bar OPEN time replayed, UTC (default: [sim] start of the config if inside the "
                        "data, else first bar + sim.warmup_minutes); earlier bars are the strategies' warm-up")
    p.add_argument("--to", dest="end", type=parse_when, default=None,
                   help="bars opening before this time are replayed, UTC (default: to the end of the data)")
    p.add_argument("--symbols", default="XAUUSDm,BTCUSDm", help="comma-separated (default: XAUUSDm,BTCUSDm)")
    p.add_argument("--data", type=Path, default=ROOT / "data",
                   help="folder of the M1 files: the shipped CSV layout or MT5 exports, one file per symbol "
                        "named SYMBOL* (default: data/, the shipped slice)")
    p.add_argument("--balance", type=float, default=1000.0, help="starting balance in USD (default: 1000)")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "backtest",
                   help="output folder (default: reports/backtest)")
    p.add_argument("--faults", default="", help=FAULTS_HELP)
    p.add_argument("--keep-state", action="store_true",
                   help="keep risk's and the executor's SQLite files in OUT/state (default: a temporary folder)")
    p.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="level of OUT/backtest.log (default: WARNING)")
    return p


def write_orders_csv(path: Path, result: BacktestResult) -> None:
    """orders.csv: every plan risk handed the executor, one row per leg, in the order they were made."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(ORDER_COLUMNS)
        for plan in result.plans:
            bar_time = iso(float(plan.signal_id.rsplit("-", 2)[1]))
            for leg in plan.legs:
                writer.writerow([plan.plan_id, plan.symbol, plan.side, bar_time, leg.leg_id, f"{leg.volume:g}",
                                 f"{leg.sl:.10g}", f"{leg.tp:.10g}", f"{plan.price:.10g}", f"{plan.confidence:g}",
                                 plan.regime])


def notes(setup: BacktestSetup, result: BacktestResult) -> dict[str, str]:
    """What the run assumed and met, for the summary's last lines."""
    gaps = ", ".join(f"{s} {g.runs} ({g.minutes} min)" for s, g in setup.gaps.items())
    refused = ", ".join(f"{rule} {n}" for rule, n in result.refusals.items()) or "none"
    spreads = ", ".join(f"{s} {c.spread.mode} {c.spread.points if c.spread.mode == 'fixed' else ''}".rstrip()
                        for s, c in setup.sim.symbols.items())
    return {
        "window": f"{iso(setup.start)} to {iso(setup.end)} UTC, {result.m1_bars:,} M1 bars, {result.steps:,} steps",
        "data gaps skipped (runs, minutes)": gaps,
        "signals / refused by risk": f"{result.signals:,} / {sum(result.refusals.values()):,}: {refused}",
        "legs rejected / unknown": f"{result.legs_rejected} / {result.legs_unknown}",
        "fills assumed": f"market orders at the bar-close quote, latency 0 ms of market time; spread (points): "
                         f"{spreads}",
        "faults injected": setup.fault_text,
    }


def _setup_logging(out: Path, level: str) -> logging.Handler:
    handler = logging.FileHandler(out / "backtest.log", mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    try:
        setup = build_setup(args.config, symbols, args.data, start=args.start, end=args.end,
                            balance=args.balance, faults=args.faults)
    except (InputError, HistoryError, ConfigError) as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return CONFIG_EXIT_STATUS
    for notice in inert_key_notices(setup.config):
        print(notice, file=sys.stderr)  # a backtest that varies such a key would otherwise look like a result
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    handler = _setup_logging(out, args.log_level)
    progress = ProgressBar(setup.m1_bars)
    scratch = None
    if args.keep_state:
        state = out / "state"
        shutil.rmtree(state, ignore_errors=True)  # a run starts from an empty journal and risk store
    else:
        scratch = tempfile.TemporaryDirectory(prefix="backtest-", dir=TMPFS if TMPFS.is_dir() else None)
        state = Path(scratch.name)
    try:
        result = run_backtest(setup, state, progress)
    finally:
        progress.close()
        logging.getLogger().removeHandler(handler)
        handler.close()
        if scratch is not None:
            scratch.cleanup()
    summary = summarise(result.trades, result.equity, args.balance, result.regime_days, notes(setup, result))
    title = f"Backtest {', '.join(symbols)}: {iso(setup.start)[:10]} to {iso(setup.end)[:10]}"
    write_report(out, result.trades, result.equity, summary, title)
    write_orders_csv(out / "orders.csv", result)
    print(format_summary(summary))
    print(f"\n{result.m1_bars:,} M1 bars in {result.seconds:.1f} s ({result.m1_bars / result.seconds:,.0f} bars/s). "
          f"Report: {out / 'report.html'}")
    return 0
