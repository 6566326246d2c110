"""The bus with CURVE on real tcp sockets (127.0.0.1; CURVE covers every tcp endpoint once enabled): a peer
without an admitted key gets nothing, a Replier names callers by key, ipc stays plain, and the telegram
service's asyncio sockets do the same."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from services.telegram.aiobus import AsyncRequester, AsyncSubscriber
from shared.bus import Publisher, Puller, Pusher, Replier, Requester, Subscriber, use_curve
from shared.codec import decode, encode
from shared.curve import AUTHENTICATORS, CurveKeys, make_client
from shared.messages import AccountRequest, AnyMessage, ErrorReply, Message, ServiceHeartbeat
from shared.service import Beacon
from tests.curve_keys import Keyring, last_endpoint
from tests.support import wait_for

Context = zmq.Context[zmq.Socket[bytes]]
NOTHING_MS = 500  # a bounded wait that must pass with nothing received


@pytest.fixture
def ring(tmp_path: Path) -> Keyring:
    return Keyring(tmp_path)


@pytest.fixture
def ctx() -> Iterator[Context]:
    context: Context = zmq.Context()
    yield context
    context.destroy(linger=0)


class Server(threading.Thread):
    """Answers every request on a Replier with an ErrorReply naming the caller, and records the callers."""

    def __init__(self, replier: Replier) -> None:
        super().__init__(daemon=True)
        self.replier = replier
        self.callers: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            if not self.replier.socket.poll(10, zmq.POLLIN):
                continue
            item = self.replier.receive()
            if item is not None:
                caller, request = item
                self.callers.append(caller)
                self.replier.reply(caller, ErrorReply(ts=0, parent=request.id, code="test", text=caller))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self.replier.close()


def secure_replier(ctx: Context, ring: Keyring) -> tuple[Replier, str]:
    replier = Replier(ctx, "tcp://127.0.0.1:*", name="test gateway", curve=ring.keys("gateway_mt5"))
    return replier, last_endpoint(replier.socket)


def answered_by(reply: AnyMessage | None) -> str:
    """Who the server said it answered (``Server`` puts the caller in the reply)."""
    assert isinstance(reply, ErrorReply), reply
    return reply.text


def test_a_subscriber_without_an_admitted_key_receives_nothing(ctx: Context, ring: Keyring) -> None:
    publisher = Publisher(ctx, "tcp://127.0.0.1:*", curve=ring.keys("gateway_mt5"))
    endpoint = last_endpoint(publisher.socket)
    servers = {endpoint: "gateway_mt5"}
    # The outsiders connect first, so they have had at least as long as the keyed subscriber.
    outsiders = [Subscriber(ctx, [endpoint], ["tick."], name="plain"),
                 Subscriber(ctx, [endpoint], ["tick."], name="intruder", curve=ring.keys("intruder", servers))]
    risk = Subscriber(ctx, [endpoint], ["tick."], name="risk", curve=ring.keys("risk", servers))

    def publish_and_receive() -> Message | None:
        publisher.publish("tick.XAUUSDm", AccountRequest(ts=1))
        received = risk.receive()
        return received.message if received is not None else None

    wait_for("the keyed subscriber's first message", publish_and_receive)
    for n in range(5):
        publisher.publish("tick.XAUUSDm", AccountRequest(ts=10 + n))
    assert wait_for("the keyed subscriber's fifth message after joining",
                    lambda: r.message if (r := risk.receive()) is not None and r.message.ts == 14 else None)
    for outsider in outsiders:
        assert not outsider.socket.poll(NOTHING_MS, zmq.POLLIN), outsider.drops.where
        assert outsider.receive() is None
    for subscriber in (*outsiders, risk):
        subscriber.close()
    publisher.close()


def test_a_requester_without_an_admitted_key_gets_no_reply_and_a_keyed_one_is_named_by_its_key(
    ctx: Context, ring: Keyring,
) -> None:
    replier, endpoint = secure_replier(ctx, ring)
    server = Server(replier)
    server.start()
    servers = {endpoint: "gateway_mt5"}
    try:
        for outsider in (Requester(ctx, endpoint, "executor"),
                         Requester(ctx, endpoint, "executor", curve=ring.keys("intruder", servers))):
            assert outsider.request(AccountRequest(ts=1), timeout_s=NOTHING_MS / 1000) is None
            assert outsider.timeouts == 1
            outsider.close()
        assert server.callers == []  # the server never heard them
        executor = Requester(ctx, endpoint, "whatever", curve=ring.keys("executor", servers))
        assert answered_by(executor.request(AccountRequest(ts=2), timeout_s=5)) == "executor"
        executor.close()
    finally:
        server.stop()
    assert server.callers == ["executor"]


def test_a_valid_risk_key_claiming_the_executor_routing_id_is_served_as_risk(ctx: Context, ring: Keyring) -> None:
    replier, endpoint = secure_replier(ctx, ring)
    server = Server(replier)
    server.start()
    servers = {endpoint: "gateway_mt5"}
    executor = Requester(ctx, endpoint, "executor", curve=ring.keys("executor", servers))
    impostor = ctx.socket(zmq.DEALER)
    impostor.setsockopt(zmq.LINGER, 0)
    impostor.setsockopt(zmq.ROUTING_ID, b"executor")
    make_client(impostor, endpoint, ring.keys("risk", servers))
    impostor.connect(endpoint)
    try:
        request = AccountRequest(ts=1)
        impostor.send(encode(request))
        assert impostor.poll(5000, zmq.POLLIN)
        assert answered_by(decode(impostor.recv())) == "risk"
        # The real executor, keyed, is still the executor, and its replies still reach it.
        assert answered_by(executor.request(AccountRequest(ts=2), timeout_s=5)) == "executor"
    finally:
        impostor.close()
        executor.close()
        server.stop()
    assert server.callers == ["risk", "executor"]


def test_the_process_keys_secure_tcp_and_leave_ipc_plain(ctx: Context, ring: Keyring, tmp_path: Path) -> None:
    """``use_curve`` (what run_service calls) applies to every socket built afterwards, tcp only; the beacon
    of a service reaches a secured risk inbox with the service's key."""
    use_curve(ring.keys("risk"))
    try:
        inbox = Puller(ctx, "tcp://127.0.0.1:*", name="risk_in")
        local = Puller(ctx, f"ipc://{tmp_path / 'run' / 'local'}", name="local")
        assert inbox.secure and not local.secure
        assert AUTHENTICATORS.running(ctx) == 1
        endpoint = last_endpoint(inbox.socket)
        plain = Pusher(ctx, f"ipc://{tmp_path / 'run' / 'local'}")
        assert not plain.secure and plain.send(AccountRequest(ts=1))
        assert wait_for("the plain ipc message", local.receive) is not None
    finally:
        use_curve(None)
    beacon = Beacon("executor", endpoint, curve=ring.keys("executor", {endpoint: "risk"}))
    outsider = Beacon("intruder", endpoint, curve=ring.keys("intruder", {endpoint: "risk"}))

    def beat() -> ServiceHeartbeat | None:
        beacon.beat()
        outsider.beat()
        message = inbox.receive()
        assert message is None or isinstance(message, ServiceHeartbeat)
        return message

    heard = wait_for("the executor's heartbeat over CURVE", beat)
    assert heard.service == "executor"
    outsider.beat()
    while (message := inbox.receive()) is not None:  # what else came in was the executor's, never the intruder's
        assert isinstance(message, ServiceHeartbeat) and message.service == "executor"
    for closable in (beacon, outsider, plain, local, inbox):
        closable.close()
    assert AUTHENTICATORS.running(ctx) == 0


def test_the_telegram_asyncio_sockets_use_curve(ctx: Context, ring: Keyring) -> None:
    replier, rep_endpoint = secure_replier(ctx, ring)
    server = Server(replier)
    server.start()
    publisher = Publisher(ctx, "tcp://127.0.0.1:*", curve=ring.keys("risk"))
    pub_endpoint = last_endpoint(publisher.socket)
    keys: CurveKeys = ring.keys("telegram", {rep_endpoint: "gateway_mt5", pub_endpoint: "risk"})
    actx = zmq.asyncio.Context.shadow(ctx)

    async def scenario() -> tuple[AnyMessage | None, str, Message]:
        outsider = AsyncRequester(actx, rep_endpoint, "telegram")
        requester = AsyncRequester(actx, rep_endpoint, "telegram", curve=keys)
        subscriber = AsyncSubscriber(ctx, [pub_endpoint], ["risk."], name="risk events", curve=keys)
        try:
            refused = await outsider.request(AccountRequest(ts=1), timeout_s=NOTHING_MS / 1000)
            answered = answered_by(await requester.request(AccountRequest(ts=2), timeout_s=5))

            async def publish_until_received() -> Message:
                while True:
                    publisher.publish("risk.state", AccountRequest(ts=3))
                    try:
                        return (await asyncio.wait_for(subscriber.receive(), 0.05)).message
                    except TimeoutError:
                        continue

            event = await asyncio.wait_for(publish_until_received(), 10)
            return refused, answered, event
        finally:
            for closable in (outsider, requester, subscriber):
                closable.close()

    try:
        refused, answered, event = asyncio.run(scenario())
    finally:
        publisher.close()
        server.stop()
    assert refused is None and answered == "telegram" and event.ts == 3
    assert server.callers == ["telegram"]
