"""The benchmark switches (``make bench``): off by default, and when on they do what bench_pipeline.py needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.gateway_mt5.core import GatewayCore
from services.gateway_mt5.runner import make_broker
from services.risk.core import plan_id_for
from shared import codec, mt5
from shared.clock import FakeClock
from shared.codec import decode, encode
from shared.messages import Bar, OrderSendRequest, TradeRequest, bar_tag
from shared.stamps import BENCH_DIR_VARIABLE, bar_time_of, install_from_environment, tag_of
from tests.unit.strategy.helpers import BTC, CONFIG, bar, feed, strategy


def test_every_analysed_bar_is_a_signal_in_bench_mode_only() -> None:
    def swing(n: int) -> float:
        return 20.0 if n % 2 else -20.0

    zigzag = [bar(BTC, n, 115_000.0 + swing(n), open_=115_000.0 - swing(n), span=5.0) for n in range(300)]
    normal, bench = strategy(BTC), strategy(BTC)
    bench.signal_every_bar = True
    assert feed(normal, zigzag) == []  # no direction: below the threshold on every bar
    signals = feed(bench, zigzag)
    analysed = zigzag[199:]  # M1 needs 200 bars before analysing
    assert [s.bar_time for s in signals] == [b.time for b in analysed]


def test_stamps_are_off_by_default_and_name_the_bar_of_each_message_on_the_order_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BENCH_DIR_VARIABLE, raising=False)
    assert install_from_environment("gateway_mt5") is None
    monkeypatch.setenv(BENCH_DIR_VARIABLE, str(tmp_path))
    stamps = install_from_environment("gateway_mt5")
    assert stamps is not None
    try:
        clock = FakeClock()
        core = GatewayCore(make_broker(CONFIG, clock), CONFIG.system.gateway, clock)
        assert core.connect()
        clock.advance(1.0)
        published = [m for _, m in core.poll() if isinstance(m, Bar)]
        for message in published:
            encode(message)  # what Publisher.publish does
        order = TradeRequest(action=mt5.TRADE_ACTION_DEAL, symbol=BTC, volume=0.01, type=mt5.ORDER_TYPE_BUY,
                             magic=777001, comment="BTC1752080400b-1", type_filling=mt5.ORDER_FILLING_FOK)
        decode(encode(OrderSendRequest(ts=0, request=order)))
        close = order.model_copy(update={"comment": "close #123", "position": 123})
        encode(OrderSendRequest(ts=0, request=close))  # not a leg of a bar's plan: no line
        encode(core.heartbeat()[1])  # off the order path: no line
    finally:
        codec.observe(None)
        stamps.close()
    lines = [line.split() for line in (tmp_path / "stamps-gateway_mt5.txt").read_text().splitlines()]
    m1 = [b for b in published if b.timeframe == "M1"]
    assert m1
    assert [tuple(line[:3]) for line in lines] == [
        *(("send", "Bar", bar_tag(b.symbol, b.time)) for b in m1),
        ("send", "OrderSendRequest", "BTC1752080400"), ("recv", "OrderSendRequest", "BTC1752080400")]
    times = [float(line[3]) for line in lines]
    assert times == sorted(times)


def test_a_plan_id_is_the_bar_tag_and_the_side() -> None:
    core = strategy(BTC)
    core.signal_every_bar = True
    signal = feed(core, [bar(BTC, n, 115_000.0 + n, span=5.0) for n in range(200)])[-1]
    assert plan_id_for(signal) == bar_tag(signal.symbol, signal.bar_time) + signal.side[0]
    assert tag_of(signal) == bar_tag(signal.symbol, signal.bar_time)
    assert bar_time_of(bar_tag(signal.symbol, signal.bar_time)) == signal.bar_time
    assert bar_time_of(bar_tag("US30", 1_752_080_400)) == 1_752_080_400  # a prefix ending in a digit: "US3"
