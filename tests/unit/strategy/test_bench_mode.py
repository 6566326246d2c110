"""The benchmark switches (``make bench``): off by default, and when on they do what bench_pipeline.py needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.gateway_mt5.core import BENCH_DIR_VARIABLE, GatewayCore, LatencyProbe
from services.gateway_mt5.runner import make_broker
from shared import mt5
from shared.clock import FakeClock
from shared.messages import Bar, OrderSendReply, OrderSendRequest, TradeRequest
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


def test_the_gateway_probe_is_off_by_default_and_records_bars_and_orders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.delenv(BENCH_DIR_VARIABLE, raising=False)
    assert GatewayCore(make_broker(CONFIG, clock), CONFIG.system.gateway, clock).probe is None
    monkeypatch.setenv(BENCH_DIR_VARIABLE, str(tmp_path))
    core = GatewayCore(make_broker(CONFIG, clock), CONFIG.system.gateway, clock)
    assert core.connect()
    clock.advance(1.0)
    m1 = [m for _, m in core.poll() if isinstance(m, Bar) and m.timeframe == "M1"]
    order = TradeRequest(action=mt5.TRADE_ACTION_DEAL, symbol=BTC, volume=0.01, type=mt5.ORDER_TYPE_BUY,
                         magic=777001, comment="BTC1752080400b-1", type_filling=mt5.ORDER_FILLING_FOK)
    assert isinstance(core.handle_request("executor", OrderSendRequest(ts=0, request=order)), OrderSendReply)
    lines = [line.split() for line in (tmp_path / LatencyProbe.FILE_NAME).read_text().splitlines()]
    assert m1 and [(kind, a, int(b)) for kind, a, b, _ in lines[:-1]] == [("bar", b.symbol, b.time) for b in m1]
    assert lines[-1][:2] == ["order", "BTC1752080400b-1"] and float(lines[-1][2]) >= float(lines[0][3])
