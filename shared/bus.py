"""ZeroMQ plumbing shared by every runner. Cores never import this module.

Which socket carries what, and why:

- Market data and observer events: PUB/SUB. PUB drops messages for a slow subscriber without telling
  anyone, so every PUB frame carries a header (publisher session, per-topic sequence number) and the
  subscriber counts gaps: a lost bar is seen, not guessed.
- Signals, order plans and execution reports: PUSH/PULL. PUSH blocks (pushes back) when the peer's
  queue is full instead of dropping; our send gives up after a timeout and says so.
- Requests: DEALER -> ROUTER with the Lazy Pirate pattern: wait for the reply with a deadline; on
  timeout close the socket with linger 0, open a fresh one, and report "no reply" (a dead peer never
  hangs a caller). The DEALER's routing id names the caller, which the gateway uses to let only the
  executor mutate broker state.

Frames are ``[topic, header, payload]`` on PUB/SUB, ``[payload]`` on PUSH/PULL and DEALER, and
``[identity, payload]`` at a ROUTER. Payloads are ``shared.codec`` frames.
"""

from __future__ import annotations

import logging
import os
import random
import struct
import time
import weakref
from collections import Counter
from dataclasses import dataclass
from typing import TypeVar

import zmq

from shared.codec import DecodeError, decode, encode
from shared.messages import AnyMessage, Message, Reply

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!QQ")  # publisher session, sequence number within the topic
M = TypeVar("M", bound=Message)


def prepare_endpoint(endpoint: str) -> None:
    """Create the directory of an ipc:// endpoint before binding to it."""
    if endpoint.startswith("ipc://"):
        directory = os.path.dirname(endpoint[len("ipc://") :])
        if directory:
            os.makedirs(directory, exist_ok=True)


_COUNTERS: weakref.WeakSet[DropCounter] = weakref.WeakSet()  # every live counter of this process (DropLog)
_SUBSCRIBERS: weakref.WeakSet[Subscriber] = weakref.WeakSet()


class DropCounter:
    """Counts received frames that were refused, by reason, and logs each one (rate-limited)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.by_reason: Counter[str] = Counter()
        _COUNTERS.add(self)

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def drop(self, error: DecodeError | str, detail: str = "") -> None:
        reason = error.reason if isinstance(error, DecodeError) else error
        self.by_reason[reason] += 1
        count = self.by_reason[reason]
        if count <= 10 or count % 1000 == 0:  # a flood of garbage must not become a flood of log lines
            text = str(error) if isinstance(error, DecodeError) else f"{reason}: {detail}"
            log.warning("dropped a frame on %s (%s, %d so far): %s", self.where, reason, count, text[:300])


class DropLog:
    """A service's drop counters (refused frames by socket and reason, PUB/SUB sequence gaps), logged at a
    cadence only when they changed, so a quiet log means nothing was lost. Without arguments it covers every
    counter and subscriber of the process, so no runner has to list its sockets."""

    def __init__(self, counters: list[DropCounter] | None = None, subscribers: list[Subscriber] | None = None) -> None:
        self._counters = counters
        self._subscribers = subscribers
        self._last: str = ""

    @property
    def counters(self) -> list[DropCounter]:
        return self._counters if self._counters is not None else sorted(_COUNTERS, key=lambda c: c.where)

    @property
    def subscribers(self) -> list[Subscriber]:
        return self._subscribers if self._subscribers is not None else list(_SUBSCRIBERS)

    @property
    def dropped(self) -> int:
        return sum(counter.total for counter in self.counters)

    @property
    def gaps(self) -> int:
        return sum(subscriber.gaps_total for subscriber in self.subscribers)

    def summary(self) -> str:
        """'risk_in: not_msgpack=3 invalid=1; gateway_pub: gaps=2', or '' while nothing was lost."""
        parts = []
        for counter in self.counters:
            if counter.total:
                reasons = " ".join(f"{r}={n}" for r, n in sorted(counter.by_reason.items()))
                parts.append(f"{counter.where}: {reasons}")
        parts += [f"{s.drops.where}: gaps={s.gaps_total}" for s in self.subscribers if s.gaps_total]
        return "; ".join(parts)

    def log_if_changed(self) -> None:
        text = self.summary()
        if text and text != self._last:
            log.warning("drop counters: %s", text)
        self._last = text


# ------------------------------------------------------------------------------------------ PUB/SUB


class Publisher:
    """A bound PUB socket that stamps every frame with its session and per-topic sequence number."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, sndhwm: int = 100_000) -> None:
        prepare_endpoint(endpoint)
        self.socket = ctx.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, sndhwm)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(endpoint)
        self.endpoint = endpoint
        self._session = random.getrandbits(63) or 1
        self._seq: dict[str, int] = {}

    def publish(self, topic: str, message: Message) -> None:
        seq = self._seq.get(topic, 0) + 1
        self._seq[topic] = seq
        self.socket.send_multipart([topic.encode(), _HEADER.pack(self._session, seq), encode(message)])

    def close(self) -> None:
        self.socket.close(linger=0)


@dataclass(slots=True)
class Received:
    topic: str
    message: AnyMessage
    gap: int  # messages of this topic missed just before this one (0 = none)


class Subscriber:
    """A SUB socket on one or more publishers that validates frames and counts sequence gaps."""

    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        endpoints: list[str],
        topics: list[str],
        rcvhwm: int = 100_000,
        name: str = "sub",
    ) -> None:
        self.socket = ctx.socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, rcvhwm)
        self.socket.setsockopt(zmq.LINGER, 0)
        for topic in topics:
            self.socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        for endpoint in endpoints:
            self.socket.connect(endpoint)
        self.drops = DropCounter(name)
        self.gaps_total = 0
        self._last: dict[str, tuple[int, int]] = {}
        _SUBSCRIBERS.add(self)

    def receive(self) -> Received | None:
        """One frame if any is waiting (non-blocking); None when there is none or it was dropped."""
        try:
            frames = self.socket.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None
        if len(frames) != 3 or len(frames[1]) != _HEADER.size:
            self.drops.drop("bad_envelope", f"{len(frames)} frames")
            return None
        topic = frames[0].decode(errors="replace")
        session, seq = _HEADER.unpack(frames[1])
        try:
            message = decode(frames[2])
        except DecodeError as exc:
            self.drops.drop(exc)
            return None
        gap = 0
        last = self._last.get(topic)
        if last is not None and last[0] == session and seq > last[1] + 1:
            gap = seq - last[1] - 1
            self.gaps_total += gap
            log.warning("gap on %s: %d message(s) missed before seq %d", topic, gap, seq)
        self._last[topic] = (session, seq)
        return Received(topic, message, gap)

    def close(self) -> None:
        self.socket.close(linger=0)


# ---------------------------------------------------------------------------------------- PUSH/PULL


class Pusher:
    """A PUSH socket for messages that must not be silently dropped (signals, plans, reports)."""

    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        endpoint: str,
        *,
        bind: bool = False,
        send_timeout_ms: int = 2000,
        sndhwm: int = 10_000,
    ) -> None:
        self.socket = ctx.socket(zmq.PUSH)
        self.socket.setsockopt(zmq.SNDHWM, sndhwm)
        self.socket.setsockopt(zmq.SNDTIMEO, send_timeout_ms)
        self.socket.setsockopt(zmq.LINGER, 2000)  # give queued reports a chance to leave on shutdown
        if bind:
            prepare_endpoint(endpoint)
            self.socket.bind(endpoint)
        else:
            self.socket.connect(endpoint)
        self.endpoint = endpoint
        self.failed = 0

    def send(self, message: Message) -> bool:
        """Queue a message for the peer; False (counted, logged) if the peer stayed full past the timeout."""
        try:
            self.socket.send(encode(message))
            return True
        except zmq.Again:
            self.failed += 1
            log.error("could not hand %s %s to %s: peer full or absent", message.__class__.__name__,
                      message.id, self.endpoint)
            return False

    def close(self) -> None:
        self.socket.close()


class Puller:
    """A bound PULL socket (the inbox of a service) that validates every frame."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, name: str = "pull") -> None:
        prepare_endpoint(endpoint)
        self.socket = ctx.socket(zmq.PULL)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(endpoint)
        self.drops = DropCounter(name)

    def receive(self) -> AnyMessage | None:
        try:
            frame = self.socket.recv(zmq.NOBLOCK)
        except zmq.Again:
            return None
        try:
            return decode(frame)
        except DecodeError as exc:
            self.drops.drop(exc)
            return None

    def close(self) -> None:
        self.socket.close(linger=0)


# ------------------------------------------------------------------------------------ DEALER/ROUTER


class Requester:
    """A DEALER that asks and waits with a deadline (Lazy Pirate): a dead peer costs a timeout, no hang."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, identity: str) -> None:
        self._ctx = ctx
        self.endpoint = endpoint
        self.identity = identity
        self.timeouts = 0
        self.drops = DropCounter(f"reply from {endpoint}")
        self.socket = self._open()

    def _open(self) -> zmq.Socket[bytes]:
        socket = self._ctx.socket(zmq.DEALER)
        socket.setsockopt(zmq.ROUTING_ID, self.identity.encode())
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(self.endpoint)
        return socket

    def request(self, message: Message, timeout_s: float) -> AnyMessage | None:
        """Send and wait for the reply whose ``parent`` is this request; None after ``timeout_s``."""
        self.socket.send(encode(message))
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            if not self.socket.poll(max(1, int(remaining * 1000)), zmq.POLLIN):
                break
            try:
                reply = decode(self.socket.recv())
            except DecodeError as exc:
                self.drops.drop(exc)
                continue
            if isinstance(reply, Reply) and reply.parent == message.id:
                return reply
            # Otherwise a late reply to an earlier request that timed out: not ours, skip it.
        self.timeouts += 1
        log.warning("no reply from %s to %s within %.1fs; reconnecting", self.endpoint,
                    message.__class__.__name__, timeout_s)
        self.socket.close(linger=0)
        self.socket = self._open()
        return None

    def close(self) -> None:
        self.socket.close(linger=0)


class Replier:
    """A bound ROUTER: receive (caller identity, request) and answer that caller."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, name: str = "router") -> None:
        prepare_endpoint(endpoint)
        self.socket = ctx.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted caller takes its identity back
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 1)  # an unroutable reply raises instead of vanishing
        self.socket.bind(endpoint)
        self.drops = DropCounter(name)

    def receive(self) -> tuple[str, AnyMessage] | None:
        try:
            frames = self.socket.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None
        if len(frames) != 2:
            self.drops.drop("bad_envelope", f"{len(frames)} frames")
            return None
        identity = frames[0].decode(errors="replace")
        try:
            return identity, decode(frames[1])
        except DecodeError as exc:
            self.drops.drop(exc)
            return None

    def reply(self, identity: str, message: Message) -> None:
        try:
            self.socket.send_multipart([identity.encode(), encode(message)], zmq.NOBLOCK)
        except (zmq.Again, zmq.ZMQError) as exc:
            log.warning("could not answer %s (%s): caller gone", identity, exc)

    def close(self) -> None:
        self.socket.close(linger=0)
