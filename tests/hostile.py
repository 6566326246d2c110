"""Hostile frames for the fuzz tests: what a broken or malicious peer could put on any of our sockets.

Random bytes, truncated msgpack, maps of the wrong shape, unknown types and versions, and real messages
with one field made hostile (NaN, inf, negative, huge, the wrong type). Some mutations still make a
valid message (a negative P&L is allowed): the service must then simply handle it, so every sample
message is one that is harmless when valid (an expired plan, a stale signal).
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
from hypothesis import strategies as st

from shared.codec import MAX_FRAME_BYTES, encode
from shared.messages import (
    AccountRequest,
    AccountSnapshot,
    Bar,
    CloseAll,
    DealClosed,
    DealsRequest,
    ExecutionReport,
    ExecutorStatus,
    GatewayHeartbeat,
    HistoryRequest,
    Message,
    OrderLeg,
    OrderPlan,
    PositionData,
    PositionsReply,
    PositionsRequest,
    RiskState,
    RiskStateRequest,
    SetProtection,
    Signal,
    SymbolHealth,
    SymbolRiskState,
    SymbolSpecRequest,
    Tick,
)

OVERSIZE = b"\x00" * (MAX_FRAME_BYTES + 1)
HOSTILE_VALUES: list[Any] = [math.nan, math.inf, -math.inf, -1.0, 0, -1, 0.0, 1e308, 1e18, 2**64 - 1, -(2**63), "x", "",
                             None, [], {}, b"\xff", True, "9" * 300, {"nested": [1, 2, {"a": math.nan}]}]


def samples() -> list[Message]:
    """One real message of each kind the receive paths take (all harmless if a mutation leaves them valid)."""
    return [
        Signal(ts=1, symbol="BTCUSDm", side="buy", net_norm=0.5, confidence=0.8, bar_time=0, price=100.0, atr=1.0,
               spread_points=0, timeframes=("M1",)),
        OrderPlan(ts=1, plan_id="fuzz-plan", signal_id="fuzz", symbol="BTCUSDm", side="buy", price=100.0,
                  deviation_points=10, magic=1, legs=(OrderLeg(leg_id="fuzz-leg", volume=0.01, sl=90.0, tp=110.0),),
                  confidence=0.8, regime="A", expires_at=1),
        ExecutionReport(ts=1, plan_id="fuzz-plan", leg_id="fuzz-leg", symbol="FUZZ", side="buy", status="rejected",
                        volume=0.01, requested_price=100.0, sl=90.0, tp=110.0, latency_ms=1.0, confidence=0.8,
                        regime="A"),
        ExecutorStatus(ts=1, queue_len=0, sent_total=0),
        GatewayHeartbeat(ts=1, backend="sim", connected=True, symbols={"FUZZ": SymbolHealth(ok=True)}),
        HistoryRequest(ts=1, symbol="BTCUSDm", timeframe="M1", count=5),
        SymbolSpecRequest(ts=1, symbol="NOPE"),
        AccountRequest(ts=1),
        PositionsRequest(ts=1, symbol="NOPE"),
        DealsRequest(ts=1, since=0, symbol="NOPE"),
        RiskStateRequest(ts=1),
        SetProtection(ts=1, level="tp", usd=5.0, symbol="NOPE", by="fuzz"),
        CloseAll(ts=1, symbol="NOPE", by="fuzz"),
        # What the gateway and risk publish, and a reply: the subscribers' inputs, and the wrong type on any inbox.
        Bar(ts=60, symbol="FUZZ", timeframe="M1", time=0, open=100.0, high=101.0, low=99.0, close=100.5,
            tick_volume=10, spread=5),
        Tick(ts=1, symbol="FUZZ", time_msc=1000, bid=100.0, ask=100.1),
        AccountSnapshot(ts=1, leverage=100, balance=1000.0, equity=1000.0, margin=0.0, margin_free=1000.0, profit=0.0),
        DealClosed(ts=1, ticket=1, order=1, position_id=1, symbol="FUZZ", side="buy", entry=1, reason=4, volume=0.01,
                   price=100.0, profit=-1.0, magic=1, time=1),
        RiskState(ts=1, trading_enabled=False, day_start_balance=1000.0, day_return=0.0,
                  symbols={"FUZZ": SymbolRiskState(regime="C", data_ok=False, data_reason="fuzz")}),
        PositionsReply(ts=1, parent="fuzz", positions=(PositionData(
            ticket=1, symbol="FUZZ", side="buy", volume=0.01, price_open=100.0, sl=0.0, tp=0.0, price_current=100.0,
            profit=0.0, magic=1, time=1),)),
    ]


def _as_dict(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = msgpack.unpackb(encode(message), raw=False)
    return data


def _mutate(data: dict[str, Any], key: str, value: Any) -> bytes:
    changed = dict(data)
    changed[key] = value
    packed: bytes = msgpack.packb(changed, use_bin_type=True)
    return packed


_SAMPLES = [_as_dict(message) for message in samples()]
_ENCODED = [encode(message) for message in samples()]

_mutated = st.sampled_from(_SAMPLES).flatmap(
    lambda data: st.builds(_mutate, st.just(data), st.sampled_from(sorted(data)), st.sampled_from(HOSTILE_VALUES)))
_truncated = st.sampled_from(_ENCODED).flatmap(lambda frame: st.integers(0, len(frame) - 1).map(lambda n: frame[:n]))
_unknown = st.builds(lambda t, v: msgpack.packb({"v": v, "type": t, "id": "x", "ts": 0}),
                     st.text(max_size=20), st.one_of(st.just(1), st.integers(-5, 1000), st.text(max_size=3)))
_other_version = st.sampled_from(_SAMPLES).flatmap(
    lambda data: st.sampled_from([0, 2, 99, "1", None, 1.5]).map(lambda v: _mutate(data, "v", v)))
_junk_map = st.dictionaries(st.text(max_size=8), st.sampled_from(HOSTILE_VALUES), max_size=6).map(msgpack.packb)
_not_a_map = st.sampled_from([msgpack.packb(x) for x in ([1, 2], "text", 3, None, 1.5, b"raw")])


def every_mutation() -> list[bytes]:
    """Each sample with each field set to each hostile value: the grid random sampling would mostly miss."""
    return [_mutate(data, key, value) for data in _SAMPLES for key in sorted(data) for value in HOSTILE_VALUES]


hostile_payloads = st.one_of(st.binary(max_size=300), _mutated, _truncated, _unknown, _other_version, _junk_map,
                             _not_a_map)
"""One payload frame a peer should never send."""

hostile_multipart = st.lists(hostile_payloads, min_size=1, max_size=3)
"""A whole multipart message of hostile frames (a wrong frame count is itself hostile)."""
