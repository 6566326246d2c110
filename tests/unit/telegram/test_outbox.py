"""The outbox with a real PTB Bot against the fake Bot API: splitting, merging, pacing, retrying, bounding."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from telegram import Bot

from services.telegram.bot import keyboard
from services.telegram.core import Button
from services.telegram.outbox import Buttons, Outbox, describe
from tests.fakes.telegram_api import FakeTelegramServer
from tests.unit.telegram.conftest import ADMIN_ID, TOKEN


def run_with_outbox(fake: FakeTelegramServer, scenario: Callable[[Outbox], Awaitable[None]],
                    maxlen: int = 1000, *, start_sender_first: bool = False, **options: Any) -> Outbox:
    """Run ``scenario`` with an Outbox sending through a real Bot; wait until it drained."""
    options = {"first_backoff_s": 0.05, "max_backoff_s": 0.2, "per_chat_interval_s": 0.0, **options}

    async def main() -> Outbox:
        async with Bot(TOKEN, base_url=fake.base_url) as bot:
            async def send(chat_id: int, text: str, buttons: Buttons) -> None:
                await bot.send_message(chat_id=chat_id, text=text, reply_markup=keyboard(buttons))

            outbox = Outbox(send, maxlen, **options)
            sender = asyncio.create_task(outbox.run()) if start_sender_first else None
            await scenario(outbox)
            sender = sender or asyncio.create_task(outbox.run())
            try:
                assert await outbox.wait_empty(15), f"{len(outbox)} message(s) still queued"
            finally:
                sender.cancel()
            return outbox

    return asyncio.run(main())


def texts(fake: FakeTelegramServer, chat_id: int = ADMIN_ID) -> list[str]:
    return [m.text for m in fake.sent_messages() if m.chat_id == chat_id]


def test_a_10000_character_text_arrives_in_parts_within_the_limit(fake: FakeTelegramServer) -> None:
    lines = [f"{i:05d} " + "z" * 60 for i in range(160)]
    text = "\n".join(lines)
    assert len(text) >= 10_000

    async def scenario(outbox: Outbox) -> None:
        outbox.put(ADMIN_ID, text, ((Button("Stop trading", "trade:off"),),))

    run_with_outbox(fake, scenario)
    parts = fake.sent_messages()
    assert len(parts) == 3 and all(len(p.text) <= 4096 for p in parts)
    assert "\n".join(p.text for p in parts).split("\n") == lines  # in order, cut at line boundaries only
    assert [p.button_data() for p in parts] == [[], [], ["trade:off"]]  # buttons ride on the last part


def test_a_burst_is_merged_and_paced_per_chat(fake: FakeTelegramServer) -> None:
    async def scenario(outbox: Outbox) -> None:
        outbox.put(ADMIN_ID, "first")  # leaves at once; the rest wait for the chat's interval
        await asyncio.sleep(0)
        for i in range(30):
            outbox.put(ADMIN_ID, f"event {i:02d} " + "x" * 200)
            outbox.put(ADMIN_ID + 1, f"other chat {i}")
        outbox.put(ADMIN_ID, "with a button", ((Button("Cancel", "no:1"),),))  # never merged
        outbox.put(ADMIN_ID, "after the button")

    outbox = run_with_outbox(fake, scenario, start_sender_first=True, per_chat_interval_s=0.3)
    mine = [m for m in fake.sent_messages() if m.chat_id == ADMIN_ID]
    joined = "\n\n".join(m.text for m in mine)
    assert [line for line in joined.split("\n\n") if line.startswith("event")] == \
        [f"event {i:02d} " + "x" * 200 for i in range(30)]  # nothing lost, in order
    assert len(mine) <= 6 and all(len(m.text) <= 4096 for m in mine)  # 33 texts, a handful of messages
    assert mine[-2].text == "with a button" and mine[-2].button_data() == ["no:1"]
    assert mine[-1].text == "after the button"
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(mine)]
    assert min(gaps) >= 0.25  # one message per interval per chat
    assert texts(fake, ADMIN_ID + 1)  # the other chat was not held back behind ours
    assert outbox.merged_total >= 50


def test_the_overall_rate_is_capped(fake: FakeTelegramServer) -> None:
    async def scenario(outbox: Outbox) -> None:
        for chat in range(6):
            outbox.put(1000 + chat, f"to chat {chat}")

    run_with_outbox(fake, scenario, max_per_second=4)
    times = sorted(m.received_at for m in fake.sent_messages())
    assert len(times) == 6
    assert all(times[i + 4] - times[i] >= 0.9 for i in range(len(times) - 4))  # never 5 within a second


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB's own RetryAfter()
def test_429_retry_after_is_honoured_and_nothing_is_lost(fake: FakeTelegramServer) -> None:
    fake.fail_next("sendMessage", count=2, error_code=429, retry_after=1)

    async def scenario(outbox: Outbox) -> None:
        for i in range(3):
            outbox.put(1000 + i, f"message {i}")

    started = time.time()
    run_with_outbox(fake, scenario)
    sent = fake.sent_messages()
    assert [m.text for m in sent] == ["message 0", "message 1", "message 2"]  # each once, in order
    assert sum(r.method == "sendMessage" for r in fake.requests_log()) == 5
    assert sent[0].received_at - started >= 1.8  # waited what Telegram asked (1 s), twice


def test_a_brief_outage_delays_but_does_not_lose(fake: FakeTelegramServer) -> None:
    async def scenario(outbox: Outbox) -> None:
        fake.set_unreachable(0.8)
        outbox.put(ADMIN_ID, "survives the outage")

    outbox = run_with_outbox(fake, scenario)
    assert texts(fake) == ["survives the outage"]
    assert sum(r.method == "sendMessage" for r in fake.requests_log()) > 1
    assert outbox.sent_total == 1


def test_full_queue_drops_the_oldest_and_says_how_many(fake: FakeTelegramServer) -> None:
    async def scenario(outbox: Outbox) -> None:
        for i in range(5):
            outbox.put(ADMIN_ID, f"event {i} " + "y" * 3000)  # too long to merge: one message each

    outbox = run_with_outbox(fake, scenario, maxlen=3)
    assert outbox.dropped_total == 2
    sent = texts(fake)
    assert [text.split("\n")[-1][:7] for text in sent] == ["event 2", "event 3", "event 4"]
    assert sent[0].startswith("[2 older message(s) dropped: Telegram was unreachable and the queue was full]\n")


def test_a_permanent_refusal_drops_only_that_message(fake: FakeTelegramServer) -> None:
    async def scenario(outbox: Outbox) -> None:
        fake.fail_next("sendMessage", count=1, error_code=400)
        outbox.put(ADMIN_ID, "refused")
        outbox.put(ADMIN_ID + 1, "next one")

    outbox = run_with_outbox(fake, scenario)
    assert [m.text for m in fake.sent_messages()] == ["next one"]
    assert outbox.failed_total == 1 and outbox.sent_total == 1


def test_describe_masks_anything_token_shaped() -> None:
    text = describe(ValueError(f"The token `{TOKEN}` was rejected; POST http://h/bot{TOKEN}/getMe\nmore"))
    assert TOKEN not in text and TOKEN.split(":", 1)[1] not in text
    assert text.startswith("ValueError: The token") and "more" not in text
