"""python-telegram-bot glue: the Application, the command registry and the one owner-only guard.

A command is one ``Command(name, description, answer)``; ``register_commands`` installs every one of
them behind ``admin_only``, so a handler cannot be added without the guard, and ``/help`` and the
bot's menu (setMyCommands) are generated from the same list. An answer function gets the command's
arguments and returns the text to send; it never touches PTB, so it is easy to read and to test.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from telegram import BotCommand, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from services.telegram.core import UNKNOWN_COMMAND, TelegramCore, format_help
from services.telegram.outbox import Outbox, describe
from shared.config import TelegramSection

log = logging.getLogger(__name__)

Answer = Callable[[Sequence[str]], Coroutine[Any, Any, str]]
PtbApplication: TypeAlias = Application[Any, Any, Any, Any, Any, Any]
PtbCallback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]
ALLOWED_UPDATES = (Update.MESSAGE,)  # buttons (callback_query) come with the full Telegram issue


@dataclass(frozen=True, slots=True)
class Command:
    """One bot command: its name (without '/'), what /help says of it, and the function answering it."""

    name: str
    description: str
    answer: Answer


def with_help(commands: Sequence[Command]) -> list[Command]:
    """``commands`` plus /help, whose text lists exactly these commands (and itself)."""
    every: list[Command] = []

    async def answer_help(_args: Sequence[str]) -> str:
        return format_help((command.name, command.description) for command in every)

    every.extend([*commands, Command("help", "this list", answer_help)])
    return every


def file_url_for(api_base_url: str) -> str:
    """The Bot API file URL beside ``api_base_url``: '.../bot' -> '.../file/bot' (Telegram's layout)."""
    stem = api_base_url.rstrip("/")
    return stem[: -len("/bot")] + "/file/bot" if stem.endswith("/bot") else stem + "/file/bot"


def build_application(settings: TelegramSection, token: str, *, polling: bool) -> PtbApplication:
    """A PTB Application on ``settings.api_base_url`` with every HTTP timeout set.

    Without ``polling`` it has no Updater: it can send but never asks Telegram for updates.
    """
    timeout = settings.request_timeout_s
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.api_base_url)
        .base_file_url(file_url_for(settings.api_base_url))
        .connect_timeout(timeout).read_timeout(timeout).write_timeout(timeout).pool_timeout(timeout)
        # The long poll's own wait is added to this read timeout by PTB.
        .get_updates_connect_timeout(timeout).get_updates_read_timeout(timeout)
        .get_updates_write_timeout(timeout).get_updates_pool_timeout(timeout)
    )
    if not polling:
        builder = builder.updater(None)
    application: PtbApplication = builder.build()
    return application


def admin_only(core: TelegramCore, outbox: Outbox) -> Callable[[Answer], PtbCallback]:
    """The guard every handler goes through: the owner gets the answer; anyone else a refusal.

    A stranger's attempt is logged with their user id and nothing else happens: the answer function
    is not called, so no request leaves for risk. Refusals are paced per user by the core.
    """

    def guard(answer: Answer) -> PtbCallback:
        @functools.wraps(answer)
        async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            chat = update.effective_chat
            user = update.effective_user
            if chat is None:
                return
            user_id = user.id if user is not None else None
            if not core.is_admin(user_id):
                word = _first_word(update)
                log.warning("refused %r from user %s in chat %s (not the admin)", word, user_id, chat.id)
                refusal = core.refusal(user_id or 0)
                if refusal is not None:
                    outbox.put(chat.id, refusal)
                return
            outbox.put(chat.id, await answer(context.args or []))

        return callback

    return guard


def _first_word(update: Update) -> str:
    text = update.effective_message.text if update.effective_message is not None else None
    return (text or "").split(maxsplit=1)[0][:40] if text and text.strip() else "(no text)"


async def _answer_unknown(_args: Sequence[str]) -> str:
    return UNKNOWN_COMMAND


def register_commands(application: PtbApplication, commands: Sequence[Command], core: TelegramCore,
                      outbox: Outbox) -> None:
    """Install every command behind the guard, plus a guarded fallback for any other message."""
    guard = admin_only(core, outbox)
    for command in commands:
        application.add_handler(CommandHandler(command.name, guard(command.answer)))
    application.add_handler(MessageHandler(filters.ALL, guard(_answer_unknown)))


async def publish_menu(application: PtbApplication, commands: Sequence[Command]) -> None:
    """Show the commands in Telegram's menu; a failure here is cosmetic and only logged."""
    try:
        await application.bot.set_my_commands(
            [BotCommand(command.name, command.description) for command in commands])
    except Exception as exc:  # network or API error: the bot works without its menu
        log.warning("could not publish the command menu: %s", describe(exc))


async def log_handler_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """PTB's error handler: one line without traceback (a traceback could carry request URLs)."""
    log.error("error while handling an update: %s", describe(context.error or Exception("unknown")))
