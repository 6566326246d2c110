"""The one way out to Telegram: a bounded, paced, merging queue with retries. Never silent, never flooding.

Every text the service sends (notifications, command answers, refusals) is queued here and sent by one
task, in order per chat:

- Telegram's limits: at most one message per ``per_chat_interval_s`` to a chat (about 1/s) and
  ``max_per_second`` overall (about 30/s); texts over 4,096 characters are split at line boundaries.
- Bursts are merged: a text for a chat whose last queued message is still waiting is appended to it
  (blank line between) as long as the result fits one message, so ten events in a second become one
  message, not ten seconds of backlog. A message with buttons is never merged (its buttons belong to it).
- On ``RetryAfter`` (HTTP 429) the sender waits what Telegram asked and tries the same part again; on
  ``NetworkError``/``TimedOut`` (unreachable, 5xx) it retries with exponential backoff capped at
  ``max_backoff_s``, for as long as it takes. An error retrying cannot fix (bad request, bot blocked,
  chat gone) drops that part with an error log.
- The queue is bounded: when full, the OLDEST waiting part is dropped and counted, and the chat's next
  message starts with how many were dropped, so a long outage costs the stalest news, never memory,
  and never silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBDeprecationWarning

from services.telegram.core import MAX_MESSAGE_CHARS, Button, split_text

log = logging.getLogger(__name__)

Buttons = tuple[tuple[Button, ...], ...]
SendFunction = Callable[[int, str, Buttons], Awaitable[None]]
_PERMANENT = (BadRequest, Forbidden, ChatMigrated, InvalidToken)  # BadRequest subclasses NetworkError
MERGE_SEPARATOR = "\n\n"


@dataclass(slots=True, eq=False)
class OutgoingText:
    """One message (or part of one) for one chat; later texts may still be merged into it while it waits."""

    chat_id: int
    text: str
    buttons: Buttons = ()


def retry_after_seconds(error: RetryAfter) -> float:
    """RetryAfter's delay in seconds, whichever form (int or timedelta) this PTB version exposes."""
    with warnings.catch_warnings():  # PTB 22 warns that the int form will become a timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# Defence in depth for ``describe``: a Bot API path ('/bot<token>/') or anything shaped like a bot
# token ('123456:AA...') is masked even if a library put it in an exception message.
_TOKEN_LIKE = re.compile(r"/bot[^/\s]+|\b\d{3,}:[A-Za-z0-9_-]{20,}")


def describe(error: BaseException) -> str:
    """An exception as one short line for the log: class and first line, token-like text masked."""
    text = _TOKEN_LIKE.sub("***", str(error).split("\n", 1)[0])[:200]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def dropped_notice(count: int) -> str:
    """The line that tells a chat some of its older messages never left (queue full during an outage)."""
    return f"[{count} older message(s) dropped: Telegram was unreachable and the queue was full]"


class Outbox:
    """Queue texts for Telegram and send them paced, merged and in order, retrying until delivered."""

    def __init__(self, send: SendFunction, maxlen: int = 1000, *, first_backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, part_chars: int = MAX_MESSAGE_CHARS,
                 per_chat_interval_s: float = 1.0, max_per_second: int = 30,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if maxlen < 1 or max_per_second < 1:
            raise ValueError(f"maxlen and max_per_second must be >= 1, got {maxlen}, {max_per_second}")
        self._send = send
        self._queue: deque[OutgoingText] = deque()
        self._maxlen = maxlen
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_flight: OutgoingText | None = None
        self._monotonic = monotonic
        self._last_sent: dict[int, float] = {}
        self._recent: deque[float] = deque()  # send times within the last second
        self._dropped_for: dict[int, int] = {}
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.part_chars = part_chars
        self.per_chat_interval_s = per_chat_interval_s
        self.max_per_second = max_per_second
        self.sent_total = 0
        self.merged_total = 0  # texts that joined a waiting message instead of becoming one
        self.dropped_total = 0  # evicted by a full queue
        self.failed_total = 0  # refused by Telegram for good
        self.discarded_total = 0  # put after close()
        self._closed = False

    def __len__(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        """Take no more texts (Telegram rejected the token: nothing could ever leave); they are counted."""
        self._closed = True
        self.discarded_total += len(self._queue)
        self._queue.clear()
        self._idle.set()

    def put(self, chat_id: int, text: str, buttons: Buttons = ()) -> None:
        """Queue ``text`` for ``chat_id`` (split if long, buttons on its last part); never blocks or raises."""
        if self._closed:
            self.discarded_total += 1
            return
        parts = split_text(text, self.part_chars)
        for index, part in enumerate(parts):
            part_buttons = buttons if index == len(parts) - 1 else ()
            if not part_buttons and self._merge(chat_id, part):
                continue
            if len(self._queue) >= self._maxlen:
                self._evict_oldest()
            self._queue.append(OutgoingText(chat_id, part, part_buttons))
        if self._queue:
            self._idle.clear()
            self._wakeup.set()

    def _merge(self, chat_id: int, text: str) -> bool:
        """Append ``text`` to the chat's last waiting message if it fits; False if it must go alone."""
        for item in reversed(self._queue):
            if item.chat_id != chat_id:
                continue
            if item is self._in_flight or item.buttons or \
                    len(item.text) + len(MERGE_SEPARATOR) + len(text) > self.part_chars:
                return False
            item.text += MERGE_SEPARATOR + text
            self.merged_total += 1
            return True
        return False

    def _evict_oldest(self) -> None:
        # The message being sent right now stays; the oldest one still waiting goes.
        evicted = next(item for item in self._queue if item is not self._in_flight)
        self._queue.remove(evicted)
        self.dropped_total += 1
        self._dropped_for[evicted.chat_id] = self._dropped_for.get(evicted.chat_id, 0) + 1
        if self.dropped_total <= 10 or self.dropped_total % 1000 == 0:  # an outage is no log flood
            log.warning("outbox full (%d messages): dropped the oldest, %d chars for chat %d (%d dropped so far)",
                        self._maxlen, len(evicted.text), evicted.chat_id, self.dropped_total)

    async def run(self) -> None:
        """Send queued messages forever (until cancelled): per chat in order, paced, oldest chat first."""
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            item, wait_s = self._next_ready(self._monotonic())
            if item is None:
                self._wakeup.clear()  # a put may bring a message for a chat that is ready now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait_s)
                continue
            self._in_flight = item
            try:
                await self._deliver_with_notice(item)
            finally:
                self._in_flight = None
                now = self._monotonic()
                self._last_sent[item.chat_id] = now
                self._recent.append(now)
            with contextlib.suppress(ValueError):  # already gone if close() ran meanwhile
                self._queue.remove(item)

    def _next_ready(self, now: float) -> tuple[OutgoingText | None, float]:
        """The first message whose chat may be written to now, or None and how long until one may."""
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.max_per_second:
            return None, self._recent[0] + 1.0 - now
        if len(self._last_sent) > 1000:  # bounded memory: forget chats not written to recently
            self._last_sent = {c: t for c, t in self._last_sent.items() if now - t < self.per_chat_interval_s}
        wait_s = float("inf")
        seen: set[int] = set()
        for item in self._queue:
            if item.chat_id in seen:
                continue  # a chat's messages leave in order: only its first one is a candidate
            seen.add(item.chat_id)
            last = self._last_sent.get(item.chat_id)
            ready_at = now if last is None else last + self.per_chat_interval_s
            if ready_at <= now:
                return item, 0.0
            wait_s = min(wait_s, ready_at - now)
        return None, wait_s

    async def wait_empty(self, timeout_s: float) -> bool:
        """Wait until everything queued was handled (sent or given up); False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _deliver_with_notice(self, item: OutgoingText) -> None:
        dropped = self._dropped_for.pop(item.chat_id, 0)
        if dropped:
            notice = dropped_notice(dropped)
            if len(notice) + 1 + len(item.text) <= self.part_chars:
                item.text = f"{notice}\n{item.text}"
            else:
                await self._deliver(OutgoingText(item.chat_id, notice))
        await self._deliver(item)

    async def _deliver(self, item: OutgoingText) -> None:
        backoff = self.first_backoff_s
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._send(item.chat_id, item.text, item.buttons)
            except RetryAfter as exc:
                delay = retry_after_seconds(exc)
                log.warning("Telegram flood control: retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                continue
            except _PERMANENT as exc:
                self.failed_total += 1
                log.error("Telegram refused a message for chat %d, dropped it: %s", item.chat_id, describe(exc))
                return
            except NetworkError as exc:  # includes TimedOut and 5xx answers
                if attempt == 1 or attempt % 20 == 0:
                    log.warning("Telegram unreachable (attempt %d, %d message(s) waiting): %s", attempt,
                                len(self._queue), describe(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            except TelegramError as exc:  # e.g. Conflict or an unexpected answer: retry, slowly
                log.warning("Telegram error while sending (attempt %d): %s", attempt, describe(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            self.sent_total += 1
            if attempt > 1:
                log.info("message delivered after %d attempts", attempt)
            return
