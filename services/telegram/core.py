"""What the Telegram service says, decided without Telegram or ZeroMQ: events in, texts out.

The runner feeds ``TelegramCore`` every message risk publishes and every command the bot receives; the
core answers with plain texts (no parse mode, so a '<' in a signal reason can never make Telegram
refuse a notification). Formatting is a set of pure functions, one per event type, so the later full
Telegram issue adds a line to ``_NOTIFIERS`` and a function, not a branch in a long handler.

Units, as ``shared.messages`` carries them: confidence and day return are fractions (0.82 = 82 %),
latency in milliseconds, slippage in points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from shared import topics
from shared.clock import Clock
from shared.messages import (
    ErrorReply,
    ExecutionReport,
    RegimeChanged,
    RiskState,
    RiskStateReply,
    RiskStateRequest,
    SymbolRiskState,
)

MAX_MESSAGE_CHARS = 4096  # Telegram's limit for one message's text
REFUSAL = "Sorry, this bot answers only its owner."
RISK_SILENT = "Risk service not answering; status unknown. Is the risk process running?"
UNKNOWN_COMMAND = "Unknown command. /help lists what I understand."
REFUSAL_INTERVAL_S = 60.0  # a stranger is told at most once a minute (flood cannot evict notifications)
_REGIME_MEANING = {"A": "normal", "B": "protective", "C": "stopped"}
# Topics whose every message the owner should see: a gap there means a notification went missing.
_WATCHED_TOPICS = (topics.RISK_EXECUTION, topics.RISK_REGIME)


def format_price(value: float) -> str:
    """A price or lot size without float noise or trailing zeros: 2350.15, 0.02, 65000."""
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def format_percent(fraction: float, signed: bool = False) -> str:
    """0.823 -> '82.3 %'; with ``signed`` a day return shows its direction: '+1.25 %'."""
    value = fraction * 100
    return f"{value:+.2f} %" if signed else f"{value:.1f} %".replace(".0 %", " %")


def format_execution(report: ExecutionReport) -> str:
    """The owner's view of one leg: opened (with the full why and how), rejected, or unknown."""
    head = f"{report.symbol} {report.side.upper()}"
    lots = format_price(report.volume)
    requested = f"Leg {report.leg_id}: {lots} lots @ {format_price(report.requested_price)}"
    if report.status == "filled":
        fill = format_price(report.fill_price) if report.fill_price is not None else "?"
        reasons = "; ".join(report.reasons) if report.reasons else "(none given)"
        return "\n".join([
            f"Order opened: {head}",
            f"Leg {report.leg_id}: {lots} lots @ {fill}",
            f"SL {format_price(report.sl)} | TP {format_price(report.tp)}",
            f"Confidence {format_percent(report.confidence)} | regime {report.regime}",
            f"Reasons: {reasons}",
            f"Latency {report.latency_ms:.0f} ms | slippage {report.slippage_points:g} points",
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
        f"Leg {report.leg_id}: {format_price(report.volume)} lots @ {format_price(report.requested_price)}",
        f"Broker said: {why}. Check the terminal: the position may be open.",
    ])


def format_regime(event: RegimeChanged) -> str:
    """A regime move and the rule that made it."""
    meaning = _REGIME_MEANING.get(event.new, "")
    return "\n".join([
        f"Regime {event.symbol}: {event.old} -> {event.new} ({meaning})",
        f"Reason: {event.reason}",
        f"Day return: {format_percent(event.day_return, signed=True)}",
    ])


def _symbol_line(symbol: str, state: SymbolRiskState) -> str:
    data = "ok" if state.data_ok else f"NOT ok ({state.data_reason})"
    confidence = (format_percent(state.last_signal_confidence)
                  if state.last_signal_confidence is not None else "none yet")
    return "\n".join([
        f"{symbol}: regime {state.regime} ({_REGIME_MEANING.get(state.regime, '')})",
        f"  data {data}",
        f"  last signal {confidence} | open positions {state.open_positions}",
    ])


def format_status(state: RiskState, symbols: Sequence[str] = ()) -> str:
    """The /status answer: trading switch, day return, then each symbol (configured order first)."""
    lines = [
        f"Trading: {'ON' if state.trading_enabled else 'OFF'}",
        f"Day return: {format_percent(state.day_return, signed=True)} "
        f"(day start balance {state.day_start_balance:,.2f})",
    ]
    order = [s for s in symbols if s in state.symbols] + sorted(s for s in state.symbols if s not in symbols)
    lines.extend(_symbol_line(symbol, state.symbols[symbol]) for symbol in order)
    lines.extend(f"{symbol}: not reported by risk" for symbol in symbols if symbol not in state.symbols)
    return "\n".join(lines)


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
}


class TelegramCore:
    """Turns risk's events into notifications and commands into requests and replies.

    No ZeroMQ, no python-telegram-bot: the runner moves the bytes. The clock stamps requests and paces
    refusals to strangers; nothing here reads the machine's time.
    """

    def __init__(self, clock: Clock, admin_id: int, symbols: Sequence[str]) -> None:
        self.clock = clock
        self.admin_id = admin_id
        self.symbols = tuple(symbols)
        self.refused_total = 0
        self._last_refusal: dict[int, float] = {}

    # ---- notifications -------------------------------------------------------------------------
    def notify(self, message: object) -> list[str]:
        """Texts for the owner about one message from risk's PUB; none for what the owner need not see."""
        notifier = _NOTIFIERS.get(type(message))
        return [notifier(message)] if notifier is not None else []

    def on_gap(self, topic: str, missed: int) -> list[str]:
        """A warning when notifications were lost between risk and us (a PUB sequence gap)."""
        if missed <= 0 or not topic.startswith(_WATCHED_TOPICS):
            return []
        return [f"Warning: {missed} message(s) on {topic} were lost before reaching Telegram; "
                "check the terminal and /status."]

    # ---- commands ------------------------------------------------------------------------------
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
        return RiskStateRequest(ts=self.clock.now())

    def status_text(self, reply: object | None) -> str:
        """The /status answer from risk's reply (None: risk did not answer in time)."""
        if reply is None:
            return RISK_SILENT
        if isinstance(reply, RiskStateReply):
            return format_status(reply.state, self.symbols)
        if isinstance(reply, ErrorReply):
            return f"Risk could not answer: {reply.code}: {reply.text}"
        return f"Risk answered with an unexpected {type(reply).__name__}; status unknown."
