"""What every runner shares: start-up (config, secrets, logging, exit 2 on bad config) and a poll loop.

A runner is thin: it loads its config through ``run_service``, builds its core, binds its sockets and
hands readable sockets and timers to ``EventLoop``. SIGTERM and SIGINT stop the loop cleanly, so
supervisord's stop and Ctrl-C leave no half-written state.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import zmq

from shared import codec
from shared.bus import DropLog, connect, use_curve
from shared.clock import Clock
from shared.codec import encode
from shared.config import CONFIG_EXIT_STATUS, ConfigError, LoadedConfig, curve_keys, load_config
from shared.curve import CurveKeys
from shared.logs import setup_logging
from shared.messages import ServiceHeartbeat
from shared.secrets import Secrets, load_secrets
from shared.stamps import install_from_environment

BEACON_INTERVAL_S = 2.0
CONFIG_VARIABLE = "PORTFOLIO_CONFIG"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "system.toml"
log = logging.getLogger(__name__)


class Beacon:
    """A service process's periodic sign of life: its drop counters in its own log (when they changed) and a
    ``ServiceHeartbeat`` pushed to risk's inbox, whose age the health line shows.

    ``run_service`` installs one per process and ``EventLoop.run`` beats it from the loop itself, so a loop
    that hangs stops the heartbeat. Risk has no beacon to push to: it only logs its counters.
    """

    installed: ClassVar[Beacon | None] = None  # set by run_service in a service process; tests' loops have none

    def __init__(self, service: str, risk_in: str | None, interval_s: float = BEACON_INTERVAL_S,
                 curve: CurveKeys | None = None) -> None:
        self.service = service
        self.interval_s = interval_s
        self.drops = DropLog()
        self._risk_in = risk_in
        self._curve = curve
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._socket: zmq.Socket[bytes] | None = None

    def beat(self) -> None:
        """Log changed drop counters; push the heartbeat without ever blocking (a missed beat is the news)."""
        self.drops.log_if_changed()
        if self._risk_in is None:
            return
        if self._socket is None:
            self._ctx = zmq.Context()
            self._socket = self._ctx.socket(zmq.PUSH)
            self._socket.setsockopt(zmq.SNDHWM, 2)
            self._socket.setsockopt(zmq.LINGER, 0)
            connect(self._socket, self._risk_in, self._curve)
        beat = ServiceHeartbeat(ts=0, service=self.service, dropped=self.drops.dropped, gaps=self.drops.gaps)
        # Risk absent or full: the beat is lost, and its health line shows this service's age growing.
        with contextlib.suppress(zmq.Again):
            self._socket.send(encode(beat), zmq.NOBLOCK)

    def close(self) -> None:
        if self._socket is not None and self._ctx is not None:
            self._socket.close(linger=0)
            self._ctx.term()
            self._socket = self._ctx = None


def current_beacon() -> Beacon | None:
    """This process's beacon (None outside ``run_service``), for runners without an ``EventLoop``."""
    return Beacon.installed


@dataclass(slots=True)
class _Timer:
    interval: float
    callback: Callable[[], None]
    due: float


@dataclass
class EventLoop:
    """Polls sockets and fires timers until stopped. Handlers drain their socket and return."""

    clock: Clock
    _poller: zmq.Poller = field(default_factory=zmq.Poller)
    _handlers: dict[Any, Callable[[], object]] = field(default_factory=dict)
    _timers: list[_Timer] = field(default_factory=list)
    _running: bool = False

    def on_readable(self, socket: zmq.Socket[bytes], handler: Callable[[], object]) -> None:
        self._poller.register(socket, zmq.POLLIN)
        self._handlers[socket] = handler

    def every(self, interval_s: float, callback: Callable[[], None]) -> None:
        self._timers.append(_Timer(interval_s, callback, self.clock.monotonic() + interval_s))

    def stop(self, *_: object) -> None:
        self._running = False

    def run(self) -> None:
        self._running = True
        main = threading.current_thread() is threading.main_thread()
        if main:  # tests run loops in threads
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        beacon = Beacon.installed if main else None
        if beacon is not None:
            self.every(beacon.interval_s, beacon.beat)
        try:
            self._loop()
        finally:
            if beacon is not None:
                beacon.close()

    def _loop(self) -> None:
        while self._running:
            now = self.clock.monotonic()
            wait = min((t.due - now for t in self._timers), default=1.0)
            # Round up: poll takes whole milliseconds, and a wait rounded down to 0 would spin on the
            # CPU for the last millisecond before every timer (stealing a core from the pipeline). The
            # price: a timer fires up to about 1 ms late (the gateway's broker poll among them, so a bar
            # may be seen up to 1 ms later); a due or overdue timer still gets poll(0).
            timeout_ms = max(0, math.ceil(min(wait, 0.5) * 1000))
            try:
                ready = dict(self._poller.poll(timeout_ms))
            except zmq.ZMQError as exc:  # EINTR on a signal
                if exc.errno == errno.EINTR:
                    continue
                raise
            for socket in ready:
                self._handlers[socket]()
            now = self.clock.monotonic()
            for timer in self._timers:
                if now >= timer.due:
                    timer.callback()
                    # Skip missed beats instead of firing a burst after a stall.
                    timer.due = max(timer.due + timer.interval, now)


def drain(receive: Callable[[], Any | None], handle: Callable[[Any], None], limit: int = 1000) -> int:
    """Call ``handle`` on each waiting message (at most ``limit`` per wake, so timers still run)."""
    count = 0
    while count < limit:
        message = receive()
        if message is None:
            break
        handle(message)
        count += 1
    return count


ServeFunction = Callable[[LoadedConfig, Secrets, argparse.Namespace], None]
CheckFunction = Callable[[LoadedConfig, Secrets], object]


def run_service(
    service: str,
    serve: ServeFunction,
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    check: CheckFunction | None = None,
) -> int:
    """Parse arguments, load and validate config and secrets, set up logging, then serve.

    Returns the process exit status: 2 for a configuration problem (one line on stderr, before any
    socket is opened), 1 for a crash (logged with its traceback), 0 after a clean stop. ``check`` is
    the service's own validation (e.g. the broker backend's settings); it runs before logging starts,
    and a ConfigError from it is that same one line. With ``[curve] enabled`` the service's keys are
    loaded here (a missing file is that one line too) and every socket of the process uses them on tcp.
    """
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    parser.add_argument("--config", type=Path, default=Path(os.environ.get(CONFIG_VARIABLE, DEFAULT_CONFIG)))
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        secrets = load_secrets()
        if check is not None:
            check(config, secrets)
        curve = curve_keys(config, service)
    except (ConfigError, ValueError) as exc:
        print(f"{service}: configuration error: {exc}", file=sys.stderr)
        return CONFIG_EXIT_STATUS
    redact = secrets.values_to_redact() + ([curve.secret.decode()] if curve is not None else [])
    logger = setup_logging(service, config.system.paths.logs_dir, redact)
    Beacon.installed = Beacon(service, None if service == "risk" else config.system.endpoint("risk_in"), curve=curve)
    logger.info("starting (pid %d, config %s, backend %s, CURVE on tcp %s)", os.getpid(), config.path,
                config.system.broker.backend, f"as {curve.name!r}" if curve is not None else "off")
    use_curve(curve)
    stamps = None
    try:
        stamps = install_from_environment(service)  # benchmarks only: off unless PORTFOLIO_BENCH_DIR is set
        serve(config, secrets, args)
    except ConfigError as exc:
        logger.error("configuration error: %s", exc)
        print(f"{service}: configuration error: {exc}", file=sys.stderr)
        return CONFIG_EXIT_STATUS
    except Exception:
        logger.exception("crashed")
        return 1
    finally:
        use_curve(None)  # a test that runs a service in-process must not leave its keys behind
        if stamps is not None:
            codec.observe(None)
            stamps.close()
    logger.info("stopped")
    return 0
