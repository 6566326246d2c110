"""asyncio forms of the ``shared.bus`` sockets, for runners that live in an event loop (python-telegram-bot).

``AsyncSubscriber`` wraps ``shared.bus.Subscriber`` itself: the SUB socket is created by it, and an
asyncio shadow of the same socket only waits for readability. Envelope checks, ``decode``, the drop
counter and the sequence-gap count are therefore the shared ones, not a copy.

``AsyncRequester`` is the Lazy Pirate DEALER of ``shared.bus.Requester`` on a ``zmq.asyncio`` socket:
the synchronous one blocks in ``poll`` and would freeze the event loop for the whole deadline.

Both take CURVE like ``shared.bus`` (the process's keys from ``use_curve``, or their own ``curve``).
"""

from __future__ import annotations

import asyncio
import logging

import zmq
import zmq.asyncio

from shared.bus import DropCounter, Received, Subscriber, connect, curve_for
from shared.codec import DecodeError, decode, encode
from shared.curve import CurveKeys
from shared.messages import AnyMessage, Message, Reply

log = logging.getLogger(__name__)


class AsyncSubscriber:
    """A ``shared.bus.Subscriber`` whose ``receive`` can be awaited."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoints: list[str], topics: list[str],
                 name: str = "sub", curve: CurveKeys | None = None) -> None:
        self.subscriber = Subscriber(ctx, endpoints, topics, name=name, curve=curve)
        self._readable = zmq.asyncio.Socket.from_socket(self.subscriber.socket)

    @property
    def drops(self) -> DropCounter:
        return self.subscriber.drops

    @property
    def gaps_total(self) -> int:
        return self.subscriber.gaps_total

    async def receive(self) -> Received:
        """The next valid frame; refused frames are counted and logged by the Subscriber and skipped."""
        while True:
            received = self.subscriber.receive()
            if received is not None:
                return received
            await self._readable.poll(1000)  # POLLIN

    def close(self) -> None:
        # Closing the asyncio shadow unregisters its file-descriptor watch and closes the socket.
        self._readable.close(linger=0)


class AsyncRequester:
    """A DEALER that asks with a deadline (Lazy Pirate) without blocking the event loop.

    On timeout the socket is closed with linger 0 and a fresh one opened, so a late answer to the old
    request cannot be mistaken for the next one, and a dead peer costs one timeout, never a hang.
    Requests are serialised: one question in flight at a time. On a CURVE endpoint the routing id is left
    to ZeroMQ and the server names the caller by its key, as for ``shared.bus.Requester``.
    """

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, identity: str,
                 curve: CurveKeys | None = None) -> None:
        self._ctx = ctx
        self.endpoint = endpoint
        self.identity = identity
        self.curve = curve_for(endpoint, curve)
        self.timeouts = 0
        self.drops = DropCounter(f"reply from {endpoint}")
        self._lock = asyncio.Lock()
        self._socket = self._open()

    def _open(self) -> zmq.asyncio.Socket:
        socket = self._ctx.socket(zmq.DEALER)
        if self.curve is None:
            socket.setsockopt(zmq.ROUTING_ID, self.identity.encode())
        socket.setsockopt(zmq.LINGER, 0)
        connect(socket, self.endpoint, self.curve)
        return socket

    async def request(self, message: Message, timeout_s: float) -> AnyMessage | None:
        """Send and await the reply whose ``parent`` is this request; None after ``timeout_s``."""
        async with self._lock:
            try:
                return await asyncio.wait_for(self._exchange(message), timeout_s)
            except TimeoutError:
                pass
            self.timeouts += 1
            log.warning("no reply from %s to %s within %.1fs; reconnecting", self.endpoint,
                        type(message).__name__, timeout_s)
            self._socket.close(linger=0)
            self._socket = self._open()
            return None

    async def _exchange(self, message: Message) -> AnyMessage:
        await self._socket.send(encode(message))
        while True:
            frame = await self._socket.recv()
            try:
                reply = decode(frame)
            except DecodeError as exc:
                self.drops.drop(exc)
                continue
            if isinstance(reply, Reply) and reply.parent == message.id:
                return reply
            # Otherwise a late answer to an earlier request: not ours, skip it.

    def close(self) -> None:
        self._socket.close(linger=0)
