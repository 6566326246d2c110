"""The one way out to Telegram: a bounded queue with retries, so a notification survives an outage.

Every text the service sends (notifications, command answers, refusals) is queued here and sent in
order by one task. On ``RetryAfter`` (HTTP 429, flood control) the sender waits what Telegram asked
and tries the same part again; on ``NetworkError``/``TimedOut`` (Telegram unreachable, 5xx) it
retries with exponential backoff capped at ``max_backoff_s``, for as long as it takes. An error that
retrying cannot fix (bad request, bot blocked, chat gone) drops that part with an error log.

The queue is bounded: when full, the OLDEST part is dropped and counted, so a long outage costs the
stalest news, never memory. Texts over 4,096 characters are split at line boundaries on the way in.
"""

from __future__ import annotations

import asyncio
import logging
import re
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

from services.telegram.core import MAX_MESSAGE_CHARS, split_text

log = logging.getLogger(__name__)

SendFunction = Callable[[int, str], Awaitable[None]]
_PERMANENT = (BadRequest, Forbidden, ChatMigrated, InvalidToken)  # BadRequest subclasses NetworkError


@dataclass(frozen=True, slots=True)
class OutgoingText:
    """One part of a message, addressed to one chat."""

    chat_id: int
    text: str


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


class Outbox:
    """Queue texts for Telegram and send them in order, retrying until they are delivered."""

    def __init__(self, send: SendFunction, maxlen: int = 1000, *, first_backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, part_chars: int = MAX_MESSAGE_CHARS) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be >= 1, got {maxlen}")
        self._send = send
        self._queue: deque[OutgoingText] = deque()
        self._maxlen = maxlen
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_flight: OutgoingText | None = None
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.part_chars = part_chars
        self.sent_total = 0
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

    def put(self, chat_id: int, text: str) -> None:
        """Queue ``text`` for ``chat_id`` (split into parts if long); never blocks, never raises."""
        if self._closed:
            self.discarded_total += 1
            return
        for part in split_text(text, self.part_chars):
            if len(self._queue) >= self._maxlen:
                # The part being sent right now stays; the oldest one still waiting goes.
                index = 1 if self._queue[0] is self._in_flight and len(self._queue) > 1 else 0
                evicted = self._queue[index]
                del self._queue[index]
                self.dropped_total += 1
                if self.dropped_total <= 10 or self.dropped_total % 1000 == 0:  # an outage is no log flood
                    log.warning("outbox full (%d parts): dropped the oldest, %d chars for chat %d "
                                "(%d dropped so far)", self._maxlen, len(evicted.text), evicted.chat_id,
                                self.dropped_total)
            self._queue.append(OutgoingText(chat_id, part))
        if self._queue:
            self._idle.clear()
            self._wakeup.set()

    async def run(self) -> None:
        """Send queued parts forever (until cancelled), oldest first."""
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            item = self._in_flight = self._queue[0]
            try:
                await self._deliver(item)
            finally:
                self._in_flight = None
            if self._queue and self._queue[0] is item:
                self._queue.popleft()

    async def wait_empty(self, timeout_s: float) -> bool:
        """Wait until everything queued was handled (sent or given up); False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _deliver(self, item: OutgoingText) -> None:
        backoff = self.first_backoff_s
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._send(item.chat_id, item.text)
            except RetryAfter as exc:
                delay = retry_after_seconds(exc)
                log.warning("Telegram flood control: retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                continue
            except _PERMANENT as exc:
                self.failed_total += 1
                log.error("Telegram refused a message for chat %d, dropped it: %s", item.chat_id,
                          describe(exc))
                return
            except NetworkError as exc:  # includes TimedOut and 5xx answers
                if attempt == 1 or attempt % 20 == 0:
                    log.warning("Telegram unreachable (attempt %d, %d part(s) waiting): %s", attempt,
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
