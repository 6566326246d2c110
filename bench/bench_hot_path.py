"""The services' own work on a bar's order path, in one process, without sockets or other processes.

Run: ``.venv/bin/python bench/bench_hot_path.py`` (about 30 s). ``--steps N`` replays N bar times.

The cores of the pipeline benchmark (``bench_pipeline.py``: its symbol settings, every analysed M1 bar a
signal) wired on the backtest's in-process bus (``backtest/engine.py``) over the shipped data. For each M1
bar that leads to an order it times what each service does between receiving and sending on that path,
with the wire codec on both ends as the runners have it:

- strategy: decode the bar, ``StrategyCore.handle`` (3 timeframes' indicators, detectors, votes, the
  signal with its reasons), encode the signal;
- risk: decode the signal, ``RiskCore.handle`` (every rule, three store queries, the sizing, the plan,
  one SQLite transaction; the backtest's store, ``synchronous=OFF``), encode the plan;
- executor: decode the plan, ``ExecutorCore.accept`` (the journal's transaction), encode the request;
- and what the second order of a bar waits for (both symbols close a bar together, and the executor keeps
  one broker-mutating request in flight): the gateway serving the first order_send (the simulator's fill,
  without its state file) and the executor taking the reply (journal, report), codec on every leg.

This is the floor of the services' work: warm caches, one process, no waiting for a core. The pipeline
latency target (p50 <= 1.5 x the bare chain's) leaves half the bare chain's p50 for all of it, and for
the extra cost of every hop; this script prints that margin beside the sum (the bare chain runs here at
the pipeline benchmark's rate, 20 messages a second).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# After the path set-up, so the script runs from anywhere.
import bare_chain  # noqa: E402
from bench_pipeline import bench_configs  # noqa: E402

from backtest.engine import Pipeline  # noqa: E402
from backtest.inputs import build_setup  # noqa: E402
from backtest.nodes import EXECUTOR_IDENTITY, RISK_IDENTITY  # noqa: E402
from shared.codec import decode, encode  # noqa: E402
from shared.messages import Bar, Message, OrderPlan, Signal  # noqa: E402

SYMBOLS = ["XAUUSDm", "BTCUSDm"]
FLOOR_RATE = 20.0  # messages a second: the rate bench_pipeline.py measures the pipeline and its floor at
STAGES = ("strategy: bar in, signal out", "risk: signal in, plan out", "executor: plan in, order_send out")
ROUND_TRIP = "order_send served, reply taken by the executor"  # what the second order of a bar waits for


def timed_path(pipeline: Pipeline) -> dict[str, list[float]]:
    """Replace each node's ``take`` with the same work timed (ms), counting only calls on an order's path."""
    times: dict[str, list[float]] = {stage: [] for stage in (*STAGES, ROUND_TRIP)}
    bus, clock = pipeline.bus, time.perf_counter

    def wire(message: Message) -> Message:
        return decode(encode(message))  # what the receiving runner gets from the sending runner's frame

    for node in pipeline.strategies:
        def take_bar(message: Message, core: Callable[[Message], list[Signal]] = node.core.handle) -> None:
            started = clock()
            signals = core(wire(message) if isinstance(message, Bar) else message)
            for signal in signals:
                encode(signal)
            if signals and isinstance(message, Bar):
                times[STAGES[0]].append((clock() - started) * 1e3)
            for signal in signals:
                bus.push(RISK_IDENTITY, signal)
        node.take = take_bar  # type: ignore[method-assign]

    risk, executor = pipeline.risk, pipeline.executor
    risk_take = risk.take

    def take_signal(message: Message) -> None:
        if not isinstance(message, Signal):
            risk_take(message)
            return
        started = clock()
        outgoing = risk.core.handle(wire(message))
        plans = [out.message for out in outgoing if out.channel == "executor"]
        for plan in plans:
            encode(plan)
        if plans:
            times[STAGES[1]].append((clock() - started) * 1e3)
        risk._route(outgoing)  # what RiskNode.take does after the core
    risk.take = take_signal  # type: ignore[method-assign]

    def take_plan(message: Message) -> None:
        if not isinstance(message, OrderPlan):
            return
        started = clock()
        reports = executor.core.accept(wire(message))  # type: ignore[arg-type]
        request = executor.core.next_request()
        if request is not None:
            encode(request)
            times[STAGES[2]].append((clock() - started) * 1e3)
        executor._route(reports)
        while (request := executor.core.next_request()) is not None:
            started = clock()
            reply = wire(pipeline.gateway.request(EXECUTOR_IDENTITY, wire(request)))
            reports = executor.core.on_reply(reply)  # type: ignore[arg-type]
            times[ROUND_TRIP].append((clock() - started) * 1e3)
            executor._route(reports)
    executor.take = take_plan  # type: ignore[method-assign]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6000, help="bar times replayed")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the replay's refusals and regime changes are not the figures
    with tempfile.TemporaryDirectory(prefix="bench-hot-") as scratch:
        setup = build_setup(bench_configs(Path(scratch)), SYMBOLS, ROOT / "data")
        pipeline = Pipeline(setup, Path(scratch) / "state")
        for node in pipeline.strategies:
            node.core.signal_every_bar = True
        try:
            pipeline.start()
            times = timed_path(pipeline)
            for _ in range(args.steps):
                if not pipeline.step():
                    break
        finally:
            pipeline.close()
    floor = bare_chain.describe(bare_chain.run(400, FLOOR_RATE, "ipc"))
    print(f"{'stage (in-process, codec both ends)':48s} {'n':>6s} {'p50 us':>8s} {'p99 us':>8s}")
    figures = {}  # stage -> bare_chain.describe of its times (ms)
    for stage in (*STAGES, ROUND_TRIP):
        if not times[stage]:
            raise SystemExit(f"no order reached {stage!r} in {args.steps} steps: replay more (--steps)")
        figures[stage] = bare_chain.describe(times[stage])
        note = "   (the sim without its state file)" if stage == ROUND_TRIP else ""
        print(f"{stage:48s} {len(times[stage]):6d} {figures[stage]['p50_ms'] * 1000:8.1f} "
              f"{figures[stage]['p99_ms'] * 1000:8.1f}{note}")
    total = sum(figures[stage]["p50_ms"] for stage in STAGES) * 1000
    margin = floor["p50_ms"] * 1000 * 0.5
    print(f"sum of the p50s: {total:.0f} us; the bare chain (ipc, {FLOOR_RATE:.0f} msg/s): "
          f"p50 {floor['p50_ms'] * 1000:.0f} us, "
          f"so the p50 <= 1.5x target leaves {margin:.0f} us for all the services' work and every hop's extra: "
          f"the work alone is {total / margin:.2f}x that")


if __name__ == "__main__":
    main()
