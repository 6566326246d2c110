"""python-telegram-bot glue: the Application, the one owner-only guard, commands and buttons.

Every handler is installed by ``register`` behind ``admin_only``, so a handler cannot be added without
the guard: commands from ``OwnerCommands.commands()`` (the same list /help and the bot's menu are
generated from), inline-button presses from ``buttons()``, and a fallback for any other message. An
answer function gets the command's arguments (or the button's data) and returns the text to send,
with buttons or without; it never touches PTB, so it is easy to read and to test.

Updates are handled concurrently: a /closeall waiting up to 30 s for the executor must not hold back
the owner's next /status. Nothing is awaited before an answer function starts, so requests to one peer
still leave in the order the owner sent the commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeAlias

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from services.telegram.args import UsageError
from services.telegram.commands import ButtonAction, Command
from services.telegram.core import REFUSAL, UNKNOWN_COMMAND, AnswerText, BotReply, TelegramCore
from services.telegram.outbox import Buttons, Outbox, describe
from shared.config import TelegramSection

log = logging.getLogger(__name__)

PtbApplication: TypeAlias = Application[Any, Any, Any, Any, Any, Any]
PtbCallback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[AnswerText]]
ALLOWED_UPDATES = (Update.MESSAGE, Update.CALLBACK_QUERY)
_background: set[asyncio.Task[Any]] = set()


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
        .concurrent_updates(True)
        .connect_timeout(timeout).read_timeout(timeout).write_timeout(timeout).pool_timeout(timeout)
        # The long poll's own wait is added to this read timeout by PTB.
        .get_updates_connect_timeout(timeout).get_updates_read_timeout(timeout)
        .get_updates_write_timeout(timeout).get_updates_pool_timeout(timeout)
    )
    if not polling:
        builder = builder.updater(None)
    application: PtbApplication = builder.build()
    return application


def keyboard(buttons: Buttons) -> InlineKeyboardMarkup | None:
    """Our pure ``Button`` rows as PTB's inline keyboard."""
    if not buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
                                 for row in buttons])


def _what(update: Update) -> str:
    """What the user tried, for the log: the command word or the button's data (short)."""
    if update.callback_query is not None:
        return f"button {(update.callback_query.data or '')[:20]!r}"
    text = update.effective_message.text if update.effective_message is not None else None
    return repr(text.split(maxsplit=1)[0][:40]) if text and text.strip() else "(no text)"


def _in_background(step: Awaitable[object], what: str) -> None:
    """Run a cosmetic Bot API call (acknowledge a press, remove used buttons) without waiting for it."""
    async def run() -> None:
        try:
            await step
        except Exception as exc:  # cosmetic: the answer itself goes through the outbox
            log.info("%s: %s", what, describe(exc))

    task = asyncio.get_running_loop().create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)


def admin_only(core: TelegramCore, outbox: Outbox) -> Callable[[Handler], PtbCallback]:
    """The guard every handler goes through: the owner gets the answer; anyone else a refusal.

    A stranger's attempt is logged with their user id and nothing else happens: the handler is not
    called, so no request leaves for any peer. Refusals are paced per user by the core (a button press
    is refused in its own small pop-up). A failing answer is reported to the owner, never swallowed.
    """

    def guard(handler: Handler) -> PtbCallback:
        async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            chat = update.effective_chat
            user = update.effective_user
            user_id = user.id if user is not None else None
            query = update.callback_query
            if not core.is_admin(user_id):
                log.warning("refused %s from user %s in chat %s (not the admin)", _what(update), user_id,
                            chat.id if chat is not None else None)
                refusal = core.refusal(user_id or 0)
                if query is not None:
                    _in_background(query.answer(REFUSAL), "refusing a button press")
                elif chat is not None and refusal is not None:
                    outbox.put(chat.id, refusal)
                return
            if chat is None:
                return
            try:
                answer = await handler(update, context)
            except UsageError as exc:
                answer = str(exc)
            except Exception as exc:  # an answer must still reach the owner
                log.error("%s failed: %s", _what(update), describe(exc))
                answer = f"{_what(update)} failed: {describe(exc)}"
            if isinstance(answer, BotReply):
                outbox.put(chat.id, answer.text, answer.buttons)
            else:
                outbox.put(chat.id, answer)

        return callback

    return guard


def _command_handler(command: Command) -> Handler:
    async def handle(_update: Update, context: ContextTypes.DEFAULT_TYPE) -> AnswerText:
        return await command.answer(context.args or [])

    return handle


def _button_handler(actions: Sequence[ButtonAction]) -> Handler:
    """One handler for every press: acknowledge it, retire the buttons it came with, run its action."""
    by_prefix = {action.prefix: action for action in actions}

    async def handle(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> AnswerText:
        query = update.callback_query
        assert query is not None
        _in_background(query.answer(), "acknowledging a button press")
        _in_background(query.edit_message_reply_markup(reply_markup=None), "removing used buttons")
        prefix, _, rest = (query.data or "").partition(":")
        action = by_prefix.get(prefix)
        return await action.answer(rest) if action is not None else "That button is no longer valid."

    return handle


async def _answer_unknown(_update: Update, _context: ContextTypes.DEFAULT_TYPE) -> AnswerText:
    return UNKNOWN_COMMAND


def register(application: PtbApplication, commands: Sequence[Command], actions: Sequence[ButtonAction],
             core: TelegramCore, outbox: Outbox) -> None:
    """Install every command and button behind the guard, plus a guarded fallback for any other message."""
    guard = admin_only(core, outbox)
    for command in commands:
        application.add_handler(CommandHandler(command.name, guard(_command_handler(command))))
    application.add_handler(CallbackQueryHandler(guard(_button_handler(actions))))
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
