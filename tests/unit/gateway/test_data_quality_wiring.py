"""Broken market data through the real gateway core, and what risk does with the heartbeat it then gets.

The terminal is the fake MetaTrader5 module over the simulator, with one of gold's rates broken the way a
broker or bridge can break it (high below low, a zero or NaN price, a repeated or missing minute, a price
that stops moving); the gateway core polls it through the real TerminalBroker, and a real RiskCore gets
the core's own heartbeats and a signal per symbol. Clocks are FakeClocks moved with the market: no sleeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from services.gateway_mt5.core import GatewayCore
from services.gateway_mt5.data_quality import DataQuality
from services.gateway_mt5.hours import MarketHours, MarketSchedule
from services.gateway_mt5.sim.broker import SimBroker
from services.gateway_mt5.sim.config import SimConfig
from services.gateway_mt5.sim.history import load_m1
from services.gateway_mt5.terminal.adapter import TerminalBroker
from services.risk.core import RiskCore
from services.risk.store import RiskStore
from shared.clock import FakeClock
from shared.config import GatewaySection, load_config
from shared.messages import Bar, GatewayHeartbeat, HistoryReply, HistoryRequest
from tests.fakes.fake_mt5 import FakeMetaTrader5
from tests.unit.gateway.venues import CREDENTIALS, settings
from tests.unit.risk.helpers import only_plan, ready, refused_by, rejections, signal
from tests.unit.sim.helpers import DATA, T0, Row, broker, write_csv

ROOT = Path(__file__).resolve().parents[3]
GOLD, BTC = "XAUUSDm", "BTCUSDm"
BROKEN = T0 + 12 * 60  # 10:12 UTC on a Tuesday: gold open, inside the M5 window 10:10-10:15
Rates = Any  # a copy_rates_* structured array


def drifting(price: float, count: int) -> list[Row]:
    """Bars rising a little each minute: clean data (flat bars in a row are a frozen feed)."""
    return [(price + k, price + k + 1, price + k - 1, price + k + 0.5) for k in range(count)]


def high_below_low(rates: Rates, at: np.ndarray) -> Rates:
    rates["high"][at], rates["low"][at] = rates["low"][at] - 1, rates["high"][at]
    return rates


def zero_open(rates: Rates, at: np.ndarray) -> Rates:
    rates["open"][at] = 0.0
    return rates


def nan_close(rates: Rates, at: np.ndarray) -> Rates:
    rates["close"][at] = math.nan
    return rates


def repeated(rates: Rates, at: np.ndarray) -> Rates:
    """The closed minute twice in one answer (not while it is the forming bar, the last row)."""
    if not at.any() or at[-1]:
        return rates
    return np.insert(rates, np.flatnonzero(at), rates[at])


def missing(rates: Rates, at: np.ndarray) -> Rates:
    return rates[~at]


def frozen(rates: Rates, at: np.ndarray) -> Rates:
    """Seven minutes from BROKEN at one price, high = low (``at`` is ignored: the run is wider)."""
    run = (rates["time"] >= BROKEN) & (rates["time"] < BROKEN + 7 * 60)
    for column in ("open", "high", "low", "close"):
        rates[column][run] = 3333.0
    return rates


class BrokenTerminal(FakeMetaTrader5):
    """The fake terminal, with gold's M1 rate at BROKEN broken by ``breaks`` in every answer, as a broker's
    bad record would be (fault injection on the external package, not a stand-in for our code)."""

    breaks: Callable[[Rates, np.ndarray], Rates] = staticmethod(lambda rates, at: rates)

    def copy_rates_from_pos(self, symbol: str, timeframe: int, start_pos: int, count: int) -> Any:
        rates = super().copy_rates_from_pos(symbol, timeframe, start_pos, count)
        if rates is None or symbol != GOLD or timeframe != self.TIMEFRAME_M1:
            return rates
        return type(self).breaks(rates.copy(), rates["time"] == BROKEN)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Callable[[Callable[[Rates, np.ndarray], Rates]], tuple[GatewayCore, Any]]]:
    """``gateway(breaks)`` -> (GatewayCore over a TerminalBroker over BrokenTerminal, move(t))."""
    made: list[TerminalBroker] = []

    def factory(breaks: Callable[[Rates, np.ndarray], Rates]) -> tuple[GatewayCore, Any]:
        sim = broker(tmp_path, xau=drifting(3300.0, 60), btc=drifting(100_000.0, 60))
        terminal = type("Terminal", (BrokenTerminal,), {"breaks": staticmethod(breaks)})(
            sim, login=CREDENTIALS.login, password=CREDENTIALS.password, server=CREDENTIALS.server)
        clock = FakeClock(sim.now)
        adapter = TerminalBroker(settings(tmp_path, "mt5"), CREDENTIALS, lambda: terminal, clock)
        made.append(adapter)
        core = GatewayCore(adapter, GatewaySection(), clock)
        assert core.connect()

        def move(t: float) -> list[Bar]:
            terminal.advance_to(t)
            clock.advance(max(0.0, t - clock.now()))
            return [bar for _, bar in core.poll() if isinstance(bar, Bar)]

        return core, move

    yield factory
    for adapter in made:
        adapter.close()


def risk_core(tmp_path: Path) -> RiskCore:
    config = load_config(ROOT / "configs" / "system.toml")
    config = config.model_copy(update={"system": config.system.model_copy(update={
        "paths": config.system.paths.model_copy(update={"state_dir": tmp_path})})})
    return ready(RiskCore(config, RiskStore(tmp_path / "risk.sqlite", sync="off"), FakeClock(start=0.0)), ts=T0)


def beat(core: GatewayCore) -> GatewayHeartbeat:
    message = core.heartbeat()[1]
    assert isinstance(message, GatewayHeartbeat)
    return message


class Case(NamedTuple):
    breaks: Callable[[Rates, np.ndarray], Rates]
    reason: str
    published: bool  # whether the broken minute's bar still goes out (real market data)
    m5_count: int | None  # m1_count of gold's M5 bar 10:10-10:15 around it


CASES = {
    "high_below_low": Case(high_below_low, "bad_bar", False, 4),
    "zero_price": Case(zero_open, "zero_price", False, 4),
    "nan": Case(nan_close, "bad_bar", False, 4),
    "repeated": Case(repeated, "duplicate_bar", True, None),  # the first copy is the real bar: window whole
    "missing": Case(missing, "gap", False, 4),
    "frozen": Case(frozen, "frozen", True, None),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_broken_bar_makes_the_heartbeat_not_ok_and_risk_refuses_until_the_stream_recovers(
    gateway: Any, tmp_path: Path, case: Case,
) -> None:
    breaks, reason, published, m5_count = case
    core, move = gateway(breaks)
    risk = risk_core(tmp_path)
    bars: list[Bar] = []
    first_bad: GatewayHeartbeat | None = None
    refused: list[str] = []
    for minute in range(2, 31):
        bars += move(T0 + 60 * minute + 30)
        heartbeat = beat(core)
        risk.handle(heartbeat)
        if first_bad is None and not heartbeat.symbols[GOLD].ok:
            first_bad = heartbeat
            last_gold = max(bar.time for bar in bars if bar.symbol == GOLD and bar.timeframe == "M1")
            last_btc = max(bar.time for bar in bars if bar.symbol == BTC and bar.timeframe == "M1")
            out = risk.handle(signal(GOLD, bar_time=last_gold, ts=heartbeat.ts))
            refused.append(refused_by(out))
            refused += [r.detail for r in rejections(out)]
            btc = risk.handle(signal(BTC, bar_time=last_btc, ts=heartbeat.ts, spread_points=1000))
            assert only_plan(btc).symbol == BTC  # the other symbol's stream is fine: it trades
    assert first_bad is not None, "the broken bar never showed in the heartbeat"
    assert first_bad.symbols[GOLD].reason == reason and first_bad.symbols[GOLD].market_open
    assert refused == ["data_stale", reason]
    assert core.quality.counts(GOLD) == ({reason: 2} if reason == "frozen" else {reason: 1})
    assert core.quality.counts(BTC) == {}
    gold_m1 = [bar.time for bar in bars if bar.symbol == GOLD and bar.timeframe == "M1"]
    assert gold_m1 == sorted(set(gold_m1)) and gold_m1[-1] >= T0 + 28 * 60  # no stall, no repeat
    assert (BROKEN in gold_m1) is published
    [m5] = [bar for bar in bars if bar.symbol == GOLD and bar.timeframe == "M5" and bar.time == T0 + 600]
    assert m5.m1_count == m5_count
    assert all(bar.m1_count is None for bar in bars if bar.timeframe == "M5" and bar.time >= T0 + 900)
    final = beat(core)
    assert final.symbols[GOLD].ok and final.symbols[GOLD].reason == "ok"  # recovered after clean bars
    risk.handle(final)
    later = max(t for t in gold_m1)
    assert only_plan(risk.handle(signal(GOLD, bar_time=later, ts=final.ts))).symbol == GOLD


def test_a_history_request_leaves_a_broken_rate_out_instead_of_failing(gateway: Any) -> None:
    core, move = gateway(high_below_low)
    move(T0 + 20 * 60 + 30)
    reply = core.handle_request("strategy_xau", HistoryRequest(ts=0, symbol=GOLD, timeframe="M1", count=30))
    assert isinstance(reply, HistoryReply)
    times = [bar.time for bar in reply.bars]
    assert BROKEN not in times and BROKEN - 60 in times and BROKEN + 60 in times


def test_a_gap_in_the_simulators_data_is_reported_and_the_m5_around_it_marked(tmp_path: Path) -> None:
    """The sim path: a file missing three open minutes (10:21-10:23) replays through the core like a live gap."""
    hole = {T0 + 60 * k for k in (21, 22, 23)}
    gold = write_csv(tmp_path / "gold.csv", drifting(3300.0, 40))
    lines = gold.read_text().splitlines()
    gold.write_text("\n".join([lines[0], *lines[1:22], *lines[25:]]) + "\n")  # data lines 22-24 = 10:21-10:23
    sim = broker(tmp_path, xau=[], btc=drifting(100_000.0, 40), max_bars_per_poll=1,
                 symbols={GOLD: {"data": str(gold)}})
    core = GatewayCore(sim, GatewaySection(), FakeClock())
    assert core.connect()
    reasons: dict[int, str] = {}
    bars: list[Bar] = []
    while not sim.finished:
        bars += [bar for _, bar in core.poll() if isinstance(bar, Bar) and bar.symbol == GOLD]
        reasons[int(core.market_now)] = beat(core).symbols[GOLD].reason
    m1 = [bar.time for bar in bars if bar.timeframe == "M1"]
    assert not hole & set(m1) and T0 + 24 * 60 in m1
    assert reasons[T0 + 25 * 60] == "gap"  # the bar of 10:24 closed at 10:25, after the hole
    assert reasons[T0 + 27 * 60] == "gap" and reasons[T0 + 28 * 60] == "ok"  # three clean bars later
    assert core.quality.counts(GOLD) == {"gap": 1}
    marked = {(bar.timeframe, bar.time): bar.m1_count for bar in bars if bar.m1_count is not None}
    # 10:20-10:25 had 10:20 and 10:24; the replay started at 10:01, so the first windows were never whole
    assert marked == {("M5", T0 + 1200): 2, ("M15", T0 + 900): 12, ("M5", T0): 4, ("M15", T0): 14}


def test_the_m5_bar_a_stale_feed_closed_early_is_marked_partial(tmp_path: Path) -> None:
    """Bars held back by a stale feed arrive after their M5 window closed: that bar is partial."""
    stale = {"symbol": BTC, "start": "2025-07-15T10:12:00", "end": "2025-07-15T10:19:00"}
    sim = broker(tmp_path, xau=drifting(3300.0, 30), btc=drifting(100_000.0, 30), max_bars_per_poll=1,
                 faults={"stale": [stale]})
    core = GatewayCore(sim, GatewaySection(), FakeClock())
    assert core.connect()
    bars: list[Bar] = []
    while not sim.finished:
        bars += [bar for _, bar in core.poll() if isinstance(bar, Bar) and bar.symbol == BTC]
    m1 = [bar.time for bar in bars if bar.timeframe == "M1"]
    assert m1 == [T0 + 60 * k for k in range(1, 30)]  # every minute published once, late ones included
    m5 = {bar.time: bar.m1_count for bar in bars if bar.timeframe == "M5"}
    assert m5[T0 + 600] == 2  # 10:10 and 10:11 only: 10:12-10:14 came after the window had closed
    assert m5[T0 + 300] is None and m5[T0 + 900] is None and m5[T0 + 1200] is None
    assert m5[T0] == 4  # the replay started at 10:01: the first window was never whole
    assert core.quality.counts(BTC) == {}  # late is not missing: no gap


@pytest.mark.parametrize(("edge_minutes", "gaps"), [(5, 0), (0, 24)])
def test_the_shipped_gold_data_shows_the_brokers_own_break_not_gaps(edge_minutes: int, gaps: int) -> None:
    """Exness closes gold at 20:57-20:59 and reopens at 22:02 (22:05 on Sundays), a few minutes either side
    of the configured 21:00-22:00 break: 24 stretches in the month. They are the broker's hours, not a
    broken feed, and the edge tolerance keeps them from being reported as gaps; bitcoin has none."""
    schedule = MarketSchedule(MarketHours())
    dq = DataQuality(lambda symbol, t: schedule.is_open(t), edge_minutes=edge_minutes)
    history = load_m1(DATA / "XAUUSDm_M1_2025-07-09_2025-08-12.csv.gz")
    found = [dq.check(GOLD, t, (o, h, lo, c)) for t, o, h, lo, c in zip(
        history.time.tolist(), history.open.tolist(), history.high.tolist(), history.low.tolist(),
        history.close.tolist(), strict=True)]
    assert dq.counts(GOLD) == ({"gap": gaps} if gaps else {})
    reopen = {t % 86_400 // 60 for t, problem in zip(history.time.tolist(), found, strict=True) if problem}
    assert reopen <= {22 * 60 + 2, 22 * 60 + 5}  # every one of them is the first bar after a break


def test_the_shipped_history_through_the_gateway_is_clean_and_unmarked() -> None:
    config = SimConfig(speed=0, max_bars_per_poll=500, initial_balance=100_000)
    sim = SimBroker(config, FakeClock(), DATA)
    core = GatewayCore(sim, GatewaySection(), FakeClock())
    assert core.connect()
    marked: list[Bar] = []
    while not sim.finished:
        marked += [m for _, m in core.poll() if isinstance(m, Bar) and m.m1_count is not None]
    assert core.quality.summary() == ""
    assert [(bar.symbol, bar.timeframe) for bar in marked] == []


def test_the_counters_are_logged_when_they_change_and_a_long_episode_not_every_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dq = DataQuality(lambda symbol, t: True)
    lines = caplog.records

    def counters() -> list[str]:
        return [r.getMessage() for r in lines if r.getMessage().startswith("data quality counters")]

    with caplog.at_level("WARNING", logger="services.gateway_mt5.data_quality"):
        for k in range(3):
            dq.check(GOLD, T0 + 60 * k, (3300.0 + k, 3301.0 + k, 3299.0 + k, 3300.5 + k))
        dq.log_if_changed(T0 + 180)
        assert counters() == []  # nothing counted yet
        for k in range(3, 20):  # seventeen flat minutes at one price: frozen from the sixth on
            dq.check(GOLD, T0 + 60 * k, (3302.5, 3302.5, 3302.5, 3302.5))
            dq.log_if_changed(T0 + 60 * (k + 1))
        assert counters() == ["data quality counters: XAUUSDm: frozen=1",  # a new problem: at once (10:08)
                              "data quality counters: XAUUSDm: frozen=6",  # then every 300 market seconds
                              "data quality counters: XAUUSDm: frozen=11"]
        dq.check(GOLD, T0 + 60 * 20, (0.0, 3301.0, 3299.0, 3300.0))
        dq.log_if_changed(T0 + 60 * 21)
        assert counters()[-1] == "data quality counters: XAUUSDm: frozen=13 zero_price=1"  # new: at once
