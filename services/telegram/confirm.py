"""Confirmation buttons for the dangerous commands (close all, restart of gateway, executor or risk).

A dangerous command does nothing at first: it answers with a question and two buttons whose callback
data carry a random token. Only the owner's press of "confirm" runs the stored action, once: the token
is consumed by the first press (a double tap cannot close twice), and it expires after ``ttl_s`` so a
button found in the chat history next week does nothing. Pure: time from the injected clock.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.telegram.core import AnswerText, BotReply, Button
from shared.clock import Clock

CONFIRM_PREFIX = "ok"
CANCEL_PREFIX = "no"
MAX_PENDING = 32
Action = Callable[[], Awaitable[AnswerText]]


@dataclass(frozen=True, slots=True)
class Pending:
    """One question waiting for the owner's press."""

    what: str
    action: Action
    asked_at: float


class Confirmations:
    """Pending confirmations by token: ask, then take (once, before expiry)."""

    def __init__(self, clock: Clock, ttl_s: float) -> None:
        self.clock = clock
        self.ttl_s = ttl_s
        self._pending: OrderedDict[str, Pending] = OrderedDict()

    def ask(self, question: str, what: str, action: Action, confirm_label: str) -> BotReply:
        """The question with Confirm / Cancel buttons; ``action`` runs only on Confirm."""
        self._expire()
        while len(self._pending) >= MAX_PENDING:
            self._pending.popitem(last=False)
        token = secrets.token_hex(6)
        self._pending[token] = Pending(what, action, self.clock.monotonic())
        text = f"{question}\nConfirm within {self.ttl_s:g} s."
        buttons = ((Button(confirm_label, f"{CONFIRM_PREFIX}:{token}"), Button("Cancel", f"{CANCEL_PREFIX}:{token}")),)
        return BotReply(text, buttons)

    def take(self, token: str) -> Pending | None:
        """The pending action for ``token``, removed; None when unknown, used already or expired."""
        self._expire()
        return self._pending.pop(token, None)

    def __len__(self) -> int:
        return len(self._pending)

    def _expire(self) -> None:
        now = self.clock.monotonic()
        for token in [t for t, p in self._pending.items() if now - p.asked_at >= self.ttl_s]:
            del self._pending[token]


async def on_confirm(confirmations: Confirmations, token: str) -> AnswerText:
    """The answer to a Confirm press: the action's result, or why nothing was done."""
    pending = confirmations.take(token)
    if pending is None:
        return (f"That confirmation expired (after {confirmations.ttl_s:g} s) or was used already; nothing "
                "was done. Send the command again.")
    return await pending.action()


async def on_cancel(confirmations: Confirmations, token: str) -> AnswerText:
    """The answer to a Cancel press."""
    pending = confirmations.take(token)
    return f"Cancelled: {pending.what}. Nothing was done." if pending else "Nothing to cancel (expired or used)."
