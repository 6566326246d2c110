"""The Telegram service's runner: risk's PUB and ROUTER on zmq.asyncio, Telegram through PTB.

Three tasks share one event loop:

- the event pump: risk's PUB -> ``TelegramCore.notify`` -> the outbox (addressed to ADMIN_ID);
- the Telegram link: connect (getMe; in ``full`` mode also start polling), retrying with backoff
  while Telegram is unreachable, then run the outbox sender. Until connected, notifications wait
  in the outbox, so a start during an outage loses nothing;
- PTB's own update processing (``full`` mode), whose handlers ask risk over the DEALER.

Without BOT_TOKEN or ADMIN_ID, or when Telegram rejects the token, the service says so once and idles
until stopped, so supervisord does not restart-loop it. The token is never formatted into a log line:
errors are logged as ``describe(exc)`` (class and first line), and PTB's token-carrying
``InvalidToken`` message is never logged at all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Sequence
from typing import Literal

import zmq
import zmq.asyncio
from telegram.error import InvalidToken, TelegramError

from services.telegram.aiobus import AsyncRequester, AsyncSubscriber
from services.telegram.bot import (
    ALLOWED_UPDATES,
    Command,
    PtbApplication,
    build_application,
    log_handler_error,
    publish_menu,
    register_commands,
    with_help,
)
from services.telegram.core import TelegramCore
from services.telegram.outbox import Outbox, describe
from shared import topics
from shared.clock import Clock, LiveClock
from shared.config import LoadedConfig
from shared.secrets import Secrets

log = logging.getLogger(__name__)

Mode = Literal["full", "notify_only"]
MODES: tuple[Mode, ...] = ("full", "notify_only")
ROUTING_ID = "telegram"
SHUTDOWN_FLUSH_S = 3.0  # on stop, how long queued notifications may still take to leave
MAX_CONNECT_BACKOFF_S = 30.0
POLL_TIMEOUT_S = 10  # Telegram long-poll wait


class TelegramRunner:
    """Owns the sockets, the PTB Application and the tasks; ``run`` until ``stop`` (any thread)."""

    def __init__(self, config: LoadedConfig, secrets: Secrets, mode: Mode = "full", *,
                 clock: Clock | None = None, risk_timeout_s: float | None = None,
                 first_backoff_s: float = 0.5) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.config = config
        self.mode: Mode = mode
        self.clock = clock or LiveClock()
        settings = config.system.telegram
        self.risk_timeout_s = risk_timeout_s if risk_timeout_s is not None else settings.request_timeout_s
        self.first_backoff_s = first_backoff_s
        self._token = secrets.BOT_TOKEN.get_secret_value() if secrets.BOT_TOKEN is not None else ""
        self._admin_id = secrets.ADMIN_ID
        self.connected = threading.Event()  # Telegram accepted the token (and polling runs in full mode)
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    # ---- lifecycle -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask ``run`` to finish; safe from a signal handler or another thread."""
        self._stop_requested = True
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing left to stop
                loop.call_soon_threadsafe(event.set)

    async def run(self) -> None:
        """Serve until ``stop``; a crash in any task ends ``run`` with that exception."""
        self._stop_event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._stop_requested:
            self._stop_event.set()
        if not self._token or self._admin_id is None:
            missing = " and ".join(n for n, v in (("BOT_TOKEN", self._token), ("ADMIN_ID", self._admin_id))
                                   if not v)
            log.warning("Telegram disabled: %s not set; idling until stopped", missing)
            await self._stop_event.wait()
            return
        await self._serve(self._admin_id)

    async def _serve(self, admin_id: int) -> None:
        assert self._stop_event is not None
        system = self.config.system
        core = TelegramCore(self.clock, admin_id, list(self.config.symbols))
        application = build_application(system.telegram, self._token, polling=self.mode == "full")
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        actx = zmq.asyncio.Context.shadow(ctx)
        subscriber = AsyncSubscriber(ctx, [system.endpoint("risk_pub")], [topics.RISK_ALL],
                                     name="risk events")
        requester = AsyncRequester(actx, system.endpoint("risk_rep"), ROUTING_ID)

        async def send(chat_id: int, text: str) -> None:
            await application.bot.send_message(chat_id=chat_id, text=text)

        outbox = Outbox(send, first_backoff_s=self.first_backoff_s)

        async def answer_status(_args: Sequence[str]) -> str:
            return core.status_text(await requester.request(core.status_request(), self.risk_timeout_s))

        commands = with_help([
            Command("status", "regime, data freshness, last signal and positions per symbol; "
                              "trading switch; day's return", answer_status),
        ])
        if self.mode == "full":
            register_commands(application, commands, core, outbox)
            application.add_error_handler(log_handler_error)

        async def pump_events() -> None:
            while True:
                received = await subscriber.receive()
                for text in core.on_gap(received.topic, received.gap) + core.notify(received.message):
                    outbox.put(admin_id, text)

        async def link_telegram() -> None:
            if await self._connect(application, commands):
                await outbox.run()
            else:
                outbox.close()  # nothing can ever leave: count events instead of queueing them
                await asyncio.Event().wait()

        log.info("mode %s: events from %s, status from %s, Telegram at the configured api_base_url",
                 self.mode, system.endpoint("risk_pub"), system.endpoint("risk_rep"))
        pump = asyncio.create_task(pump_events(), name="risk-events")
        link = asyncio.create_task(link_telegram(), name="telegram-link")
        stopping = asyncio.create_task(self._stop_event.wait(), name="stop")
        try:
            done, _ = await asyncio.wait({pump, link, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopping}:
                task.result()  # a crashed task: re-raise (the service exits 1 and is restarted)
        finally:
            await self._shutdown(application, outbox, pump, link, stopping)
            log.info("sent %d, dropped %d (queue full), refused by Telegram %d, discarded %d, left unsent %d; "
                     "strangers refused %d; risk frames dropped %d, gaps %d, status timeouts %d",
                     outbox.sent_total, outbox.dropped_total, outbox.failed_total, outbox.discarded_total,
                     len(outbox),
                     core.refused_total, subscriber.drops.total, subscriber.gaps_total, requester.timeouts)
            subscriber.close()
            requester.close()
            ctx.term()

    async def _connect(self, application: PtbApplication, commands: Sequence[Command]) -> bool:
        """Reach Telegram (retrying while unreachable); False when it rejects the token."""
        backoff = max(self.first_backoff_s, 0.1)
        attempt = 0
        while True:
            attempt += 1
            try:
                await application.initialize()
                if application.updater is not None and not application.updater.running:
                    await application.updater.start_polling(
                        timeout=POLL_TIMEOUT_S, drop_pending_updates=True,
                        allowed_updates=list(ALLOWED_UPDATES), error_callback=self._on_polling_error)
                    await publish_menu(application, commands)
                if not application.running:
                    await application.start()
            except InvalidToken:  # its message contains the token: never log it
                log.error("Telegram rejected BOT_TOKEN; Telegram disabled until restarted with a valid one")
                return False
            except TelegramError as exc:
                if attempt == 1 or attempt % 10 == 0:
                    log.warning("cannot reach Telegram (attempt %d), retrying: %s", attempt, describe(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_CONNECT_BACKOFF_S)
                continue
            log.info("connected to Telegram after %d attempt(s)%s", attempt,
                     "; polling for commands" if application.updater is not None else "; notify only")
            self.connected.set()
            return True

    def _on_polling_error(self, error: TelegramError) -> None:
        # PTB retries polling itself, with backoff; this only replaces its traceback-logging default.
        if isinstance(error, InvalidToken):
            log.error("Telegram rejected BOT_TOKEN while polling")
        else:
            log.warning("polling Telegram failed, PTB retries: %s", describe(error))

    async def _shutdown(self, application: PtbApplication, outbox: Outbox, pump: asyncio.Task[None],
                        link: asyncio.Task[None], stopping: asyncio.Task[bool]) -> None:
        """Stop taking commands and events, give queued notifications a moment, then close."""
        updater = application.updater
        if updater is not None and updater.running:
            await _quietly(updater.stop(), "stopping polling")
        pump.cancel()
        stopping.cancel()
        if self.connected.is_set() and not link.done() and not await outbox.wait_empty(SHUTDOWN_FLUSH_S):
            log.warning("%d message part(s) still unsent at shutdown", len(outbox))
        link.cancel()
        await asyncio.gather(pump, link, stopping, return_exceptions=True)
        if application.running:
            await _quietly(application.stop(), "stopping the application")
        await _quietly(application.shutdown(), "shutting PTB down")
        # An Application that never connected skips its bot's shutdown: close its HTTP clients here.
        await _quietly(application.bot.shutdown(), "closing the HTTP clients")


async def _quietly(step: Awaitable[object], what: str) -> None:
    """Await one shutdown step; log (without traceback) instead of raising, so later steps still run."""
    try:
        await step
    except Exception as exc:
        log.warning("%s: %s", what, describe(exc))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--mode full`` answers commands; ``--mode notify_only`` (the system's --engine-only) only notifies."""
    parser.add_argument("--mode", choices=MODES, default="full",
                        help="full: notifications and commands (default); notify_only: notifications only, "
                             "no command handlers and no polling")


def serve(config: LoadedConfig, secrets: Secrets, args: argparse.Namespace) -> None:
    """run_service's entry point: run until SIGTERM or SIGINT, then return (exit status 0)."""
    runner = TelegramRunner(config, secrets, mode=args.mode)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, runner.stop)
        await runner.run()

    asyncio.run(main())
