"""Self-tests of the fake Telegram Bot API, driven by the real python-telegram-bot (no mocks).

The fake's blocking waits (wait_for_message, wait_for_request) run via asyncio.to_thread while PTB
is polling, so they never stall the event loop that PTB runs on.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes
from telegram.warnings import PTBDeprecationWarning

from tests.fakes.telegram_api import FakeTelegramServer, SentMessage, read_recorded

TOKEN = "123456:TEST-token"
USER_ID = 4242
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer(token=TOKEN) as server:
        yield server


def make_bot(fake: FakeTelegramServer, token: str = TOKEN) -> Bot:
    return Bot(token, base_url=fake.base_url, base_file_url=fake.base_file_url)


def make_app(fake: FakeTelegramServer) -> Application:  # type: ignore[type-arg]
    builder = Application.builder().token(TOKEN)
    return builder.base_url(fake.base_url).base_file_url(fake.base_file_url).build()


@asynccontextmanager
async def polling(app: Application) -> AsyncIterator[None]:  # type: ignore[type-arg]
    """Run ``app`` with long polling for the body of the block, then stop it cleanly."""
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            yield
        finally:
            await app.updater.stop()
            await app.stop()


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d.title(), callback_data=d) for d in data]])


async def status_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(f"status of {' '.join(context.args or [])}")


def test_get_me_describes_the_fake_bot(fake: FakeTelegramServer) -> None:
    async def scenario() -> None:
        async with make_bot(fake) as bot:
            me = await bot.get_me()
        assert (me.id, me.is_bot, me.username) == (123456, True, "fake_test_bot")

    asyncio.run(scenario())
    assert [r.method for r in fake.requests_log()].count("getMe") >= 1


def test_send_message_arrives_with_text_chat_markup_and_returns_a_message(fake: FakeTelegramServer) -> None:
    async def scenario() -> None:
        async with make_bot(fake) as bot:
            message = await bot.send_message(USER_ID, "<b>XAUUSD</b> long", parse_mode="HTML",
                                             reply_markup=keyboard("close", "keep"))
        assert message.chat.id == USER_ID and message.text == "<b>XAUUSD</b> long"
        assert message.from_user is not None and message.from_user.id == 123456
        assert message.reply_markup == keyboard("close", "keep")

    asyncio.run(scenario())
    [sent] = fake.sent_messages()
    assert (sent.method, sent.chat_id, sent.text, sent.parse_mode) == ("sendMessage", USER_ID,
                                                                       "<b>XAUUSD</b> long", "HTML")
    assert sent.button_data() == ["close", "keep"]


def test_pushed_command_reaches_command_handler_and_its_reply_arrives(fake: FakeTelegramServer) -> None:
    app = make_app(fake)
    app.add_handler(CommandHandler("status", status_command))

    async def scenario() -> SentMessage:
        async with polling(app):
            fake.push_message("/status 12", user_id=USER_ID, username="trader")
            return await asyncio.to_thread(fake.wait_for_message, lambda m: m.text.startswith("status"), 5)

    reply = asyncio.run(scenario())
    assert (reply.chat_id, reply.text) == (USER_ID, "status of 12")


def test_pushed_callback_reaches_callback_handler_which_answers_and_edits(fake: FakeTelegramServer) -> None:
    async def on_button(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer()
        await query.edit_message_text(f"pressed {query.data}")

    app = make_app(fake)
    app.add_handler(CallbackQueryHandler(on_button))

    async def scenario() -> SentMessage:
        async with polling(app):
            menu = await app.bot.send_message(USER_ID, "Close the trade?", reply_markup=keyboard("close"))
            fake.push_callback("close", user_id=USER_ID, message_id=menu.message_id)
            await asyncio.to_thread(fake.wait_for_request, "answerCallbackQuery", 5)
            return await asyncio.to_thread(fake.wait_for_message, lambda m: m.method == "editMessageText", 5)

    edited = asyncio.run(scenario())
    assert (edited.chat_id, edited.text, edited.reply_markup) == (USER_ID, "pressed close", None)


def test_polling_survives_an_unreachable_period(fake: FakeTelegramServer) -> None:
    app = make_app(fake)
    app.add_handler(CommandHandler("status", status_command))

    async def scenario() -> SentMessage:
        async with polling(app):
            await asyncio.to_thread(fake.wait_for_request, "getUpdates", 5)
            fake.set_unreachable(0.3)  # the pending long poll is answered 502; PTB backs off 1 s
            fake.push_message("/status 7", user_id=USER_ID)
            return await asyncio.to_thread(fake.wait_for_message, lambda m: m.text == "status of 7", 5)

    assert asyncio.run(scenario()).chat_id == USER_ID


def test_get_updates_long_poll_returns_early_and_honours_offset_and_allowed_updates(
        fake: FakeTelegramServer) -> None:
    async def scenario() -> None:
        async with make_bot(fake) as bot:
            fake.push_message("early", user_id=USER_ID)
            [first] = await bot.get_updates(timeout=0)
            poll = asyncio.create_task(bot.get_updates(offset=first.update_id + 1, timeout=30,
                                                       read_timeout=35))
            await asyncio.to_thread(fake.wait_for_request, "getUpdates", 5, start=len(fake.requests_log()))
            fake.push_message("late", user_id=USER_ID)
            [second] = await asyncio.wait_for(poll, 5)  # would take 30 s without the early return
            assert second.message is not None and second.message.text == "late"
            fake.push_message("filtered out", user_id=USER_ID)
            only_callbacks = ["callback_query"]
            assert await bot.get_updates(offset=second.update_id + 1, allowed_updates=only_callbacks) == ()

    asyncio.run(scenario())


def test_retry_after_from_an_injected_429(fake: FakeTelegramServer) -> None:
    fake.fail_next("sendMessage", count=1, error_code=429, retry_after=3)

    async def scenario() -> None:
        async with make_bot(fake) as bot:
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(USER_ID, "first")
            await bot.send_message(USER_ID, "second")
        assert caught.value.retry_after in (3, dtm.timedelta(seconds=3))

    with warnings.catch_warnings():  # PTB 22 warns that an int retry_after will become a timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        asyncio.run(scenario())
    assert [m.text for m in fake.sent_messages()] == ["second"]


def test_unreachable_raises_network_error_until_reachable_again(fake: FakeTelegramServer) -> None:
    async def scenario() -> None:
        async with make_bot(fake) as bot:
            fake.set_unreachable(60)
            with pytest.raises(NetworkError):  # TimedOut is a NetworkError too
                await bot.send_message(USER_ID, "lost")
            fake.set_reachable()
            await bot.send_message(USER_ID, "delivered")

    asyncio.run(scenario())
    assert [m.text for m in fake.sent_messages()] == ["delivered"]


def test_wrong_token_is_rejected_as_invalid(fake: FakeTelegramServer) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidToken):
            async with make_bot(fake, token="999:wrong"):  # initialize() calls getMe
                pass

    asyncio.run(scenario())
    assert fake.requests_log()[-1].method == "getMe"


def test_overlong_and_malformed_messages_are_refused_as_telegram_does(fake: FakeTelegramServer) -> None:
    async def scenario() -> None:
        async with make_bot(fake) as bot:
            with pytest.raises(BadRequest, match=r"(?i)message is too long"):
                await bot.send_message(USER_ID, "x" * 5000)
            with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
                await bot.send_message(USER_ID, "spread < 2 pips", parse_mode="HTML")
            with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
                await bot.send_message(USER_ID, "menu", reply_markup=keyboard("d" * 65))
            await bot.send_message(USER_ID, "y" * 4096)

    asyncio.run(scenario())
    assert [len(m.text) for m in fake.sent_messages()] == [4096]


def test_edit_without_change_is_refused_and_commands_round_trip(fake: FakeTelegramServer) -> None:
    async def scenario() -> None:
        async with make_bot(fake) as bot:
            message = await bot.send_message(USER_ID, "same")
            with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
                await bot.edit_message_text("same", chat_id=USER_ID, message_id=message.message_id)
            await bot.set_my_commands([("status", "Show open positions")])
            assert [(c.command, c.description) for c in await bot.get_my_commands()] == [
                ("status", "Show open positions")]
            await bot.delete_my_commands()
            assert await bot.get_my_commands() == ()

    asyncio.run(scenario())


def test_unknown_method_answers_404_in_bot_api_shape(fake: FakeTelegramServer) -> None:
    response = httpx.post(f"{fake.base_url}{TOKEN}/sendHologram", data={"chat_id": "1"})
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


def test_wait_for_message_lists_what_arrived_when_nothing_matches(fake: FakeTelegramServer) -> None:
    async def scenario() -> None:
        async with make_bot(fake) as bot:
            await bot.send_message(USER_ID, "only this")

    asyncio.run(scenario())
    with pytest.raises(AssertionError, match="only this"):
        fake.wait_for_message(lambda m: m.text == "never sent", timeout=0.05)


def test_push_callback_names_a_missing_bot_message(fake: FakeTelegramServer) -> None:
    with pytest.raises(ValueError, match="message_id=77"):
        fake.push_message("hi", user_id=USER_ID)
        fake.push_callback("close", user_id=USER_ID, message_id=77)


def test_standalone_server_records_sent_messages(tmp_path: Path) -> None:
    record = tmp_path / "sent.jsonl"
    command = [sys.executable, "-m", "tests.fakes.telegram_api", "--token", TOKEN, "--record", str(record)]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()  # printed once the port is bound

            async def scenario() -> None:
                async with Bot(TOKEN, base_url=base_url) as bot:
                    await bot.send_message(-1001234, "fill", reply_markup=keyboard("ok"))

            asyncio.run(scenario())  # the line is written before sendMessage is answered
        finally:
            process.terminate()
        assert process.wait(timeout=5) == 0  # SIGTERM stops it cleanly
    [line] = record.read_text().splitlines()
    assert json.loads(line)["text"] == "fill"
    [sent] = read_recorded(record)
    assert (sent.chat_id, sent.text, sent.button_data()) == (-1001234, "fill", ["ok"])
