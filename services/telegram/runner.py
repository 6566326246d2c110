"""The Telegram service's runner: risk's PUB and the peers' ROUTERs on zmq.asyncio, Telegram through PTB.

Four tasks share one event loop:

- the event pump: risk's PUB -> ``TelegramCore.notify`` -> the outbox (addressed to ADMIN_ID);
- the service watch: supervisord's process states every ``supervisor_poll_s`` -> ``ServiceWatch``
  -> the outbox;
- the Telegram link: connect (getMe; in ``full`` mode also start polling), retrying with backoff
  while Telegram is unreachable, then run the outbox sender. Until connected, notifications wait
  in the outbox, so a start during an outage loses nothing;
- PTB's own update processing (``full`` mode), whose handlers ask risk, the gateway and the executor
  over DEALERs with the identity "telegram", and supervisord over its unix socket.

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
    PtbApplication,
    build_application,
    keyboard,
    log_handler_error,
    publish_menu,
    register,
)
from services.telegram.commands import Command, OwnerCommands, Peers
from services.telegram.confirm import Confirmations
from services.telegram.core import TelegramCore
from services.telegram.outbox import Buttons, Outbox, describe
from services.telegram.supervisor import SupervisorClient, SupervisorError
from services.telegram.watch import ServiceWatch
from shared import topics
from shared.clock import Clock, LiveClock
from shared.config import LoadedConfig
from shared.secrets import Secrets
from shared.service import current_beacon

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
                 clock: Clock | None = None, peer_timeout_s: float | None = None,
                 first_backoff_s: float = 0.5) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.config = config
        self.mode: Mode = mode
        self.clock = clock or LiveClock()
        settings = config.system.telegram
        # risk and gateway requests wait this long (tests shorten it); Telegram's HTTP keeps its own timeout
        self.peer_timeout_s = peer_timeout_s if peer_timeout_s is not None else settings.request_timeout_s
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
        settings = system.telegram
        core = TelegramCore(self.clock, admin_id, list(self.config.symbols))
        application = build_application(settings, self._token, polling=self.mode == "full")
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        actx = zmq.asyncio.Context.shadow(ctx)
        subscriber = AsyncSubscriber(ctx, [system.endpoint("risk_pub")], [topics.RISK_ALL],
                                     name="risk events")
        requesters = {peer: AsyncRequester(actx, system.endpoint(f"{peer}_rep"), ROUTING_ID)
                      for peer in ("risk", "gateway", "executor")}

        async def send(chat_id: int, text: str, buttons: Buttons) -> None:
            await application.bot.send_message(chat_id=chat_id, text=text, reply_markup=keyboard(buttons))

        outbox = Outbox(send, settings.outbox_size, first_backoff_s=self.first_backoff_s,
                        per_chat_interval_s=settings.per_chat_interval_s)
        supervisor = SupervisorClient(system.paths.run_dir, timeout_s=settings.command_timeout_s)
        watch = ServiceWatch(self.clock, settings.service_alert_interval_s)
        owner = self._owner_commands(core, requesters, supervisor, watch)
        commands = owner.commands()
        if self.mode == "full":
            register(application, commands, owner.buttons(), core, outbox)
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

        log.info("mode %s: events from %s; risk, gateway and executor at their _rep endpoints; supervisord at "
                 "%s; Telegram at the configured api_base_url", self.mode, system.endpoint("risk_pub"),
                 supervisor.socket_path)
        tasks = [asyncio.create_task(pump_events(), name="risk-events"),
                 asyncio.create_task(self._watch_services(supervisor, watch, outbox, admin_id),
                                     name="service-watch"),
                 asyncio.create_task(link_telegram(), name="telegram-link"),
                 asyncio.create_task(beat(), name="beacon")]
        stopping = asyncio.create_task(self._stop_event.wait(), name="stop")
        try:
            done, _ = await asyncio.wait({*tasks, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopping}:
                task.result()  # a crashed task: re-raise (the service exits 1 and is restarted)
        finally:
            await self._shutdown(application, outbox, tasks, stopping)
            log.info("sent %d (merged %d), dropped %d (queue full), refused by Telegram %d, discarded %d, "
                     "left unsent %d; strangers refused %d; risk frames dropped %d, gaps %d; request timeouts %s",
                     outbox.sent_total, outbox.merged_total, outbox.dropped_total, outbox.failed_total,
                     outbox.discarded_total, len(outbox), core.refused_total, subscriber.drops.total,
                     subscriber.gaps_total, {peer: r.timeouts for peer, r in requesters.items()})
            subscriber.close()
            for requester in requesters.values():
                requester.close()
            ctx.term()

    async def _watch_services(self, supervisor: SupervisorClient, watch: ServiceWatch, outbox: Outbox,
                              admin_id: int) -> None:
        """Poll supervisord at its cadence and tell the owner what the watch finds (off when 0)."""
        interval = self.config.system.telegram.supervisor_poll_s
        while interval > 0:
            try:
                texts = watch.update(await supervisor.processes())
            except SupervisorError as exc:
                texts = watch.unreachable(str(exc))
            for text in texts:
                outbox.put(admin_id, text)
            await asyncio.sleep(interval)
        await asyncio.Event().wait()  # off: idle until stopped

    def _owner_commands(self, core: TelegramCore, requesters: dict[str, AsyncRequester],
                        supervisor: SupervisorClient, watch: ServiceWatch) -> OwnerCommands:
        """The command registry wired to the peers' DEALERs and supervisord."""
        settings = self.config.system.telegram
        peers = Peers(risk=requesters["risk"].request, gateway=requesters["gateway"].request,
                      executor=requesters["executor"].request, supervisor=supervisor)
        return OwnerCommands(core, peers, settings.model_copy(update={"request_timeout_s": self.peer_timeout_s}),
                             our_magics=frozenset(symbol.symbol.magic for symbol in self.config.symbols.values()),
                             confirmations=Confirmations(self.clock, settings.confirm_timeout_s),
                             on_restart=watch.expect)

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

    async def _shutdown(self, application: PtbApplication, outbox: Outbox, tasks: list[asyncio.Task[None]],
                        stopping: asyncio.Task[bool]) -> None:
        """Stop taking commands and events, give queued notifications a moment, then close."""
        updater = application.updater
        if updater is not None and updater.running:
            await _quietly(updater.stop(), "stopping polling")
        *producers, link = tasks
        for task in (*producers, stopping):
            task.cancel()
        if self.connected.is_set() and not link.done() and not await outbox.wait_empty(SHUTDOWN_FLUSH_S):
            log.warning("%d message(s) still unsent at shutdown", len(outbox))
        link.cancel()
        await asyncio.gather(*tasks, stopping, return_exceptions=True)
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


async def beat() -> None:
    """The process's sign of life and drop-counter log (``shared.service.Beacon``) on its cadence."""
    sign = current_beacon()
    try:
        while sign is not None:
            sign.beat()
            await asyncio.sleep(sign.interval_s)
        await asyncio.Event().wait()
    finally:
        if sign is not None:
            sign.close()


def serve(config: LoadedConfig, secrets: Secrets, args: argparse.Namespace) -> None:
    """run_service's entry point: run until SIGTERM or SIGINT, then return (exit status 0)."""
    runner = TelegramRunner(config, secrets, mode=args.mode)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, runner.stop)
        await runner.run()

    asyncio.run(main())
