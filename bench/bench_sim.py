"""Replay speed of the simulated broker: M1 bars per second, as fast as possible (speed 0).

Run: ``.venv/bin/python bench/bench_sim.py`` (a few seconds; prints one line per scenario).

Both shipped symbols (XAUUSDm and BTCUSDm, 2025-07-09 to 2025-08-12) replay on one clock through
``SimBroker.poll()``, which returns real ``Bar`` messages, the latest tick per symbol and the exit
deals. Scenarios: no position open; and a few open positions (a buy and a sell per symbol, SL/TP a
few ATRs away, re-opened whenever one closes, so the tick path and level checks really run). Loading
the history is timed separately. Target: >= 200,000 M1 bars per second per core with positions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.gateway_mt5.sim.broker import SimBroker  # noqa: E402  (after the path set-up)
from services.gateway_mt5.sim.config import SimConfig  # noqa: E402
from shared import mt5  # noqa: E402
from shared.messages import TradeRequest  # noqa: E402

DISTANCE = {"XAUUSDm": (3.0, 3), "BTCUSDm": (400.0, 2)}  # SL/TP distance in USD, digits


class StoppedClock:
    """Pacing is off at speed 0; the clock is never read for decisions."""

    def monotonic(self) -> float:
        return 0.0


def open_position(sim: SimBroker, symbol: str, side: int) -> None:
    """A 0.01-lot position with SL/TP DISTANCE away from the current bid."""
    tick = sim.tick(symbol)
    if tick is None or not sim.market_open(symbol):
        return
    distance, digits = DISTANCE[symbol]
    request = TradeRequest(
        action=mt5.TRADE_ACTION_DEAL, symbol=symbol, volume=0.01,
        type=mt5.ORDER_TYPE_BUY if side > 0 else mt5.ORDER_TYPE_SELL, type_filling=mt5.ORDER_FILLING_FOK,
        sl=round(tick.bid - side * distance, digits), tp=round(tick.bid + side * distance, digits),
        comment="bench",
    )
    sim.order_send(request)


def keep_positions(sim: SimBroker) -> None:
    """Top the book up to one buy and one sell per symbol."""
    held = {(p.symbol, p.side) for p in sim.positions()}
    for symbol in DISTANCE:
        for side, name in ((1, "buy"), (-1, "sell")):
            if (symbol, name) not in held:
                open_position(sim, symbol, side)


def run(max_bars: int, with_positions: bool) -> tuple[int, float, int]:
    """One full replay; (bars, seconds in poll(), deals)."""
    sim = SimBroker(SimConfig(speed=0, max_bars_per_poll=max_bars, initial_balance=1e6), StoppedClock(),
                    ROOT / "data")
    sim.connect()
    bars = deals = 0
    spent = 0.0
    if with_positions:
        keep_positions(sim)
    while not sim.finished:
        begin = time.perf_counter()
        update = sim.poll()
        spent += time.perf_counter() - begin
        bars += len(update.bars)
        deals += len(update.deals)
        if with_positions and update.deals:
            keep_positions(sim)
    return bars, spent, deals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="replays per scenario (median reported)")
    parser.add_argument("--max-bars", type=int, default=1000, help="max_bars_per_poll at speed 0")
    args = parser.parse_args()
    begin = time.perf_counter()
    SimBroker(SimConfig(speed=0), StoppedClock(), ROOT / "data")
    print(f"load both symbols + build: {time.perf_counter() - begin:.3f} s")
    for label, with_positions in (("no positions", False), ("4 open positions, SL/TP re-armed", True)):
        rates, bars, deals = [], 0, 0
        for _ in range(args.repeat):
            bars, spent, deals = run(args.max_bars, with_positions)
            rates.append(bars / spent)
        print(f"{label:34s} {statistics.median(rates):>10,.0f} M1 bars/s  (median of {args.repeat}, "
              f"best {max(rates):,.0f}; {bars} bars, {deals} exit deals per replay)")


if __name__ == "__main__":
    main()
