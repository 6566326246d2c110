"""TelegramCore and its formatting: pure functions, no sockets, a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from services.telegram.commands import Command, with_help
from services.telegram.core import (
    REFUSAL,
    REFUSAL_INTERVAL_S,
    TelegramCore,
    format_day_started,
    format_execution,
    format_regime,
    format_trading_locked,
    split_text,
)
from shared import topics
from shared.clock import FakeClock
from shared.messages import DayStarted, PositionAdopted, RegimeChanged, RiskStateRequest, TradingLocked
from tests.unit.telegram.conftest import ADMIN_ID, MARKET_NOW, STRANGER_ID, filled_report, risk_state

SYMBOLS = ("XAUUSDm", "BTCUSDm")


def make_core() -> tuple[TelegramCore, FakeClock]:
    clock = FakeClock()
    return TelegramCore(clock, ADMIN_ID, SYMBOLS), clock


def test_order_opened_shows_what_was_opened_and_why() -> None:
    text = format_execution(filled_report())
    assert text.startswith("Order opened")
    for expected in ("XAUUSDm", "BUY", "XAU-1752080460-1", "0.02 lots", "2350.15", "SL 2345.5", "TP 2360.25",
                     "87 %", "regime A", "ema stack up", "rsi 58 rising", "123 ms", "5 points",
                     "asked 2350.1", "ticket 5001", "(+0.50)"):
        assert expected in text, expected


def test_an_adopted_position_is_told() -> None:
    core, _ = make_core()
    [text] = core.notify(PositionAdopted(ts=1.0, ticket=77, symbol="XAUUSDm", side="sell", volume=0.03,
                                         price_open=2351.5, sl=2356.0, magic=777001, reason="found at start"))
    for expected in ("ADOPTED", "#77 XAUUSDm SELL 0.03 lots @ 2351.5", "SL 2356 | TP none", "found at start"):
        assert expected in text, expected


def test_sell_fill_and_fractional_confidence() -> None:
    text = format_execution(filled_report(side="sell", symbol="BTCUSDm", volume=0.1, confidence=0.735,
                                          fill_price=65000.0, sl=65250.0, tp=64500.0))
    for expected in ("BTCUSDm SELL", "0.1 lots @ 65000", "SL 65250", "TP 64500", "73.5 %"):
        assert expected in text, expected


def test_rejected_and_unknown_outcomes_say_so() -> None:
    rejected = format_execution(filled_report(status="rejected", fill_price=None, retcode=10019,
                                              retcode_text="no money"))
    unknown = format_execution(filled_report(status="unknown", fill_price=None, retcode=None))
    assert rejected.startswith("Order rejected") and "no money" in rejected
    assert "UNKNOWN" in unknown and "XAUUSDm BUY" in unknown
    assert "Order opened" not in rejected + unknown


def test_regime_change_names_symbol_move_and_reason() -> None:
    text = format_regime(RegimeChanged(ts=1.0, symbol="BTCUSDm", old="A", new="C",
                                       reason="daily loss 5% reached", day_return=-0.051))
    for expected in ("BTCUSDm", "A -> C", "daily loss 5% reached", "-5.10 %"):
        assert expected in text, expected


def test_trading_lock_and_new_day_say_why_and_how_yesterday_ended() -> None:
    locked = format_trading_locked(TradingLocked(ts=1.0, symbol="XAUUSDm", reason="daily loss 5% reached",
                                                 day_return=-0.0512))
    for expected in ("LOCKED", "XAUUSDm", "daily loss 5% reached", "-5.12 %"):
        assert expected in locked, expected
    day = format_day_started(DayStarted(ts=1.0, day="2025-07-10", start_balance=10_234.5, previous_day="2025-07-09",
                                        previous_pnl=234.5, previous_return=0.0234))
    for expected in ("2025-07-10", "10,234.50", "Yesterday 2025-07-09", "+234.50", "+2.34 %"):
        assert expected in day, expected
    first = format_day_started(DayStarted(ts=1.0, day="2025-07-10", start_balance=500.0))
    assert "No previous day" in first


def test_requests_carry_the_market_time_seen_not_the_clock() -> None:
    core, clock = make_core()
    request = core.status_request()
    assert isinstance(request, RiskStateRequest) and request.ts == clock.now()  # nothing seen yet
    core.notify(risk_state().model_copy(update={"ts": MARKET_NOW - 86_400 * 300}))
    assert core.status_request().ts == MARKET_NOW - 86_400 * 300
    core.notify(filled_report(ts=MARKET_NOW - 86_400 * 400))  # older: market time never goes back
    assert core.market_now() == MARKET_NOW - 86_400 * 300


def test_notify_only_for_owner_events() -> None:
    core, _ = make_core()
    assert len(core.notify(filled_report())) == 1
    assert core.notify(risk_state()) == []
    for topic in (topics.RISK_DAY, topics.RISK_LOCK, topics.RISK_REGIME):
        assert core.on_gap(topic, 1)
    assert core.on_gap(topics.RISK_EXECUTION, 2) and "2 message(s)" in core.on_gap(topics.RISK_EXECUTION, 2)[0]
    assert core.on_gap(topics.RISK_STATE, 5) == []
    assert core.on_gap(topics.RISK_EXECUTION, 0) == []


def test_only_the_admin_is_admin_and_refusals_are_paced() -> None:
    core, clock = make_core()
    assert core.is_admin(ADMIN_ID)
    assert not core.is_admin(STRANGER_ID) and not core.is_admin(None)
    assert core.refusal(STRANGER_ID) == REFUSAL
    assert core.refusal(STRANGER_ID) is None  # told already: a flood cannot fill the outbox
    assert core.refusal(STRANGER_ID + 1) == REFUSAL
    clock.advance(REFUSAL_INTERVAL_S)
    assert core.refusal(STRANGER_ID) == REFUSAL
    assert core.refused_total == 4


def test_split_keeps_every_line_and_respects_the_limit() -> None:
    lines = [f"line {i:04d} " + "x" * (i % 90) for i in range(400)]
    text = "\n".join(lines)
    assert len(text) > 10_000
    parts = split_text(text)
    assert len(parts) >= 3
    assert all(len(part) <= 4096 for part in parts)
    assert [line for part in parts for line in part.split("\n")] == lines  # cut only between lines


def test_split_cuts_an_overlong_line_hard_and_drops_blank_parts() -> None:
    parts = split_text("y" * 10_000, limit=4096)
    assert [len(p) for p in parts] == [4096, 4096, 1808]
    assert split_text("short") == ["short"]
    assert split_text("\n\n") == []
    with pytest.raises(ValueError, match="limit"):
        split_text("x", limit=0)


def test_help_is_generated_from_the_registry() -> None:
    async def answer(_args: object) -> str:
        return "ok"

    commands = with_help([Command("status", "what risk knows", answer), Command("ping", "alive?", answer)])
    assert [c.name for c in commands] == ["status", "ping", "help"]
    text = asyncio.run(commands[-1].answer([]))
    assert isinstance(text, str)
    assert "/status - what risk knows" in text and "/ping - alive?" in text and "/help" in text
