"""Broken market data is detected at the gateway and reported in the heartbeat reason; risk never trades on it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from services.gateway_mt5.core import GatewayCore
from services.gateway_mt5.data_quality import REASONS, DataQuality
from services.gateway_mt5.hours import MarketHours, MarketSchedule
from services.gateway_mt5.runner import make_broker
from services.gateway_mt5.sim.history import load_m1
from services.risk.core import RiskCore
from services.risk.store import RiskStore
from shared.clock import FakeClock
from shared.config import load_config
from shared.messages import ErrorReply, HistoryRequest, Message, PositionsRequest
from tests.unit.risk.helpers import T0, XAU, heartbeat, ready, refused_by, signal

ROOT = Path(__file__).resolve().parents[3]
GOLD = MarketSchedule(MarketHours())  # gold's Exness hours: the daily break and the weekend
T = 1_752_483_600  # Mon 2025-07-14 09:00 UTC, gold open


def quality() -> DataQuality:
    return DataQuality(lambda symbol, t: GOLD.is_open(t))


def feed(dq: DataQuality, start: int, count: int, price: float = 3300.0) -> list[str | None]:
    return [dq.check(XAU, start + 60 * i, (price + i, price + i + 1, price + i - 1, price + i + 0.5))
            for i in range(count)]


def test_a_clean_stream_is_ok() -> None:
    dq = quality()
    assert feed(dq, T, 10) == [None] * 10
    assert dq.status(XAU) == (True, "ok")


def test_a_missing_minute_while_open_is_a_gap_until_the_stream_recovers() -> None:
    dq = quality()
    feed(dq, T, 3)
    assert dq.check(XAU, T + 5 * 60, (3300, 3301, 3299, 3300)) == "gap"
    assert dq.status(XAU) == (False, "gap")
    feed(dq, T + 6 * 60, 2)
    assert dq.status(XAU) == (False, "gap")
    feed(dq, T + 8 * 60, 1)
    assert dq.status(XAU) == (True, "ok")
    assert dq.counts(XAU) == {"gap": 1}


def test_gold_s_daily_break_and_weekend_are_not_gaps() -> None:
    dq = quality()
    friday_close = 1_752_872_400  # Fri 2025-07-18 21:00 UTC (summer): the weekend starts
    feed(dq, friday_close - 5 * 60, 5)
    sunday_open = 1_753_045_200  # Sun 2025-07-20 22:00 UTC
    assert feed(dq, sunday_open, 3) == [None] * 3
    monday_break = 1_753_131_600  # Mon 2025-07-21 21:00 UTC: the one-hour break
    feed(dq, monday_break - 5 * 60, 5)
    assert feed(dq, monday_break + 3600, 3) == [None] * 3
    assert dq.status(XAU) == (True, "ok")


@pytest.mark.parametrize("symbol", ["XAUUSDm", "BTCUSDm"])
def test_the_shipped_history_shows_no_problem_but_real_gaps(symbol: str) -> None:
    """The sim's data has gold's breaks and weekends (not gaps); whatever else it shows must be a gap of an
    open market, never a duplicate, an impossible bar or a zero price."""
    config = load_config(ROOT / "configs" / "system.toml")
    history = load_m1(next((ROOT / "data").glob(f"{symbol}_M1_*.csv.gz")))
    hours = MarketHours(always_open=True) if symbol.startswith("BTC") else MarketHours()
    schedule = MarketSchedule(hours)
    dq = DataQuality(lambda s, t: schedule.is_open(t))
    found = [dq.check(symbol, int(t), (float(o), float(h), float(lo), float(c))) for t, o, h, lo, c in
             zip(history.time, history.open, history.high, history.low, history.close, strict=True)]
    problems = {p for p in found if p is not None}
    assert problems <= {"gap", "frozen"}, problems
    assert found.count("gap") < len(found) / 1000, "a closed market was taken for a gap"
    assert config.symbols[symbol].symbol.name == symbol


@pytest.mark.parametrize(("bar", "reason"), [
    ((3300, 3299, 3301, 3300), "bad_bar"),          # high < low
    ((3300, 3305, 3301, 3300), "bad_bar"),          # open below the low
    ((0.0, 3301, 3299, 3300), "zero_price"),
    ((3300, 3301, -1.0, 3300), "zero_price"),
    ((math.nan, 3301, 3299, 3300), "bad_bar"),
    ((3300, math.inf, 3299, 3300), "bad_bar"),
])
def test_an_impossible_bar_is_refused_and_reported(bar: tuple[float, float, float, float], reason: str) -> None:
    dq = quality()
    feed(dq, T, 2)
    assert dq.check(XAU, T + 120, bar) == reason
    assert dq.status(XAU) == (False, reason)


def test_a_repeated_or_older_bar_is_a_duplicate() -> None:
    dq = quality()
    feed(dq, T, 3)
    assert dq.check(XAU, T + 120, (3300, 3301, 3299, 3300)) == "duplicate_bar"
    assert dq.check(XAU, T, (3300, 3301, 3299, 3300)) == "duplicate_bar"
    assert dq.status(XAU) == (False, "duplicate_bar")
    assert feed(dq, T + 180, 3) == [None] * 3  # the stream goes on from its last good bar
    assert dq.status(XAU) == (True, "ok")


def test_a_price_that_stops_moving_is_frozen() -> None:
    dq = quality()
    feed(dq, T, 2)
    flat = [dq.check(XAU, T + 120 + 60 * i, (3300, 3300, 3300, 3300)) for i in range(7)]
    assert flat[:5] == [None] * 5 and flat[5:] == ["frozen", "frozen"]  # the first flat bar still moved
    assert dq.status(XAU) == (False, "frozen")


@pytest.mark.parametrize("reason", REASONS)
def test_risk_refuses_to_trade_on_each_reason(reason: str, tmp_path: Path) -> None:
    config = load_config(ROOT / "configs" / "system.toml")
    config = config.model_copy(update={"system": config.system.model_copy(update={
        "paths": config.system.paths.model_copy(update={"state_dir": tmp_path})})})
    clock = FakeClock(start=0.0)
    core = ready(RiskCore(config, RiskStore(tmp_path / "risk.sqlite", sync="off"), clock))
    core.handle(heartbeat(T0, ok=False, reason=reason))
    out = core.handle(signal(XAU))
    assert refused_by(out) == "data_stale"


@pytest.mark.parametrize("request_", [HistoryRequest(ts=0, symbol="NOPE", timeframe="M1", count=5),
                                      PositionsRequest(ts=0, symbol="NOPE")])
def test_a_request_for_an_unknown_symbol_is_an_error_reply_not_a_crash(request_: Message) -> None:
    config = load_config(ROOT / "configs" / "system.toml")
    clock = FakeClock()
    core = GatewayCore(make_broker(config, clock), config.system.gateway, clock)
    assert core.connect()
    reply = core.handle_request("strategy_xau", request_)
    assert isinstance(reply, ErrorReply) and reply.code == "unknown_symbol"
