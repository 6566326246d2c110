"""The whole system under supervisord on the simulated broker: pipeline latency, memory and start-up.

One run, in a private directory (configs copied, paths and the replay speed rewritten, a fake Telegram
API), started exactly as an operator starts it (``python main.py --config ...``), with two benchmark
switches in the environment (both off in production):

- ``PORTFOLIO_BENCH_SIGNAL_EVERY_BAR=1``: every analysed closed M1 bar is a signal (shared strategy engine).
- ``PORTFOLIO_BENCH_DIR=<dir>``: every service stamps each message of a bar's order path it sends or
  receives (``shared/stamps.py``: ``stamps-<service>.txt``, perf_counter, tagged with the bar).

The symbol files get the risk settings that let every signal through (``BENCH_OVERRIDES``: no cooldown,
one leg per plan, limits and breakers wide open), so each bar gives one order_send whose leg id names the
bar. Figures:

1. Pipeline latency: gateway publishes the bar -> the executor's order_send for it reaches the gateway,
   both stamps taken in the gateway process. p50 / p99 / max over ``--signals`` signals, the first and the
   second order of a bar apart, and the p50 of each stage between (the other services' stamps).
   Then the floor, ``bare_chain.run`` at the same message rate on the same transport (ipc).
2. Memory: resident size of each service (``/proc/<pid>/status`` VmRSS) at the 10th and the 60th replayed
   minute, and at the end of the run.
3. Start-up: from launching ``main.py`` (which validates the configs and execs supervisord) to the
   ``FIRST_ANALYSIS_MARKER`` line of both strategies (first live M1 bar fully analysed), from the log
   line's own timestamp.

    .venv/bin/python bench/bench_pipeline.py [--signals 1000] [--speed 600] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from calendar import timegm
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bare_chain  # noqa: E402

from shared.stamps import BENCH_DIR_VARIABLE, FILE_PATTERN, bar_time_of  # noqa: E402
from shared.strategy.runner import EVERY_BAR_VARIABLE, FIRST_ANALYSIS_MARKER  # noqa: E402
from tests.fakes.telegram_api import FakeTelegramServer  # noqa: E402

SERVICES = ("gateway_mt5", "strategy_xau", "strategy_btc", "risk", "executor", "telegram")
TOKEN = "987654321:BENCH-token-not-a-real-one_0123456"
ADMIN_ID = 4242
# Per symbol file: let every signal through, one leg per plan, nothing pauses (production files untouched).
BENCH_OVERRIDES: dict[str, dict[str, str]] = {
    "risk": {"enforce_daily_limits": "false", "ignore_daily_stop_for_trading": "true", "max_positions": "100",
             "daily_loss_b_pct": "0.9", "daily_loss_c_pct": "0.95", "max_daily_loss_pct": "0.95"},
    "signal": {"min_confidence_signal": "0.01", "ultra_confidence_min": "0.01", "net_norm_signal_threshold": "0.0"},
    "multi_order": {"multi_order_max_orders": "1"},
    "limits": {"max_trades_per_hour": "0", "cooldown_seconds": "0.0"},
    "execution": {"spread_cb_pct": "0.1", "exec_max_spread_points": "1000000.0", "rtt_cb_ms": "0",
                  "latency_rtt_ms_limit": "0", "exec_max_reject_rate": "1.0", "exec_max_p95_latency_ms": "1000000.0",
                  "exec_max_p95_slippage_points": "1000000.0", "exec_max_ewma_slippage_points": "1000000.0"},
}
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z")


def override_toml(text: str, overrides: dict[str, dict[str, str]]) -> str:
    """Replace ``key = value`` lines inside the named tables; every override must hit one line."""
    out, section, done = [], "", set()
    for line in text.splitlines():
        header = re.match(r"^\[([A-Za-z_]+)\]", line)
        if header:
            section = header.group(1)
        key = re.match(r"^([A-Za-z0-9_]+)\s*=", line)
        if key and key.group(1) in overrides.get(section, {}):
            out.append(f"{key.group(1)} = {overrides[section][key.group(1)]}")
            done.add((section, key.group(1)))
        else:
            out.append(line)
    missing = {(s, k) for s, keys in overrides.items() for k in keys} - done
    if missing:
        raise ValueError(f"bench overrides not found in the symbol file: {sorted(missing)}")
    return "\n".join(out) + "\n"


def bench_configs(root: Path) -> Path:
    """configs/ copied into ``root`` with ``BENCH_OVERRIDES`` in both symbol files; its system.toml."""
    configs = root / "configs"
    shutil.copytree(ROOT / "configs", configs)
    for name in ("xau.toml", "btc.toml"):
        (configs / name).write_text(override_toml((configs / name).read_text(), BENCH_OVERRIDES))
    return configs / "system.toml"


def system_toml(root: Path, telegram_url: str, speed: float) -> str:
    text = (ROOT / "configs" / "system.toml").read_text()
    for key, value in (("logs_dir", root / "Logs"), ("run_dir", root / "run"), ("state_dir", root / "state"),
                       ("data_dir", ROOT / "data")):
        text = re.sub(rf'^{key} = "[^"]*"', f'{key} = "{value}"', text, flags=re.M)
    text = text.replace('api_base_url = "https://api.telegram.org/bot"', f'api_base_url = "{telegram_url}"')
    return re.sub(r"^speed = [0-9.]+", f"speed = {speed}", text, flags=re.M)


@dataclass
class PipelineResult:
    latencies_ms: list[float]
    signals_per_s: float
    replayed_minutes: float
    startup_s: dict[str, float]
    rss_mb: dict[str, dict[str, float]] = field(default_factory=dict)  # "min10" / "min60" / "end" -> service
    stages_ms: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # see ``stages``


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def first_analysis_at(log: Path) -> float | None:
    """Wall time (epoch s) of the FIRST_ANALYSIS_MARKER line in a service log, from its own timestamp."""
    if not log.exists():
        return None
    for line in log.read_text(errors="replace").splitlines():
        if FIRST_ANALYSIS_MARKER in line and (stamp := LOG_TIME.match(line)):
            return timegm(time.strptime(stamp.group(1), "%Y-%m-%dT%H:%M:%S")) + int(stamp.group(2)) / 1000
    return None


class Probe:
    """Reads the gateway's stamp file as it grows and joins each bar's publication with its order_send."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.bars: dict[str, float] = {}  # bar tag ("XAU1752080400") -> published (encode) time
        self.first_bar_time: int | None = None
        self.last_bar_time = 0
        self.latencies: list[float] = []
        self.first_order_at: float | None = None
        self.last_order_at = 0.0
        self.seen: set[str] = set()

    def read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open() as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            kind, kind_of, tag, at = line.split()
            if (kind, kind_of) == ("send", "Bar"):
                self.bars[tag] = float(at)
                self.first_bar_time = self.first_bar_time or bar_time_of(tag)
                self.last_bar_time = max(self.last_bar_time, bar_time_of(tag))
            elif (kind, kind_of) == ("recv", "OrderSendRequest"):
                if tag in self.seen or tag not in self.bars:
                    continue  # a resend of the bar's order, or not one of ours
                self.seen.add(tag)
                self.latencies.append((float(at) - self.bars[tag]) * 1000)
                self.first_order_at = self.first_order_at or float(at)
                self.last_order_at = float(at)

    @property
    def replayed_minutes(self) -> float:
        return 0.0 if self.first_bar_time is None else (self.last_bar_time - self.first_bar_time) / 60


# The path of one bar's order through the services, as (service, "send"/"recv", message type) stamps.
PATH = (("gateway_mt5", "send", "Bar"), ("strategy", "recv", "Bar"), ("strategy", "send", "Signal"),
        ("risk", "recv", "Signal"), ("risk", "send", "OrderPlan"), ("executor", "recv", "OrderPlan"),
        ("executor", "send", "OrderSendRequest"), ("gateway_mt5", "recv", "OrderSendRequest"))
TOTAL = "total"
STAGES = ("bar: gateway -> strategy", "strategy: analysis, signal", "signal: strategy -> risk",
          "risk: rules, sizing, commit, plan", "plan: risk -> executor", "executor: journal, request",
          "request: executor -> gateway")


def stages(bench_dir: Path, orders: int) -> dict[str, dict[str, list[float]]]:
    """Milliseconds spent in each stage (``STAGES``) and in all (``TOTAL``) by the first and the second order
    of the bars that gave two, from every service's stamp file (shared/stamps.py), among the first ``orders``
    orders. Both symbols close their M1 bar together and the executor sends one order at a time, so the
    second waits for the first's round trip: where the time goes, not a target."""
    stamps: dict[str, dict[tuple[str, str, str], float]] = {}
    for path in bench_dir.glob("stamps-*.txt"):
        service = path.stem.removeprefix("stamps-")
        service = "strategy" if service.startswith("strategy_") else service
        for line in path.read_text().splitlines():
            if len(fields := line.split()) != 4:
                continue  # the line a running service is writing right now
            kind, kind_of, tag, at = fields
            stamps.setdefault(tag, {}).setdefault((service, kind, kind_of), float(at))  # the first of resends
    chains = {tag: [found[step] for step in PATH] for tag, found in stamps.items() if all(s in found for s in PATH)}
    chosen = sorted(chains.items(), key=lambda item: item[1][-1])[:orders]
    by_bar_time: dict[int, list[list[float]]] = {}
    for tag, chain in chosen:
        by_bar_time.setdefault(bar_time_of(tag), []).append(chain)
    out: dict[str, dict[str, list[float]]] = {"first": {}, "second": {}}
    for chains_of_bar in by_bar_time.values():
        if len(chains_of_bar) != 2:
            continue
        for label, chain in zip(("first", "second"), sorted(chains_of_bar, key=lambda c: c[-1]), strict=True):
            for name, start, end in zip(STAGES, chain, chain[1:], strict=False):  # 7 stages between 8 stamps
                out[label].setdefault(name, []).append((end - start) * 1000)
            out[label].setdefault(TOTAL, []).append((chain[-1] - chain[0]) * 1000)
    return out


def supervisor(root: Path) -> Any:
    password = (root / "run" / "supervisor.secret").read_text().strip()
    transport = SupervisorTransport("portfolio", password, f"unix://{root / 'run' / 'supervisor.sock'}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor


def pids(root: Path) -> dict[str, int]:
    try:
        return {p["name"]: p["pid"] for p in supervisor(root).getAllProcessInfo() if p["statename"] == "RUNNING"}
    except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
        return {}


def run_pipeline(root: Path, signals: int, speed: float, timeout_s: float) -> PipelineResult:
    configs = bench_configs(root).parent
    telegram = FakeTelegramServer(token=TOKEN).start()
    (configs / "system.toml").write_text(system_toml(root, telegram.base_url, speed))
    bench_dir = root / "bench"
    bench_dir.mkdir()
    env = {**os.environ, "BOT_TOKEN": TOKEN, "ADMIN_ID": str(ADMIN_ID), "PORTFOLIO_ENV_FILE": str(root / "absent.env"),
           BENCH_DIR_VARIABLE: str(bench_dir), EVERY_BAR_VARIABLE: "1"}
    console = (root / "main.console").open("wb")
    launched = time.time()
    process = subprocess.Popen([sys.executable, "main.py", "--config", str(configs / "system.toml")], cwd=ROOT,
                               env=env, stdout=console, stderr=subprocess.STDOUT, start_new_session=True)
    probe = Probe(bench_dir / FILE_PATTERN.format(service="gateway_mt5"))
    rss: dict[str, dict[str, float]] = {}
    running: dict[str, int] = {}
    try:
        deadline = time.monotonic() + timeout_s
        while len(probe.latencies) < signals:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{len(probe.latencies)} of {signals} signals measured before the deadline; "
                                   f"see {root}/Logs")
            time.sleep(0.1)
            probe.read()
            if len(running) < len(SERVICES):
                running = pids(root)
            for label, minute in (("min10", 10), ("min60", 60)):
                if label not in rss and probe.replayed_minutes >= minute and len(running) == len(SERVICES):
                    rss[label] = {name: rss_mb(pid) for name, pid in running.items()}
        rss["end"] = {name: rss_mb(pid) for name, pid in pids(root).items()}
        started = {name: first_analysis_at(root / "Logs" / f"{name}.log") for name in ("strategy_xau", "strategy_btc")}
        startup = {name: (at - launched if at is not None else float("nan")) for name, at in started.items()}
        span = probe.last_order_at - (probe.first_order_at or probe.last_order_at)
        rate = (len(probe.latencies) - 1) / span if span > 0 else 0.0
        return PipelineResult(probe.latencies[:signals], rate, probe.replayed_minutes, startup, rss,
                              stages(bench_dir, signals))
    finally:
        subprocess.run([sys.executable, "main.py", "--config", str(configs / "system.toml"), "ctl", "shutdown"],
                       cwd=ROOT, env=env, capture_output=True, timeout=60)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        console.close()
        telegram.stop()


def print_stages(stages_ms: dict[str, dict[str, list[float]]]) -> None:
    first, second = stages_ms["first"], stages_ms["second"]
    totals = {label: bare_chain.describe(stages_ms[label][TOTAL]) for label in ("first", "second")}
    print(f"  of which bars with two orders (n={totals['first']['n']:.0f}): first p50={totals['first']['p50_ms']:.3f} "
          f"ms p99={totals['first']['p99_ms']:.3f} ms, second (after the first's round trip) "
          f"p50={totals['second']['p50_ms']:.3f} ms p99={totals['second']['p99_ms']:.3f} ms")
    print("  where their time goes, p50 ms per stage (stamps at each send and receive, shared/stamps.py):")
    for name in STAGES:
        print(f"    {name:36s} first {statistics.median(first[name]):6.3f}   "
              f"second {statistics.median(second[name]):6.3f}")
    hops = [name for name in STAGES if "->" in name]
    for label, picked in (("the four hops", hops), ("the services' work", [n for n in STAGES if n not in hops])):
        print(f"    {'sum, ' + label:36s} first {sum(statistics.median(first[n]) for n in picked):6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--speed", type=float, default=600.0, help="replay speed (600: 10 M1 bars/s per symbol)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--keep", action="store_true", help="keep the private directory (logs) afterwards")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--parent", type=Path, help="make the private directory here (e.g. /dev/shm: no fsync cost)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_pipeline_", dir=args.parent))
    try:
        result = run_pipeline(root, args.signals, args.speed, args.timeout)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    pipeline = bare_chain.describe(result.latencies_ms)
    rate = round(result.signals_per_s) or 20
    floor = bare_chain.describe(bare_chain.run(args.signals, rate, "ipc"))
    print(f"pipeline (6 services, supervisord, sim x{args.speed:g}, ipc, {result.signals_per_s:.1f} signals/s): "
          f"n={pipeline['n']:.0f} p50={pipeline['p50_ms']:.3f} ms p99={pipeline['p99_ms']:.3f} ms "
          f"max={pipeline['max_ms']:.3f} ms")
    if result.stages_ms.get("first"):
        print_stages(result.stages_ms)
    print(f"bare 4-process chain (ipc, {rate} msg/s): n={floor['n']:.0f} p50={floor['p50_ms']:.3f} ms "
          f"p99={floor['p99_ms']:.3f} ms max={floor['max_ms']:.3f} ms")
    print(f"ratio pipeline / floor: p50 {pipeline['p50_ms'] / floor['p50_ms']:.2f}x (target <= 1.5x), "
          f"p99 {pipeline['p99_ms'] / floor['p99_ms']:.2f}x (target <= 2x)")
    print("start-up to the first analysed bar: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.startup_s.items()))
    for label, sizes in result.rss_mb.items():
        print(f"RSS {label}: " + ", ".join(f"{k} {v:.1f} MB" for k, v in sorted(sizes.items()))
              + f"; total {sum(sizes.values()):.1f} MB")
    if args.json:
        args.json.write_text(json.dumps({"pipeline": pipeline, "floor": floor, "floor_rate": rate,
                                         "speed": args.speed, **asdict(result), "latencies_ms": None,
                                         "stages_ms": None}, indent=1))


if __name__ == "__main__":
    main()
