"""The in-process stand-in for the sockets: PUB/SUB by topic prefix and PUSH/PULL inboxes, one thread.

Every node (a core behind a small adapter, see ``nodes.py``) has one FIFO inbox. ``publish`` appends a
message to the inbox of every node subscribed to a prefix of its topic, as ZeroMQ filters; ``push``
appends to one node's inbox, as PUSH/PULL does. ``drain`` then lets the nodes take their inboxes in a
FIXED order, each taking everything queued for it at its turn, until every inbox is empty.

Why this order gives the live order of events: a step is published in the two halves of the lockstep
gateway (``services/gateway_mt5/lockstep.py``), each drained before the next. First the exit deals, the
heartbeat and the account: risk counts them (a closed position, a new balance) and any regime change
it publishes reaches the strategies before the bar. Then the bars: with the node order strategies,
risk, executor, a strategy's signals land in risk's inbox, risk turns them into plans, the executor
sends them at once (its requests to the gateway are synchronous calls, as the one-request-at-a-time
DEALER is), and the reports go back to risk in the next round. Nothing here reads a clock, so the same
inputs always give the same sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from shared.clock import Clock
from shared.messages import Message

Observer = Callable[[str, Message], None]


class Node(Protocol):
    """What the bus needs of a node: a name, its subscriptions, and a way to take one message."""

    name: str
    subscriptions: tuple[str, ...]

    def take(self, message: Message) -> None: ...


class MarketClock(Clock):
    """The injected clock of every core in a backtest: market time, moved only by the engine.

    ``now`` and ``monotonic`` are both the market time, so cadences written in seconds (heartbeat age,
    cooldowns of the executor's backoff) run as they would live at real-time speed, and a run never
    depends on how fast the machine is."""

    def __init__(self, start: float) -> None:
        self._t = float(start)

    def now(self) -> float:
        return self._t

    def monotonic(self) -> float:
        return self._t

    def advance_to(self, t: float) -> None:
        """Move forward to ``t`` (never back)."""
        if t > self._t:
            self._t = float(t)


class Bus:
    """Topic-prefix PUB/SUB and per-node inboxes, drained in a fixed node order."""

    def __init__(self) -> None:
        self._nodes: list[Node] = []
        self._inboxes: dict[str, list[Message]] = {}
        self._routes: dict[str, tuple[list[list[Message]], list[Observer]]] = {}  # topic -> who gets it
        self._observers: list[tuple[tuple[str, ...], Observer]] = []
        self.delivered = 0

    def attach(self, node: Node) -> None:
        """Add a node; nodes take their inboxes in the order they were attached."""
        if node.name in self._inboxes:
            raise ValueError(f"a node named {node.name!r} is attached already")
        self._nodes.append(node)
        self._inboxes[node.name] = []
        self._routes.clear()

    def watch(self, prefixes: tuple[str, ...], observer: Observer) -> None:
        """Call ``observer`` with every message whose topic starts with one of ``prefixes``, as it is sent
        (an outside listener: it sends nothing back)."""
        self._observers.append((prefixes, observer))
        self._routes.clear()

    def _route(self, topic: str) -> tuple[list[list[Message]], list[Observer]]:
        route = self._routes.get(topic)
        if route is None:
            inboxes = [self._inboxes[n.name] for n in self._nodes if topic.startswith(n.subscriptions)]
            observers = [observer for prefixes, observer in self._observers if topic.startswith(prefixes)]
            route = self._routes[topic] = (inboxes, observers)
        return route

    def publish(self, topic: str, message: Message) -> None:
        """PUB: to every node subscribed to a prefix of ``topic``, and to the observers watching it."""
        inboxes, observers = self._route(topic)
        for inbox in inboxes:
            inbox.append(message)
        for observer in observers:
            observer(topic, message)

    def push(self, node: str, message: Message) -> None:
        """PUSH: to one node's inbox."""
        self._inboxes[node].append(message)

    def observe(self, topic: str, message: Message) -> None:
        """Show the observers watching ``topic`` a message that travels on no PUB socket (an order plan)."""
        for observer in self._route(topic)[1]:
            observer(topic, message)

    def pending(self) -> bool:
        return any(self._inboxes.values())

    def drain(self) -> None:
        """Let every node take its inbox, in attach order, until all are empty."""
        inboxes = self._inboxes
        while True:
            moved = False
            for node in self._nodes:
                inbox = inboxes[node.name]
                if not inbox:
                    continue
                batch = inbox[:]
                inbox.clear()
                moved = True
                take = node.take
                for message in batch:
                    take(message)
                self.delivered += len(batch)
            if not moved:
                return
