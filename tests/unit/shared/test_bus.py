"""The ZeroMQ helpers over real ipc sockets: gaps are counted, garbage is dropped, dead peers time out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import zmq

from shared.bus import DropCounter, DropLog, Publisher, Puller, Pusher, Received, Replier, Requester, Subscriber
from shared.messages import AccountRequest, AnyMessage, ErrorReply, Message, Tick

T = TypeVar("T")


def poll_until(fetch: Callable[[], T | None], timeout_s: float = 5.0) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fetch()
        if value is not None:
            return value
        time.sleep(0.005)
    raise AssertionError("nothing arrived before the deadline")


@pytest.fixture
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield context
    context.destroy(linger=0)


def tick(n: int) -> Tick:
    return Tick(id=f"tick-{n}", ts=n, symbol="BTCUSDm", time_msc=n * 1000, bid=100.0 + n, ask=101.0 + n)


def connected_pair(ctx: zmq.Context[zmq.Socket[bytes]], tmp_path: Path) -> tuple[Publisher, Subscriber]:
    endpoint = f"ipc://{tmp_path}/pub"
    publisher = Publisher(ctx, endpoint)
    subscriber = Subscriber(ctx, [endpoint], ["tick."])
    # Slow joiner: publish probes until the subscription has reached the publisher.
    def probe() -> Received | None:
        publisher.publish("tick.probe", tick(0))
        return subscriber.receive()

    poll_until(probe)
    return publisher, subscriber


def next_on(subscriber: Subscriber, topic: str) -> Received:
    """The next message on ``topic``, skipping the probes left over from connecting."""
    return poll_until(lambda: (r := subscriber.receive()) and (r if r.topic == topic else None))


def test_subscriber_counts_a_gap_in_sequence(ctx: zmq.Context[zmq.Socket[bytes]], tmp_path: Path) -> None:
    publisher, subscriber = connected_pair(ctx, tmp_path)
    publisher.publish("tick.BTCUSDm", tick(1))
    first = next_on(subscriber, "tick.BTCUSDm")
    publisher._seq["tick.BTCUSDm"] += 2  # two messages "lost" on the way
    publisher.publish("tick.BTCUSDm", tick(4))
    second = next_on(subscriber, "tick.BTCUSDm")
    assert (first.gap, second.gap) == (0, 2)
    assert subscriber.gaps_total == 2
    assert second.message == tick(4)


def test_subscriber_drops_garbage_and_keeps_going(ctx: zmq.Context[zmq.Socket[bytes]], tmp_path: Path) -> None:
    publisher, subscriber = connected_pair(ctx, tmp_path)
    publisher.socket.send_multipart([b"tick.x", b"short"])
    publisher.socket.send_multipart([b"tick.x", b"\x00" * 16, b"not msgpack \xc1"])
    publisher.publish("tick.BTCUSDm", tick(7))
    received = next_on(subscriber, "tick.BTCUSDm")
    assert received.message == tick(7)
    assert subscriber.drops.by_reason == {"bad_envelope": 1, "not_msgpack": 1}


def test_push_pull_delivers_and_counts_bad_frames(ctx: zmq.Context[zmq.Socket[bytes]], tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/inbox"
    puller = Puller(ctx, endpoint)
    pusher = Pusher(ctx, endpoint)
    pusher.socket.send(b"\x92\x01\x02")  # the msgpack list [1, 2], not a message
    assert pusher.send(tick(3))
    assert poll_until(puller.receive) == tick(3)
    assert puller.drops.by_reason == {"not_a_map": 1}


def serve_in_thread(replier: Replier, answer: Callable[[str, AnyMessage], list[Message]]) -> threading.Thread:
    """Answer exactly one request with the messages ``answer`` returns."""

    def serve_one() -> bool | None:
        item = replier.receive()
        if item is None:
            return None
        for message in answer(*item):
            replier.reply(item[0], message)
        return True

    thread = threading.Thread(target=lambda: poll_until(serve_one), daemon=True)
    thread.start()
    return thread


def test_request_to_a_dead_peer_times_out_and_recovers(ctx: zmq.Context[zmq.Socket[bytes]], tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/rep"
    requester = Requester(ctx, endpoint, "executor")
    started = time.monotonic()
    assert requester.request(AccountRequest(ts=0), timeout_s=0.2) is None
    assert time.monotonic() - started < 2.0
    assert requester.timeouts == 1
    # The peer appears. The timed-out request died with the old socket (linger 0), so the peer sees
    # only the new one, and the caller it sees is the executor's identity.
    replier = Replier(ctx, endpoint)
    callers: list[str] = []

    def answer(caller: str, message: AnyMessage) -> list[Message]:
        callers.append(caller)
        return [ErrorReply(ts=0, parent=message.id, code="x", text="")]

    thread = serve_in_thread(replier, answer)
    request = AccountRequest(ts=0)
    reply = requester.request(request, timeout_s=3.0)
    assert isinstance(reply, ErrorReply) and reply.parent == request.id
    thread.join(timeout=5)
    assert callers == ["executor"]


def test_a_reply_to_another_request_is_skipped(ctx: zmq.Context[zmq.Socket[bytes]], tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/rep"
    replier = Replier(ctx, endpoint)
    requester = Requester(ctx, endpoint, "risk")

    def answer(caller: str, message: AnyMessage) -> list[Message]:
        late = ErrorReply(ts=0, parent="an-earlier-request", code="late", text="")
        return [late, ErrorReply(ts=0, parent=message.id, code="ours", text="")]

    thread = serve_in_thread(replier, answer)
    reply = requester.request(AccountRequest(ts=0), timeout_s=3.0)
    thread.join(timeout=5)
    assert isinstance(reply, ErrorReply) and reply.code == "ours"


def test_the_drop_log_sums_up_every_counter_and_logs_only_changes(caplog: pytest.LogCaptureFixture) -> None:
    inbox, replies = DropCounter("inbox"), DropCounter("replies")
    drops = DropLog([inbox, replies])
    assert drops.summary() == "" and drops.dropped == 0
    inbox.drop("not_msgpack", "x")
    inbox.drop("invalid", "y")
    inbox.drop("invalid", "z")
    assert drops.summary() == "inbox: invalid=2 not_msgpack=1" and drops.dropped == 3
    def summaries() -> int:
        return sum(1 for record in caplog.records if record.funcName == "log_if_changed")

    drops.log_if_changed()
    drops.log_if_changed()  # unchanged: no second line
    assert summaries() == 1
    replies.drop("bad_envelope", "3 frames")
    drops.log_if_changed()
    assert summaries() == 2
    assert DropLog().dropped >= 4  # without arguments: every counter of the process
