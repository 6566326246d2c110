"""Run every benchmark script in bench/ one after the other (what `make bench` does), then print the summary
table and write it, with each script's own output, into docs/PERFORMANCE.md.

Each script is standalone and prints its own table; this runner sequences them so that they do not compete
for the two cores, stops at the first one that fails, and replaces the block between BEGIN and END in
docs/PERFORMANCE.md (added after the introduction the first time) with this run's figures, the machine, the
date and the command. ``--no-docs`` only prints.

    .venv/bin/python bench/run_all.py [--no-docs] [--signals 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy
import zmq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOC = ROOT / "docs" / "PERFORMANCE.md"
BEGIN = "<!-- make bench: begin (written by bench/run_all.py) -->"
END = "<!-- make bench: end -->"
COMMAND = "make bench  (.venv/bin/python bench/run_all.py)"


def run_script(script: Path, extra: list[str]) -> str:
    """Run one script, echoing its output as it comes; its whole stdout (RuntimeError if it failed)."""
    print(f"\n=== {script.name} ===", flush=True)
    process = subprocess.Popen([sys.executable, str(script), *extra], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    if process.wait() != 0:
        raise RuntimeError(f"{script.name} failed with status {process.returncode}")
    return "".join(lines)


def machine() -> str:
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    load = os.getloadavg()
    return (f"{os.cpu_count()} vCPU, {mem_kb / 1024 / 1024:.0f} GiB, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, numpy {numpy.__version__}, pyzmq {zmq.__version__} "
            f"(libzmq {zmq.zmq_version()}); load average before the run {load[0]:.2f}")


def growth(rss: dict[str, dict[str, float]], service: str) -> float:
    before, after = rss.get("min10", {}).get(service), rss.get("min60", {}).get(service)
    return float("nan") if not before or after is None else (after / before - 1) * 100


def summary(pipeline: dict[str, Any]) -> list[str]:
    """The markdown table of the system-level figures (pipeline vs floor, start-up, memory)."""
    p, f = pipeline["pipeline"], pipeline["floor"]
    rows = [
        "| figure | measured | target | |",
        "|---|---|---|---|",
        f"| pipeline latency, bar published -> order_send at the gateway ({p['n']:.0f} signals, "
        f"{pipeline['signals_per_s']:.1f}/s, sim x{pipeline['speed']:g}, ipc) | p50 {p['p50_ms']:.2f} ms, "
        f"p99 {p['p99_ms']:.2f} ms, max {p['max_ms']:.2f} ms | | |",
        f"| floor: bare pyzmq+msgpack 4-process chain ({f['n']:.0f} messages, {pipeline['floor_rate']}/s, ipc) | "
        f"p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms, max {f['max_ms']:.2f} ms | | |",
    ]
    r50, r99 = p["p50_ms"] / f["p50_ms"], p["p99_ms"] / f["p99_ms"]
    rows.append(f"| pipeline / floor, p50 | {r50:.1f}x | <= 1.5x | {'met' if r50 <= 1.5 else 'NOT met'} |")
    rows.append(f"| pipeline / floor, p99 | {r99:.1f}x | <= 2x | {'met' if r99 <= 2 else 'NOT met'} |")
    for name, seconds in pipeline["startup_s"].items():
        rows.append(f"| start-up: main.py launched -> first bar analysed by {name} | {seconds:.2f} s | < 5 s | "
                    f"{'met' if seconds < 5 else 'NOT met'} |")
    rss = pipeline["rss_mb"]
    at60 = rss.get("min60", {})
    for service in sorted(at60):
        size, grew = at60[service], growth(rss, service)
        ok = size < 100 and grew <= 5
        rows.append(f"| RSS {service} at replayed minute 60 (growth since minute 10; at the end, minute "
                    f"{pipeline['replayed_minutes']:.0f}) | {size:.1f} MB ({grew:+.1f} %; "
                    f"{rss.get('end', {}).get(service, float('nan')):.1f} MB) | < 100 MB, <= +5 % | "
                    f"{'met' if ok else 'NOT met'} |")
    rows.append(f"| RSS total at minute 60 | {sum(at60.values()):.1f} MB | | |")
    return rows


def columns(output: str, prefix: str, count: int) -> list[str]:
    """The last ``count`` words (the figures) of the first output line starting with ``prefix``."""
    for line in output.splitlines():
        if line.startswith(prefix):
            return line.split()[-count:]
    return []


def peer_rows(outputs: dict[str, str]) -> list[str]:
    """The services' own work on an order's path (bench_hot_path), analysis cost vs TA-Lib/pandas (bench_strategy)
    and backtest throughput (bench_backtest), if they ran."""
    rows = []
    hot = next((line for line in outputs.get("bench_hot_path.py", "").splitlines() if line.startswith("sum of")), "")
    if hot:
        work, _, rest = hot.replace(" us", " µs").removeprefix("sum of the p50s: ").partition("; ")
        rows.append(f"| the services' own work on an order's path, in one process, warm (strategy + risk + executor, "
                    f"p50s; bench_hot_path.py) | {work} | | {rest} |")
    strategy = outputs.get("bench_strategy.py", "")
    ours = columns(strategy, "a) full step", 5)  # bars, p50, p99, mean, p50 / ours
    talib = columns(strategy, "b) TA-Lib 500-bar window, M1+M5+M15", 5)
    pandas = columns(strategy, "c) pandas 500-bar window, M1+M5+M15", 5)
    if len(ours) == len(talib) == len(pandas) == 5:
        rows.append(f"| analysis per closed M1 bar (3 timeframes, filters, signal; both symbols) | p50 {ours[1]} µs, "
                    f"p99 {ours[2]} µs | | TA-Lib window recompute (3 TFs) {talib[1]} µs = {talib[-1]} ours, "
                    f"pandas {pandas[1]} µs = {pandas[-1]} |")
    backtest = outputs.get("bench_backtest.py")
    if backtest is None:
        rows.append("| backtest throughput vs backtesting.py | pending: no bench/bench_backtest.py yet | | |")
    else:
        mine, peer = columns(backtest, "a) ours:", 4), columns(backtest, "b) backtesting.py", 4)  # .., bars/s, trades
        verdict = next((line for line in backtest.splitlines() if line.startswith("ours / backtesting.py")), "")
        if len(mine) == len(peer) == 4:
            rows.append(f"| backtest throughput, M1 bars/s: ours vs backtesting.py (EMA cross) | {mine[-2]} vs "
                        f"{peer[-2]} | >= 1x | {verdict.split(':', 1)[-1].strip()} |")
    return rows


def write_doc(block: str) -> None:
    text = DOC.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:  # first time: after the introduction, before the first section
        cut = text.index("\n## ")
        text = text[:cut] + "\n\n" + block + "\n" + text[cut:]
    DOC.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/PERFORMANCE.md alone")
    parser.add_argument("--signals", type=int, default=1000, help="signals measured by bench_pipeline.py")
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    host = machine()
    outputs: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        figures = Path(scratch) / "pipeline.json"
        try:
            for script in sorted(HERE.glob("bench_*.py")):
                extra = ["--json", str(figures), "--signals", str(args.signals)] if script.name == "bench_pipeline.py" \
                    else []
                outputs[script.name] = run_script(script, extra)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        pipeline = json.loads(figures.read_text())
    table = summary(pipeline)
    table[6:6] = peer_rows(outputs)  # after the pipeline, the floor and the two ratios
    lines = [BEGIN, f"## Latest `make bench` ({started:%Y-%m-%d %H:%M} UTC)", "",
             f"Machine: {host}. Command: `{COMMAND}`, {(dt.datetime.now(dt.UTC) - started).seconds} s in all. "
             "Absolute times are noisy here; the ratios measured in the same run are the figures that count.", "",
             *table, ""]
    for name, output in outputs.items():
        lines += [f"`{name}`:", "", "```", output.rstrip(), "```", ""]
    lines.append(END)
    print("\n" + "\n".join(table))
    if not args.no_docs:
        write_doc("\n".join(lines))
        print(f"\nwritten into {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
