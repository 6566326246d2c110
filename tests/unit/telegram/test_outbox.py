"""The outbox with a real PTB Bot against the fake Bot API: splitting, retrying, bounding."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from telegram import Bot

from services.telegram.outbox import Outbox, describe
from tests.fakes.telegram_api import FakeTelegramServer
from tests.unit.telegram.conftest import ADMIN_ID, TOKEN


def run_with_outbox(fake: FakeTelegramServer, scenario: Callable[[Outbox], Awaitable[None]],
                    maxlen: int = 1000) -> Outbox:
    """Run ``scenario`` while an Outbox sends through a real Bot; wait until it drained."""

    async def main() -> Outbox:
        async with Bot(TOKEN, base_url=fake.base_url) as bot:
            async def send(chat_id: int, text: str) -> None:
                await bot.send_message(chat_id=chat_id, text=text)

            outbox = Outbox(send, maxlen, first_backoff_s=0.05, max_backoff_s=0.2)
            await scenario(outbox)
            sender = asyncio.create_task(outbox.run())
            try:
                assert await outbox.wait_empty(10), f"{len(outbox)} part(s) still queued"
            finally:
                sender.cancel()
            return outbox

    return asyncio.run(main())


def test_long_text_arrives_in_parts_within_the_limit(fake: FakeTelegramServer) -> None:
    lines = [f"{i:05d} " + "z" * 60 for i in range(160)]
    text = "\n".join(lines)
    assert len(text) >= 10_000

    async def scenario(outbox: Outbox) -> None:
        outbox.put(ADMIN_ID, text)

    run_with_outbox(fake, scenario)
    parts = [m.text for m in fake.sent_messages()]
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts).split("\n") == lines  # in order, cut at line boundaries only


def test_a_brief_outage_delays_but_does_not_lose(fake: FakeTelegramServer) -> None:
    async def scenario(outbox: Outbox) -> None:
        fake.set_unreachable(0.8)
        outbox.put(ADMIN_ID, "survives the outage")

    outbox = run_with_outbox(fake, scenario)
    assert [m.text for m in fake.sent_messages()] == ["survives the outage"]
    assert sum(r.method == "sendMessage" for r in fake.requests_log()) > 1
    assert outbox.sent_total == 1


def test_full_queue_drops_the_oldest_and_counts(fake: FakeTelegramServer) -> None:
    async def scenario(outbox: Outbox) -> None:
        for i in range(5):
            outbox.put(ADMIN_ID, f"event {i}")

    outbox = run_with_outbox(fake, scenario, maxlen=3)
    assert [m.text for m in fake.sent_messages()] == ["event 2", "event 3", "event 4"]
    assert outbox.dropped_total == 2


def test_a_permanent_refusal_drops_only_that_message(fake: FakeTelegramServer) -> None:
    async def scenario(outbox: Outbox) -> None:
        fake.fail_next("sendMessage", count=1, error_code=400)
        outbox.put(ADMIN_ID, "refused")
        outbox.put(ADMIN_ID, "next one")

    outbox = run_with_outbox(fake, scenario)
    assert [m.text for m in fake.sent_messages()] == ["next one"]
    assert outbox.failed_total == 1 and outbox.sent_total == 1


def test_describe_masks_anything_token_shaped() -> None:
    text = describe(ValueError(f"The token `{TOKEN}` was rejected; POST http://h/bot{TOKEN}/getMe\nmore"))
    assert TOKEN not in text and TOKEN.split(":", 1)[1] not in text
    assert text.startswith("ValueError: The token") and "more" not in text
