"""The receive paths that listen to a peer rather than bind: SUB (strategies, risk, Telegram) and the DEALER's
replies (strategies, risk, executor, Telegram), fed hostile frames over real ipc sockets by a fake peer; then
a good frame must still arrive. And the cores behind them, given every valid message of a type they do not
expect (the same hostile grid, where a mutation left it valid): they must not raise.

The bound sockets (ROUTER, PULL) are fuzzed in the running system (tests/system/test_supervised_system.py).
"""

from __future__ import annotations

import asyncio
import struct
import threading
from pathlib import Path

import zmq
import zmq.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.telegram.aiobus import AsyncRequester
from services.telegram.core import TelegramCore
from shared.bus import Requester, Subscriber
from shared.clock import FakeClock
from shared.codec import DecodeError, decode, encode
from shared.messages import AccountRequest, AnyMessage, ErrorReply, Tick
from tests.hostile import OVERSIZE, every_mutation, hostile_multipart, hostile_payloads, samples
from tests.unit.shared.test_bus import poll_until
from tests.unit.strategy.test_real_data import spec_core

HEADER = struct.Struct("!QQ")
FUZZ = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
GOOD = Tick(ts=1, symbol="BTCUSDm", time_msc=1000, bid=100.0, ask=101.0)


def good_frame(seq: int) -> list[bytes]:
    return [b"tick.BTCUSDm", HEADER.pack(7, seq), encode(GOOD)]


@FUZZ
@given(batch=st.lists(st.one_of(hostile_multipart, st.lists(hostile_payloads, min_size=1, max_size=1).map(
    lambda payload: [b"tick.BTCUSDm", HEADER.pack(7, 1), *payload])), min_size=1, max_size=40))
def test_a_subscriber_drops_hostile_frames_and_still_takes_a_good_one(batch: list[list[bytes]]) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        endpoint = "inproc://hostile-pub"
        pub = ctx.socket(zmq.PUB)
        pub.bind(endpoint)
        subscriber = Subscriber(ctx, [endpoint], [""], name="fuzzed sub")
        seq = 0

        def joined() -> bool | None:  # slow joiner: probe until the subscription is through
            nonlocal seq
            seq += 1
            pub.send_multipart(good_frame(seq))
            return True if subscriber.receive() is not None else None

        poll_until(joined)
        for frames in [*batch, [b"tick.BTCUSDm", HEADER.pack(7, 1), OVERSIZE]]:
            pub.send_multipart([b"tick.BTCUSDm", *frames] if frames[0] != b"tick.BTCUSDm" else frames)
        pub.send_multipart(good_frame(seq + 1000))
        received = poll_until(lambda: (r := subscriber.receive()) and (r if r.message == GOOD else None))
        assert received.message == GOOD
        assert subscriber.drops.total >= 1
        subscriber.close()
        pub.close(linger=0)
    finally:
        ctx.term()


def hostile_router(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, garbage: list[bytes]) -> threading.Thread:
    """A peer that answers each request with all the garbage, then the right reply."""
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(endpoint)

    def serve() -> None:
        if router.poll(10_000, zmq.POLLIN):
            identity, frame = router.recv_multipart()
            request = decode(frame)
            for payload in garbage:
                router.send_multipart([identity, payload])
            router.send_multipart([identity, encode(ErrorReply(ts=1, parent=request.id, code="x", text="good"))])
        router.close(linger=2000)  # the replies leave before the context ends

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@FUZZ
@given(garbage=st.lists(hostile_payloads, min_size=1, max_size=40))
def test_a_requester_skips_hostile_replies_and_takes_its_own(garbage: list[bytes]) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        endpoint = "inproc://hostile-router"
        thread = hostile_router(ctx, endpoint, [*garbage, OVERSIZE])
        requester = Requester(ctx, endpoint, identity="fuzzed")
        reply = requester.request(AccountRequest(ts=1), timeout_s=10)
        assert isinstance(reply, ErrorReply) and reply.text == "good"
        requester.close()
        thread.join(10)
    finally:
        ctx.term()


def test_telegram_s_async_requester_skips_hostile_replies_and_takes_its_own(tmp_path: Path) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    garbage = [*every_mutation()[::7], OVERSIZE, b"\xc1", b""]
    endpoint = f"ipc://{tmp_path}/router"
    thread = hostile_router(ctx, endpoint, garbage)

    async def ask() -> AnyMessage | None:
        actx = zmq.asyncio.Context.shadow(ctx)
        requester = AsyncRequester(actx, endpoint, "telegram")
        try:
            reply = await requester.request(AccountRequest(ts=1), timeout_s=10)
            assert requester.drops.total > 0
            return reply
        finally:
            requester.close()

    reply = asyncio.run(ask())
    thread.join(10)
    ctx.term()
    assert isinstance(reply, ErrorReply) and reply.text == "good"


def valid_hostile_messages() -> list[AnyMessage]:
    """Every message of the hostile grid that is still valid, plus the unmutated samples."""
    found: list[AnyMessage] = []
    for frame in every_mutation():
        try:
            found.append(decode(frame))
        except DecodeError:
            continue
    return [*found, *samples()]  # type: ignore[list-item]


def test_the_strategy_and_telegram_cores_take_any_valid_message_without_raising() -> None:
    messages = valid_hostile_messages()
    assert len(messages) > 100
    for symbol in ("XAUUSDm", "BTCUSDm"):
        core = spec_core(symbol)
        for message in messages:
            core.handle(message)
    telegram = TelegramCore(FakeClock(), 4242, ("XAUUSDm", "BTCUSDm"))
    for message in messages:
        telegram.notify(message)
