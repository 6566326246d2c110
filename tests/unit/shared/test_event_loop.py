"""EventLoop: a timer never fires early, and the loop sleeps while it waits instead of spinning on the CPU.

(Rounding the wait up makes a timer fire up to about a millisecond late; see ``EventLoop._loop``.)
"""

from __future__ import annotations

import threading

import zmq

from shared.clock import LiveClock
from shared.service import EventLoop

FIRINGS = 20
INTERVAL_S = 0.005


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
        if len(fired) == FIRINGS:
            loop.stop()

    registered = loop.clock.monotonic()
    loop.every(INTERVAL_S, tick)
    # In a thread, as runners are tested: in the main thread run() would take over pytest's SIGINT/SIGTERM.
    runner = threading.Thread(target=loop.run, daemon=True)
    runner.start()
    runner.join(timeout=10)
    loop.stop()  # a safety stop, should the timer never reach its count
    runner.join(timeout=2)
    inbox.close(linger=0)
    ctx.term()
    assert len(fired) == FIRINGS
    assert poller.calls <= 3 * FIRINGS, f"{poller.calls} polls for {FIRINGS} timer firings: the loop spins"
    # Never early: the k-th firing comes no sooner than k intervals after the timer was set.
    assert all(at >= registered + INTERVAL_S * k for k, at in enumerate(fired, start=1))
