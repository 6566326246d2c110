"""What the Telegram service says about events, decided without Telegram or ZeroMQ: events in, texts out.

The runner feeds ``TelegramCore`` every message risk publishes; the core answers with plain texts (no
parse mode, so a '<' in a signal reason can never make Telegram refuse a notification). Formatting is a
set of pure functions, one per event type, listed in ``_NOTIFIERS``: a new event is a line there and a
function, not a branch in a long handler. Command answers live in ``views`` (formatting) and
``commands`` (the work).

Units, as ``shared.messages`` carries them: confidence and day return are fractions (0.82 = 82 %),
latency in milliseconds, slippage in points, money in the account currency.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared import topics
from shared.clock import Clock
from shared.messages import (
    DayStarted,
    ExecutionReport,
    Message,
    PositionAdopted,
    RegimeChanged,
    RiskStateRequest,
    TradingLocked,
)

MAX_MESSAGE_CHARS = 4096  # Telegram's limit for one message's text
REFUSAL = "Sorry, this bot answers only its owner."
UNKNOWN_COMMAND = "Unknown command. /help lists what I understand."
REFUSAL_INTERVAL_S = 60.0  # a stranger is told at most once a minute (flood cannot evict notifications)
REGIME_MEANING = {"A": "normal", "B": "protective", "C": "stopped"}
# Topics whose every message the owner should see: a gap there means a notification went missing.
_WATCHED_TOPICS = (topics.RISK_EXECUTION, topics.RISK_REGIME, topics.RISK_DAY, topics.RISK_LOCK)


@dataclass(frozen=True, slots=True)
class Button:
    """One inline-keyboard button: its label and the callback data (at most 64 bytes) it sends back."""

    label: str
    data: str


@dataclass(frozen=True, slots=True)
class BotReply:
    """A text with inline buttons (rows of ``Button``); plain answers are just ``str``."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()


AnswerText = str | BotReply


def format_price(value: float) -> str:
    """A price or lot size without float noise or trailing zeros: 2350.15, 0.02, 65000."""
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def format_percent(fraction: float, signed: bool = False) -> str:
    """0.823 -> '82.3 %'; with ``signed`` a day return shows its direction: '+1.25 %'."""
    value = fraction * 100
    return f"{value:+.2f} %" if signed else f"{value:.1f} %".replace(".0 %", " %")


def format_money(value: float) -> str:
    """An amount with its sign and thousands separators: '+1,234.50', '-12.00', '0.00'."""
    return "0.00" if round(value, 2) == 0 else f"{value:+,.2f}"


def format_utc(ts: float, with_date: bool = False) -> str:
    """Epoch seconds as UTC: '14:05:09 UTC' or '2025-07-09 14:05 UTC'."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if with_date else moment.strftime("%H:%M:%S UTC")


def utc_day(ts: float) -> str:
    """The UTC day of ``ts`` as 'YYYY-MM-DD' (the trading day: risk resets at 00:00 UTC)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def format_execution(report: ExecutionReport) -> str:
    """The owner's view of one leg: opened (with the full why and how), rejected, or unknown."""
    head = f"{report.symbol} {report.side.upper()}"
    lots = format_price(report.volume)
    requested = f"Leg {report.leg_id}: {lots} lots @ {format_price(report.requested_price)}"
    if report.status == "filled":
        fill = format_price(report.fill_price) if report.fill_price is not None else "?"
        reasons = "; ".join(report.reasons) if report.reasons else "(none given)"
        ticket = f" | ticket {report.ticket}" if report.ticket is not None else ""
        return "\n".join([
            f"Order opened: {head}",
            f"Leg {report.leg_id}: {lots} lots @ {fill} (asked {format_price(report.requested_price)}){ticket}",
            f"SL {format_price(report.sl)} | TP {format_price(report.tp)}",
            f"Confidence {format_percent(report.confidence)} | regime {report.regime}",
            f"Reasons: {reasons}",
            f"Latency {report.latency_ms:.0f} ms | slippage {report.slippage_points:g} points "
            f"({format_money(report.slippage_usd)}) | retries {report.retries}",
        ])
    why = report.retcode_text or (f"retcode {report.retcode}" if report.retcode is not None else "no retcode")
    if report.status == "rejected":
        return "\n".join([
            f"Order rejected: {head}",
            requested,
            f"Broker said: {why} (after {report.retries} retries)",
        ])
    return "\n".join([
        f"Order outcome UNKNOWN: {head}",
        requested,
        f"Broker said: {why}. Check the terminal: the position may be open.",
    ])


def format_regime(event: RegimeChanged) -> str:
    """A regime move and the rule that made it."""
    meaning = REGIME_MEANING.get(event.new, "")
    return "\n".join([
        f"Regime {event.symbol}: {event.old} -> {event.new} ({meaning})",
        f"Reason: {event.reason}",
        f"Day return: {format_percent(event.day_return, signed=True)}",
    ])


def format_trading_locked(event: TradingLocked) -> str:
    """The hard stop: nothing more is opened on this symbol today unless the owner acts."""
    return "\n".join([
        f"TRADING LOCKED on {event.symbol} (hard stop)",
        f"Reason: {event.reason}",
        f"Day return: {format_percent(event.day_return, signed=True)}",
        "No new orders on this symbol until the next day. Open positions keep their SL/TP; /closeall closes.",
    ])


def format_day_started(event: DayStarted) -> str:
    """A new trading day and how the previous one ended."""
    lines = [f"New trading day {event.day} (start balance {event.start_balance:,.2f})"]
    if event.previous_day is not None:
        lines.append(f"Yesterday {event.previous_day}: {format_money(event.previous_pnl)} "
                     f"({format_percent(event.previous_return, signed=True)})")
    else:
        lines.append("No previous day on record.")
    return "\n".join(lines)


def format_position_adopted(event: PositionAdopted) -> str:
    """A position of ours the executor found but never sent: an order that outlived a crash, or a hand."""
    return "\n".join([
        f"Position ADOPTED: #{event.ticket} {event.symbol} {event.side.upper()} {format_price(event.volume)} lots "
        f"@ {format_price(event.price_open)}",
        f"SL {format_price(event.sl) if event.sl else 'none'} | TP {format_price(event.tp) if event.tp else 'none'}",
        f"Why: {event.reason or 'our magic, unknown to the journal'}. Owner commands now act on it.",
    ])


def format_help(commands: Iterable[tuple[str, str]]) -> str:
    """The /help answer from the command registry itself, so it cannot drift from what is handled."""
    return "\n".join(["Commands:", *(f"/{name} - {description}" for name, description in commands)])


def split_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Cut ``text`` into parts of at most ``limit`` characters, at line boundaries where possible.

    A single line longer than ``limit`` is cut hard. Empty input gives no parts (Telegram refuses an
    empty message).
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    parts: list[str] = []
    current = ""
    for whole_line in text.splitlines(keepends=True):
        line = whole_line
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            parts.append(current)
            current = ""
        current += line
    if current:
        parts.append(current)
    return [stripped for part in parts if (stripped := part.rstrip("\n")).strip()]


_NOTIFIERS: dict[type[Any], Callable[[Any], str]] = {
    ExecutionReport: format_execution,
    RegimeChanged: format_regime,
    TradingLocked: format_trading_locked,
    DayStarted: format_day_started,
    PositionAdopted: format_position_adopted,
}


class TelegramCore:
    """Turns risk's events into notifications, tells the owner from strangers, and keeps market time.

    No ZeroMQ, no python-telegram-bot: the runner moves the bytes. The clock paces refusals to
    strangers; "today" for /pnl comes from the market time carried by the messages seen (risk
    publishes its state every second), and only falls back to the clock before any arrived.
    """

    def __init__(self, clock: Clock, admin_id: int, symbols: Sequence[str]) -> None:
        self.clock = clock
        self.admin_id = admin_id
        self.symbols = tuple(symbols)
        self.refused_total = 0
        self._market_now = 0.0
        self._last_refusal: dict[int, float] = {}

    @property
    def owner_tag(self) -> str:
        """Who a command came from, as risk and the executor record it ('by')."""
        return f"telegram:{self.admin_id}"

    def market_now(self) -> float:
        """The latest market time seen in any message; the clock until one arrived."""
        return self._market_now or self.clock.now()

    def observe(self, message: Message) -> None:
        """Move market time forward from a received message (never back)."""
        self._market_now = max(self._market_now, message.ts)

    # ---- notifications -------------------------------------------------------------------------
    def notify(self, message: Message) -> list[str]:
        """Texts for the owner about one message from risk's PUB; none for what the owner need not see."""
        self.observe(message)
        notifier = _NOTIFIERS.get(type(message))
        return [notifier(message)] if notifier is not None else []

    def on_gap(self, topic: str, missed: int) -> list[str]:
        """A warning when notifications were lost between risk and us (a PUB sequence gap)."""
        if missed <= 0 or not topic.startswith(_WATCHED_TOPICS):
            return []
        return [f"Warning: {missed} message(s) on {topic} were lost before reaching Telegram; "
                "check the terminal and /status."]

    # ---- the owner and strangers ---------------------------------------------------------------
    def is_admin(self, user_id: int | None) -> bool:
        """Only the configured owner may use the bot."""
        return user_id is not None and user_id == self.admin_id

    def refusal(self, user_id: int) -> str | None:
        """The refusal for a stranger, or None when they were already told within REFUSAL_INTERVAL_S."""
        self.refused_total += 1
        now = self.clock.monotonic()
        last = self._last_refusal.get(user_id)
        if last is not None and now - last < REFUSAL_INTERVAL_S:
            return None
        if len(self._last_refusal) > 10_000:  # bounded memory under a flood of distinct ids
            self._last_refusal.clear()
        self._last_refusal[user_id] = now
        return REFUSAL

    def status_request(self) -> RiskStateRequest:
        """The question /status asks risk."""
        return RiskStateRequest(ts=self.market_now())
