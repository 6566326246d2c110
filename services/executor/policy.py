"""The retcode policy, once, for every order the executor sends: opens, closes and SL/TP modifies.

MT5-FACTS, 'Result and retcodes' (the table lives in ``shared.mt5``):

- success (10009, 10008, 10010; 10025 on a modify): done.
- 10004, 10020, 10021, 10024, 10028, 10031: resend with a fresh price (the bid/ask the refusal
  carried), bounded in count (``max_retries``) AND in time (``retry_window_s`` from the first send);
  10021/10024/10028/10031 after a short backoff, a requote at once (the price is what moved).
- 10030: once more with the other filling mode the symbol allows.
- unknown (order_send None, 10011, 10012, an IPC error, an error or no reply from the gateway): the
  order's own ``locate`` asks the broker whether it happened. Found: done. Not there: a resend is
  allowed, as a retry, within the same budget; the check came first, so it is never blind.
- anything else: final, reported with the retcode's name and meaning.

The order supplies hooks (``OrderHooks``): the open leg journals each step there, closes and modifies
need no journal because they name a position ticket and so cannot act twice.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Literal, Protocol

from services.executor.desk import Desk, Reply, Step, Wait
from shared import mt5
from shared.config import ExecutorSection
from shared.messages import ErrorReply, OrderSendReply, OrderSendRequest, TradeRequest, TradeResult

BACKOFF_RETCODES = frozenset({10021, 10024, 10028, 10031})


@dataclass(frozen=True, slots=True)
class Located:
    """What the broker shows of an order whose outcome was unknown."""

    ticket: int
    price: float | None
    volume: float | None
    how: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an order ended: done or not, the last retcode and its text, and the telemetry of the last try."""

    done: bool
    retcode: int | None
    text: str
    result: TradeResult | None
    located: Located | None
    retries: int
    latency_ms: float
    price: float
    """The price of the last request (after requotes, the fresh one)."""


class OrderHooks(Protocol):
    """What one kind of order adds to the policy loop."""

    def refusal(self) -> str | None:
        """Why the order must not be sent (again) now, e.g. its plan expired; None to go on."""

    def request(self, price: float, filling: int) -> TradeRequest: ...

    def before_send(self, attempt: int) -> None:
        """Called just before each request leaves (the open leg journals 'sending' here)."""

    def on_retry(self, retcode: int | None, text: str) -> None:
        """The last attempt certainly did nothing (or the broker showed it absent); another follows."""

    def on_unknown(self, retcode: int | None, text: str) -> None:
        """The last attempt's outcome is unknown; ``locate`` is asked next."""

    def locate(self) -> Generator[Step, Reply, Located | None]:
        """Ask the broker whether the order happened; None if it certainly did not."""


def read_reply(reply: Reply, timeout_s: float) -> tuple[TradeResult | None, str]:
    """The result (None: outcome unknown) and a text naming the retcode or what went wrong."""
    if isinstance(reply, OrderSendReply):
        if reply.result is None:
            return None, f"{mt5.describe_retcode(None)}; last_error {reply.last_error_code} {reply.last_error_text}"
        return reply.result, mt5.describe_retcode(reply.result.retcode)
    if reply is None:
        return None, f"no reply from the gateway within {timeout_s:g} s (outcome unknown)"
    if isinstance(reply, ErrorReply):
        return None, f"gateway error {reply.code}: {reply.text} (outcome unknown)"
    return None, f"unexpected answer {type(reply).__name__} from the gateway (outcome unknown)"


def fresh_price(result: TradeResult | None, side: Literal["buy", "sell"], previous: float) -> float:
    """The price to resend at: the ask (buy) or bid (sell) the refusal carried, else the previous one."""
    if result is None:
        return previous
    quote = result.ask if side == "buy" else result.bid
    return quote if quote > 0 else previous


def execute(
    desk: Desk, order: OrderHooks, *, side: Literal["buy", "sell"], price: float, filling_bits: int,
) -> Generator[Step, Reply, Outcome]:
    """Send ``order`` under the retcode policy until it is done or finally refused."""
    settings = desk.settings
    started = desk.clock.monotonic()
    filling = mt5.filling_for(filling_bits)
    retries = price_retries = attempt = 0
    other_filling_tried = False
    retcode: int | None = None
    text, latency_ms = "", 0.0
    while True:
        refusal = order.refusal()
        if refusal is not None:
            joined = f"{refusal}; last answer: {text}" if text else refusal
            return Outcome(False, retcode, joined, None, None, retries, latency_ms, price)
        attempt += 1
        order.before_send(attempt)
        sent_at = desk.clock.monotonic()
        desk.sent_total += 1
        reply = yield OrderSendRequest(ts=desk.market_now, request=order.request(price, filling))
        desk.checkpoint("replied")
        latency_ms = max(0.0, (desk.clock.monotonic() - sent_at) * 1000)
        result, text = read_reply(reply, settings.request_timeout_s)
        retcode = result.retcode if result is not None else None
        verdict = mt5.classify_retcode(retcode) if result is not None else mt5.RetcodeClass.UNKNOWN
        if verdict is mt5.RetcodeClass.SUCCESS:
            return Outcome(True, retcode, text, result, None, retries, latency_ms, price)
        in_budget = (price_retries < settings.max_retries
                     and desk.clock.monotonic() - started < settings.retry_window_s)
        if verdict is mt5.RetcodeClass.UNKNOWN:
            order.on_unknown(retcode, text)
            located = yield from order.locate()
            if located is not None:
                return Outcome(True, retcode, f"{text}; {located.how}", result, located, retries, latency_ms, price)
            if not in_budget:
                return Outcome(False, retcode, f"{text}; not at the broker; not sent again: {_spent(settings)}",
                               result, None, retries, latency_ms, price)
            order.on_retry(retcode, f"{text}; not at the broker: sending again")
        elif verdict is mt5.RetcodeClass.RETRY_FRESH_PRICE and in_budget:
            order.on_retry(retcode, text)
            price = fresh_price(result, side, price)
            if retcode in BACKOFF_RETCODES and settings.retry_backoff_s > 0:
                yield Wait(settings.retry_backoff_s * (price_retries + 1))
        elif verdict is mt5.RetcodeClass.RETRY_OTHER_FILLING and not other_filling_tried and (
            (other := mt5.other_filling(filling_bits, filling)) is not None
        ):
            other_filling_tried, filling = True, other
            order.on_retry(retcode, text)
            retries += 1
            continue
        else:
            if verdict is mt5.RetcodeClass.RETRY_FRESH_PRICE:
                text = f"{text}; gave up after {retries} retries: {_spent(settings)}"
            return Outcome(False, retcode, text, result, None, retries, latency_ms, price)
        price_retries += 1
        retries += 1


def _spent(settings: ExecutorSection) -> str:
    return f"retry budget spent ({settings.max_retries} retries / {settings.retry_window_s:g} s)"
