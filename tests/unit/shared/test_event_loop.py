"""EventLoop: timers fire on time without the loop spinning on the CPU while it waits for them."""

from __future__ import annotations

import zmq

from shared.clock import LiveClock
from shared.service import EventLoop


class CountingPoller(zmq.Poller):
    """A real zmq.Poller that counts how often the loop asked it to wait."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def poll(self, timeout: int | None = None) -> list[tuple[zmq.Socket[bytes], int]]:
        self.calls += 1
        return super().poll(timeout)


def test_an_idle_loop_sleeps_until_its_timer_is_due() -> None:
    # Before the fix a wait under 1 ms was rounded down to poll(0): the loop spun through the last
    # millisecond before every timer, hundreds of passes per firing, on a core the pipeline needs.
    ctx = zmq.Context()
    inbox = ctx.socket(zmq.PULL)  # every runner waits on sockets; with none, zmq_poll would not sleep at all
    inbox.bind("inproc://event-loop-test")
    poller = CountingPoller()
    loop = EventLoop(LiveClock(), _poller=poller)
    loop.on_readable(inbox, lambda: None)
    fired: list[float] = []

    def tick() -> None:
        fired.append(loop.clock.monotonic())
        if len(fired) == 20:
            loop.stop()

    registered = loop.clock.monotonic()
    loop.every(0.005, tick)
    try:
        loop.run()
    finally:
        inbox.close(linger=0)
        ctx.term()
    assert len(fired) == 20
    assert poller.calls <= 3 * len(fired), f"{poller.calls} polls for {len(fired)} timer firings: the loop spins"
    # Never early: the k-th firing comes no sooner than k intervals after the timer was set.
    assert all(at >= registered + 0.005 * k for k, at in enumerate(fired, start=1))
