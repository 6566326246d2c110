"""Every terminal call on one worker thread, each with a hard deadline, so no call can hang the gateway.

The MetaTrader5 package blocks inside initialize() while it starts or reaches a terminal (60 s and more),
and an IPC call can block until its own timeout (-10005, often ~60 s); through mt5linux every call and
every attribute read of a result is a network round trip. The gateway's loop must keep answering and
beating meanwhile, so calls run here and the caller waits at most the deadline. A call that overruns is
abandoned (Python cannot kill a thread): the worker stays busy with it, later calls fail at once with
``CallTimeout`` until it returns, and the adapter reconnects after that. The worker is a daemon thread,
so a call that never returns cannot keep the process from exiting either.

A child process would be a harder boundary, but the MetaTrader5 package's connection lives in the process
that called initialize(), so the calls must stay in this one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class CallTimeout(Exception):  # noqa: N818 (a state, like BrokerUnavailable)
    """A terminal call did not return within its deadline, or an earlier one still hangs."""


class TerminalThread:
    """Runs callables one at a time on a daemon worker; ``call`` waits for each with a deadline."""

    def __init__(self, name: str = "mt5-terminal") -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()
        self._hanging: tuple[str, Future[Any]] | None = None

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller, who decides
                future.set_exception(exc)

    @property
    def hanging(self) -> str | None:
        """The name of a submitted or abandoned call that has not returned yet, if any."""
        if self._hanging is not None and self._hanging[1].done():
            self._hanging = None
        return None if self._hanging is None else self._hanging[0]

    def submit(self, fn: Callable[[], T], what: str) -> Future[T]:
        """Start ``fn()`` without waiting; until it returns, ``hanging`` names it and calls are refused."""
        stuck = self.hanging
        if stuck is not None:
            raise CallTimeout(f"{what} not started: {stuck} has not returned yet")
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        self._hanging = (what, future)
        return future

    def call(self, fn: Callable[[], T], deadline_s: float, what: str) -> T:
        """``fn()`` on the worker; its result or exception, or CallTimeout after ``deadline_s`` seconds."""
        stuck = self.hanging
        if stuck is not None:
            raise CallTimeout(f"{what} not sent: {stuck} has not returned yet")
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        try:
            return future.result(timeout=deadline_s)
        except TimeoutError:
            if future.cancel():  # never started: nothing is hanging
                raise CallTimeout(f"{what} did not start within {deadline_s:g} s") from None
            self._hanging = (what, future)
            raise CallTimeout(f"{what} did not return within {deadline_s:g} s") from None

    def close(self) -> None:
        """Let the worker finish after the call in progress (it is a daemon: exit never waits for it)."""
        self._jobs.put(None)
