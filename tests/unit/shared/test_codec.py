"""The codec accepts exactly the valid messages of this protocol version and says why it refuses."""

from __future__ import annotations

import contextlib
import math

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.codec import MAX_FRAME_BYTES, DecodeError, decode, encode
from shared.messages import Bar, OrderLeg, OrderPlan, Signal


def bar(**changes: object) -> Bar:
    fields: dict[str, object] = dict(ts=1_752_080_460.0, symbol="XAUUSDm", timeframe="M1", time=1_752_080_400,
                                     open=3311.9, high=3312.0, low=3311.3, close=3311.4, tick_volume=12,
                                     spread=200)
    fields.update(changes)
    return Bar.model_validate(fields)


def raw(message: Bar, **changes: object) -> bytes:
    data = message.model_dump()
    data.update(changes)
    packed: bytes = msgpack.packb(data)
    return packed


def test_round_trip_keeps_every_field() -> None:
    plan = OrderPlan(ts=1.0, plan_id="XAU1752080400b", signal_id="s", symbol="XAUUSDm", side="buy",
                     price=3311.6, deviation_points=50, magic=777001,
                     legs=(OrderLeg(leg_id="XAU1752080400b-1", volume=0.11, sl=3309.0, tp=3312.6),),
                     confidence=0.86, regime="A", reasons=("M1 up",), expires_at=100.0)
    assert decode(encode(plan)) == plan
    one_bar = bar()
    assert decode(encode(one_bar)) == one_bar


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\xc1garbage", "not_msgpack"),
        (msgpack.packb([1, 2]), "not_a_map"),
        (msgpack.packb({"v": 2, "type": "bar"}), "bad_version"),
        (msgpack.packb({"v": 1, "type": "launch_rockets", "ts": 0}), "unknown_type"),
        (raw(bar(), high=math.nan), "invalid"),
        (raw(bar(), high=math.inf), "invalid"),
        (raw(bar(), low=-1.0), "invalid"),
        (raw(bar(), high=3300.0), "invalid"),  # high below open
        (raw(bar(), surprise=1), "invalid"),
        (raw(bar(), time=1_752_080_401), "invalid"),  # not aligned to the minute
        (b"\x00" * (MAX_FRAME_BYTES + 1), "oversize"),
    ],
)
def test_refuses_bad_frames_with_a_reason(frame: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(frame)
    assert caught.value.reason == reason


def test_signal_side_must_agree_with_strength() -> None:
    with pytest.raises(ValueError, match="side must agree"):
        Signal(ts=1, symbol="BTCUSDm", side="buy", net_norm=-0.4, confidence=0.8, bar_time=60, price=1.0,
               atr=1.0, spread_points=10, timeframes=("M1",))


@given(st.binary(max_size=512))
def test_random_bytes_never_escape_as_another_exception(frame: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(frame)
