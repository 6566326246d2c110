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
- CURVE (``shared.curve``, docs/SECURITY.md): once ``use_curve`` has set the process's keys (``run_service``
  does when ``[curve] enabled``), every socket on a tcp endpoint is a CURVE server where it binds and a
  client where it connects; ipc stays plain. A Replier then names each caller by its key (the ZAP User-Id),
  not by the routing id it claims, and a Requester leaves its routing id to ZeroMQ.

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
from typing import Any, TypeVar

import zmq

from shared.codec import DecodeError, decode, encode
from shared.curve import CurveKeys, make_client, make_server, peer_user_id, release_server, secures
from shared.messages import AnyMessage, Message, Reply

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!QQ")  # publisher session, sequence number within the topic
M = TypeVar("M", bound=Message)


def prepare_endpoint(endpoint: str) -> None:
    """Create the directory of an ipc:// endpoint before binding to it."""
    if endpoint.startswith("ipc://"):
        directory = os.path.dirname(endpoint[len("ipc://") :])
        if directory:  # owner-only when we create it: an ipc socket has no authentication of its own
            os.makedirs(directory, mode=0o700, exist_ok=True)


_process_curve: CurveKeys | None = None


def use_curve(keys: CurveKeys | None) -> None:
    """This process's CURVE keys (None: plain), for every socket built afterwards without its own ``curve``."""
    global _process_curve  # noqa: PLW0603  (one setting per process, like its logging)
    _process_curve = keys


def curve_for(endpoint: str, curve: CurveKeys | None = None) -> CurveKeys | None:
    """The keys that secure ``endpoint`` (``curve``, else the process's), or None when it stays plain."""
    keys = curve if curve is not None else _process_curve
    return keys if keys is not None and secures(endpoint) else None


def connect(socket: zmq.Socket[Any], endpoint: str, curve: CurveKeys | None = None) -> bool:
    """Connect, as a CURVE client of the endpoint's server when it is secured; True if it is."""
    keys = curve_for(endpoint, curve)
    if keys is not None:
        make_client(socket, endpoint, keys)
    socket.connect(endpoint)
    return keys is not None


class _Bound:
    """A socket that binds: as a CURVE server when its endpoint is secured, holding its context's
    authenticator until closed (``shared.curve.make_server``)."""

    socket: zmq.Socket[bytes]
    secure: bool = False
    _holds: zmq.Context[zmq.Socket[bytes]] | None = None

    def _bind(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, curve: CurveKeys | None) -> None:
        prepare_endpoint(endpoint)
        keys = curve_for(endpoint, curve)
        if keys is not None:
            make_server(ctx, self.socket, keys)
            self._holds = ctx
        self.secure = keys is not None
        try:
            self.socket.bind(endpoint)
        except zmq.ZMQError:
            self._release()
            raise

    def _release(self) -> None:
        if self._holds is not None:
            release_server(self._holds)
            self._holds = None

    def close(self) -> None:
        self.socket.close(linger=0)
        self._release()


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


class Publisher(_Bound):
    """A bound PUB socket that stamps every frame with its session and per-topic sequence number."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, sndhwm: int = 100_000,
                 curve: CurveKeys | None = None) -> None:
        self.socket = ctx.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, sndhwm)
        self.socket.setsockopt(zmq.LINGER, 0)
        self._bind(ctx, endpoint, curve)
        self.endpoint = endpoint
        self._session = random.getrandbits(63) or 1
        self._seq: dict[str, int] = {}

    def publish(self, topic: str, message: Message) -> None:
        seq = self._seq.get(topic, 0) + 1
        self._seq[topic] = seq
        self.socket.send_multipart([topic.encode(), _HEADER.pack(self._session, seq), encode(message)])


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
        *,
        rcvhwm: int = 100_000,
        name: str = "sub",
        curve: CurveKeys | None = None,
    ) -> None:
        self.socket = ctx.socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, rcvhwm)
        self.socket.setsockopt(zmq.LINGER, 0)
        for topic in topics:
            self.socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        # Plain endpoints first: once a socket is a CURVE client, every later connect of it is one too.
        for endpoint in sorted(endpoints, key=lambda e: curve_for(e, curve) is not None):
            connect(self.socket, endpoint, curve)
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


class Pusher(_Bound):
    """A PUSH socket for messages that must not be silently dropped (signals, plans, reports)."""

    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        endpoint: str,
        *,
        bind: bool = False,
        send_timeout_ms: int = 2000,
        sndhwm: int = 10_000,
        curve: CurveKeys | None = None,
    ) -> None:
        self.socket = ctx.socket(zmq.PUSH)
        self.socket.setsockopt(zmq.SNDHWM, sndhwm)
        self.socket.setsockopt(zmq.SNDTIMEO, send_timeout_ms)
        self.socket.setsockopt(zmq.LINGER, 2000)  # give queued reports a chance to leave on shutdown
        if bind:
            self._bind(ctx, endpoint, curve)
        else:
            self.secure = connect(self.socket, endpoint, curve)
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
        self.socket.close()  # the default linger (2 s) set above
        self._release()


class Puller(_Bound):
    """A bound PULL socket (the inbox of a service) that validates every frame."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, name: str = "pull",
                 curve: CurveKeys | None = None) -> None:
        self.socket = ctx.socket(zmq.PULL)
        self.socket.setsockopt(zmq.LINGER, 0)
        self._bind(ctx, endpoint, curve)
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


# ------------------------------------------------------------------------------------ DEALER/ROUTER


class Requester:
    """A DEALER that asks and waits with a deadline (Lazy Pirate): a dead peer costs a timeout, no hang.

    ``identity`` is its routing id, the caller's name on a plain endpoint. On a CURVE endpoint the server
    names the caller by its key, and the routing id is left to ZeroMQ (random per connection), so that no
    peer can take over another's replies by claiming its name."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, identity: str,
                 curve: CurveKeys | None = None) -> None:
        self._ctx = ctx
        self.endpoint = endpoint
        self.identity = identity
        self.curve = curve_for(endpoint, curve)
        self.timeouts = 0
        self.drops = DropCounter(f"reply from {endpoint}")
        self.socket = self._open()

    def _open(self) -> zmq.Socket[bytes]:
        socket = self._ctx.socket(zmq.DEALER)
        if self.curve is None:
            socket.setsockopt(zmq.ROUTING_ID, self.identity.encode())
        socket.setsockopt(zmq.LINGER, 0)
        connect(socket, self.endpoint, self.curve)
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


class Replier(_Bound):
    """A bound ROUTER: receive (caller, request) and answer that caller.

    The caller is the routing id the peer chose on a plain endpoint, and the name of its admitted key (the
    ZAP User-Id) on a CURVE one, which is what lets the gateway trust ``caller == "executor"``. Replies go
    back to the connection that sent the caller's latest request (runners answer before receiving more)."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, name: str = "router",
                 curve: CurveKeys | None = None) -> None:
        self.socket = ctx.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted caller takes its identity back
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 1)  # an unroutable reply raises instead of vanishing
        self._bind(ctx, endpoint, curve)
        self.drops = DropCounter(name)
        self._routes: dict[str, bytes] = {}  # caller (key name) -> routing id of its latest request

    def receive(self) -> tuple[str, AnyMessage] | None:
        try:
            frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return None
        if len(frames) != 2:
            self.drops.drop("bad_envelope", f"{len(frames)} frames")
            return None
        routing_id = frames[0].bytes
        caller = routing_id.decode(errors="replace")
        if self.secure:
            caller = peer_user_id(frames[1])
            if not caller:  # cannot happen through our authenticator; never serve an unnamed peer
                self.drops.drop("no_user_id", "a CURVE peer without a ZAP User-Id")
                return None
            # ZeroMQ's own routing ids start with a zero byte; any other was chosen by the peer.
            claimed = not routing_id.startswith(b"\0") and routing_id != caller.encode()
            if claimed and self._routes.get(caller) != routing_id:
                log.warning("caller with key %r uses routing id %r: it is served as %r", caller, routing_id, caller)
            self._routes[caller] = routing_id
        try:
            return caller, decode(frames[1].bytes)
        except DecodeError as exc:
            self.drops.drop(exc)
            return None

    def reply(self, identity: str, message: Message) -> None:
        routing_id = self._routes.get(identity, identity.encode())
        try:
            self.socket.send_multipart([routing_id, encode(message)], zmq.NOBLOCK)
        except (zmq.Again, zmq.ZMQError) as exc:
            log.warning("could not answer %s (%s): caller gone", identity, exc)
