"""Replay of the shipped history: nothing lost or duplicated, market hours honoured, pacing, ticks."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path

from services.gateway_mt5.aggregate import BarAggregator, BarArrays, aggregate, to_bars
from services.gateway_mt5.broker import MarketUpdate
from services.gateway_mt5.sim.broker import SimBroker
from services.gateway_mt5.sim.config import SimConfig
from services.gateway_mt5.sim.history import load_m1
from shared.clock import FakeClock
from shared.messages import Bar
from tests.unit.sim.helpers import BTC_FILE, DATA, XAU_FILE

FILES = {"XAUUSDm": XAU_FILE, "BTCUSDm": BTC_FILE}


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@functools.cache
def batch(symbol: str, timeframe: str) -> list[Bar]:
    history = load_m1(FILES[symbol])
    m1 = BarArrays(history.time, history.open, history.high, history.low, history.close,
                   history.tick_volume, history.tick_volume * 0 + (200 if symbol == "XAUUSDm" else 1000))
    minutes = {"M1": 1, "M5": 5, "M15": 15}[timeframe]
    return list(to_bars(aggregate(m1, minutes), symbol, timeframe))  # type: ignore[arg-type]


def key(bar: Bar) -> tuple[object, ...]:
    return (bar.symbol, bar.timeframe, bar.time, bar.open, bar.high, bar.low, bar.close, bar.tick_volume,
            bar.spread, bar.id, bar.ts)


def test_full_replay_loses_and_duplicates_no_bar_on_any_timeframe(replay_broker: SimBroker) -> None:
    sim = replay_broker
    start = sim.now
    warmup = {s: sim.history(s, "M1", 5000) for s in FILES}
    aggregator = BarAggregator(("M5", "M15"))
    emitted: list[Bar] = []
    higher: list[Bar] = []
    updates = 0
    while not sim.finished:
        update = sim.poll()
        updates += 1
        assert update.bars == sorted(update.bars, key=lambda b: (b.time, b.symbol != "XAUUSDm"))
        assert all(start < bar.close_time <= update.now for bar in update.bars)
        emitted.extend(update.bars)
        for bar in update.bars:
            higher.extend(aggregator.add(bar))
        higher.extend(aggregator.flush(update.now))
    assert updates > 100
    assert sim.poll().bars == []
    for symbol in FILES:
        expected = batch(symbol, "M1")
        got = [b for b in emitted if b.symbol == symbol]
        head = [b for b in expected if b.close_time <= start]
        assert [key(b) for b in warmup[symbol]] == [key(b) for b in head[-5000:]]
        assert [key(b) for b in got] == [key(b) for b in expected if b.close_time > start]
        for timeframe in ("M5", "M15"):
            want = [b for b in batch(symbol, timeframe) if b.time >= start and b.close_time <= sim.now]
            have = [b for b in higher if b.symbol == symbol and b.timeframe == timeframe]
            assert [key(b) for b in have] == [key(b) for b in want]
            assert [key(b) for b in sim.history(symbol, timeframe, 5000)] == [
                key(b) for b in batch(symbol, timeframe) if b.close_time <= sim.now
            ][-5000:]
    assert len(emitted) == sum(len(load_m1(f)) for f in FILES.values()) - sum(len(w) for w in warmup.values())


def test_gold_is_silent_and_closed_over_the_weekend_and_the_daily_break(replay_broker: SimBroker) -> None:
    sim = replay_broker
    seen_closed = 0
    t = utc("2025-07-11 20:40:00")  # Friday, through the weekend into Monday's break
    sim.advance_to(t - 60)
    while t <= utc("2025-07-14 22:20:00"):
        update: MarketUpdate = sim.advance_to(t)
        gold_open = sim.market_open("XAUUSDm")
        gold = [b.time for b in update.bars if b.symbol == "XAUUSDm"]
        gold += [x.time_msc for x in update.ticks if x.symbol == "XAUUSDm"]
        if not gold_open:
            seen_closed += 1
            assert gold == []
        assert sim.market_open("BTCUSDm")
        assert [b.symbol for b in update.bars].count("BTCUSDm") == 1
        t += 60
    closed_minutes = (utc("2025-07-13 22:00:00") - utc("2025-07-11 21:00:00")) / 60 + 60
    assert seen_closed == closed_minutes


def test_market_open_follows_the_schedule() -> None:
    expected = [
        ("2025-07-11 20:59:59", True), ("2025-07-11 21:00:00", False), ("2025-07-12 12:00:00", False),
        ("2025-07-13 21:59:59", False), ("2025-07-13 22:00:00", True), ("2025-07-15 20:59:00", True),
        ("2025-07-15 21:30:00", False), ("2025-07-15 22:00:00", True),
    ]
    sim = SimBroker(SimConfig(speed=0, start=datetime(2025, 7, 11, 20)), FakeClock(), DATA)
    sim.connect()
    for moment, is_open in expected:
        sim.advance_to(utc(moment))
        assert sim.market_open("XAUUSDm") is is_open, moment
        assert sim.market_open("BTCUSDm")


def test_speed_paces_market_time_by_the_clock() -> None:
    clock = FakeClock()
    sim = SimBroker(SimConfig(speed=60), clock, DATA)
    sim.connect()
    start = sim.now
    assert sim.poll().bars == []
    clock.advance(30)  # 30 s of wall time = 30 market minutes
    update = sim.poll()
    assert update.now == start + 1800
    assert [b.symbol for b in update.bars].count("BTCUSDm") == 30
    clock.advance(0.5)
    update = sim.poll()
    assert update.now == start + 1830 and update.bars == []


def test_only_the_latest_tick_per_symbol_is_reported(replay_broker: SimBroker) -> None:
    update = replay_broker.poll()
    assert sorted(t.symbol for t in update.ticks) == ["BTCUSDm", "XAUUSDm"]
    for tick in update.ticks:
        last = [b for b in update.bars if b.symbol == tick.symbol][-1]
        point = 0.001 if tick.symbol == "XAUUSDm" else 0.01
        assert tick.time_msc == (last.time + 59) * 1000
        assert tick.bid == last.close
        assert tick.ask == round(last.close + last.spread * point, 3 if tick.symbol == "XAUUSDm" else 2)


def test_start_time_and_warmup_history(tmp_path: Path) -> None:
    config = SimConfig(speed=0, start=datetime(2025, 7, 20, 12, 0), max_bars_per_poll=7)
    sim = SimBroker(config, FakeClock(), DATA)
    sim.connect()
    assert sim.now == utc("2025-07-20 12:00:00")
    gold = sim.history("XAUUSDm", "M15", 3)
    assert [b.time for b in gold] == [utc("2025-07-18 20:15:00"), utc("2025-07-18 20:30:00"),
                                      utc("2025-07-18 20:45:00")]
    assert sim.history("BTCUSDm", "M1", 1)[0].close_time == sim.now
    update = sim.poll()
    assert len(update.bars) == 7 and update.now == utc("2025-07-20 12:07:00")


def test_random_spread_is_seeded() -> None:
    def spreads(seed: int) -> list[int]:
        config = SimConfig.model_validate({
            "speed": 0, "symbols": {"BTCUSDm": {"spread": {"mode": "random", "min_points": 800,
                                                           "max_points": 1500, "seed": seed}}},
        })
        sim = SimBroker(config, FakeClock(), DATA)
        sim.connect()
        return [b.spread for b in sim.poll().bars]

    first = spreads(1)
    assert first == spreads(1) != spreads(2)
    assert min(first) >= 800 and max(first) <= 1500 and len(set(first)) > 100
