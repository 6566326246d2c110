"""The unvalidated construction of trusted outputs must equal pydantic's validated models."""

from __future__ import annotations

from pathlib import Path

from services.gateway_mt5.sim.trusted import construct
from shared.messages import Bar, Tick
from tests.unit.sim.helpers import T0, broker, flat


def test_construct_equals_validation() -> None:
    values = {"v": 1, "id": "XAUUSDm-M1-0", "ts": 60.0, "type": "bar", "symbol": "XAUUSDm", "timeframe": "M1",
              "time": 0, "open": 1.5, "high": 2.0, "low": 1.0, "close": 1.25, "tick_volume": 3, "spread": 200}
    built = construct(Bar, dict(values))
    assert built == Bar.model_validate(values)
    assert built.model_dump() == values and built.close_time == 60
    tick = {"v": 1, "id": "t", "ts": 1.0, "type": "tick", "symbol": "X", "time_msc": 1000, "bid": 1.0, "ask": 1.1}
    assert construct(Tick, dict(tick)) == Tick.model_validate(tick)


def test_replayed_bars_and_ticks_revalidate_unchanged(tmp_path: Path) -> None:
    sim = broker(tmp_path, xau=flat(3300.0, 10), btc=flat(100_000.0, 10))
    update = sim.advance_to(T0 + 600)
    assert update.bars and update.ticks
    for message in [*update.bars, *update.ticks, *sim.history("XAUUSDm", "M5", 2)]:
        assert type(message).model_validate(message.model_dump()) == message
