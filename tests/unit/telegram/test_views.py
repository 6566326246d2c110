"""The owner's answers as text, argument checks, confirmations and service alerts: pure code, fake clock."""

from __future__ import annotations

import asyncio

import pytest

from services.telegram.args import UsageError, parse_protection, parse_service, parse_symbol_or_all, parse_usd
from services.telegram.confirm import CANCEL_PREFIX, CONFIRM_PREFIX, Confirmations, on_cancel, on_confirm
from services.telegram.views import (
    format_balance,
    format_command_reply,
    format_pnl,
    format_positions,
    format_status,
    peer_problem,
)
from services.telegram.watch import ProcessInfo, ServiceWatch
from shared.clock import FakeClock
from shared.messages import CommandLine, CommandReply, ErrorReply
from tests.unit.telegram.conftest import ACCOUNT, DEALS, MAGIC, MARKET_NOW, POSITIONS, risk_state

SYMBOLS = ("XAUUSDm", "BTCUSDm")


def test_status_per_symbol_with_positions_pnl_and_services() -> None:
    services = [ProcessInfo("gateway_mt5", "RUNNING", 10, "pid 10, uptime 0:05:00"),
                ProcessInfo("strategy_btc", "BACKOFF", 0, "", spawnerr="Exited too quickly")]
    text = format_status(risk_state(), SYMBOLS, positions=POSITIONS, deals=DEALS, today="2025-07-09",
                         services=services)
    assert "Trading: ON (set by telegram:1111)" in text and "+1.25 %" in text
    xau, btc = text.split("\nXAUUSDm: ")[1].split("\nBTCUSDm: ")
    assert xau.startswith("regime B (protective)") and "data ok" in xau and "BUY 87 % at 16:58:55 UTC" in xau
    assert "open positions 3 | floating +3.30" in xau  # 4.3 - 0.1, -1.2 - 0.1, 0.5 - 0.1 (foreign included)
    assert "today realised +30.00 (1 deal)" in xau  # 31 - 1 commission; the entry deal realises nothing
    assert btc.startswith("regime C (stopped)") and "NOT ok (stale 130s)" in btc and "LOCKED" not in btc
    assert "open positions 1 | floating +9.90" in btc and "today realised -5.00 (1 deal)" in btc
    assert "Services: 1/2 running" in text and "strategy_btc BACKOFF (Exited too quickly)" in text


def test_status_shows_a_locked_symbol() -> None:
    state = risk_state()
    locked = state.symbols["BTCUSDm"].model_copy(update={"trading_locked": True})
    text = format_status(state.model_copy(update={"symbols": {**state.symbols, "BTCUSDm": locked}}), SYMBOLS)
    assert "BTCUSDm: regime C (stopped), TRADING LOCKED (hard stop)" in text
    assert "XAUUSDm: regime B (protective)\n" in text


def test_status_says_which_part_is_unknown_and_why() -> None:
    text = format_status(None, SYMBOLS, risk_problem="risk not answering (waited 1 s).",
                         gateway_problem="gateway not answering (waited 1 s).", services_problem="no control socket")
    assert text.startswith("risk not answering")
    assert "Positions and P&L unknown: gateway not answering" in text
    assert "Services: unknown (no control socket)" in text
    assert "XAUUSDm:" in text and "BTCUSDm:" in text


def test_positions_have_side_lots_open_levels_and_pnl() -> None:
    text = format_positions(POSITIONS, frozenset({MAGIC}))
    assert text.startswith("Open positions: 4 | floating +13.20")
    assert "#5001 XAUUSDm BUY 0.02 lots, open 2350.15\n  SL 2345.5 | TP none | now 2352.15 | P&L +4.30" in text
    assert "#5002 XAUUSDm SELL 0.02 lots, open 2350.15\n  SL 2354.8 | TP 2360.25" in text
    assert "#7001 XAUUSDm BUY 0.02 lots, open 2350.15 [not ours: magic 123]" in text
    assert format_positions((), frozenset({MAGIC}), "BTCUSDm") == "No open positions on BTCUSDm."


def test_pnl_per_utc_day_for_seven_days_from_exit_deals() -> None:
    lines = format_pnl(DEALS, MARKET_NOW, POSITIONS).splitlines()
    days = lines[1:8]
    assert days[0] == "2025-07-09 (today): +25.00 (2 deals) - BTCUSDm -5.00, XAUUSDm +30.00"
    assert days[1] == "2025-07-08: +10.00 (1 deal) - XAUUSDm +10.00"
    assert days[3] == "2025-07-06: +2.50 (1 deal) - BTCUSDm +2.50"
    assert days[6].startswith("2025-07-03: 0.00 (0 deals)")
    assert lines[8] == "7 days: +37.50 (4 deals)"  # the deal 10 days back is outside the window
    assert lines[9] == "Floating now: +13.20 (4 open)"


def test_balance_and_command_outcomes() -> None:
    balance = format_balance(ACCOUNT)
    for expected in ("Balance 10,125.50 USD", "Equity 10,138.00", "floating +12.50", "free 10,088.00", "1:500"):
        assert expected in balance, expected
    reply = CommandReply(ts=1.0, parent="x", ok=False, summary="TP 50 USD: 1 changed, 1 refused",
                         lines=(CommandLine(ok=True, text="#1 TP 1 -> 2"), CommandLine(ok=False, text="#2 refused")))
    assert format_command_reply(reply).splitlines() == ["NOT fully done: TP 50 USD: 1 changed, 1 refused",
                                                        "OK #1 TP 1 -> 2", "FAILED #2 refused"]
    assert "waited 2 s" in peer_problem("risk", None, 2.0)
    assert "busy: warming up" in peer_problem("risk", ErrorReply(ts=1.0, parent="x", code="busy", text="warming up"),
                                              2.0)


@pytest.mark.parametrize(("args", "problem"), [
    ([], "Missing the amount"), (["-5"], "must be positive"), (["0"], "must be positive"),
    (["abc"], "is not a number"), (["nan"], "is not a number"), (["inf"], "is not a number"),
    (["1e9"], "over the 10,000 USD limit"), (["50", "EURUSD"], "Unknown symbol"), (["5", "x", "y"], "Too many"),
])
def test_protection_refuses_bad_amounts_with_usage(args: list[str], problem: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_protection("tek_prof", "take profit", args, SYMBOLS, 10_000.0)
    assert problem in str(refused.value) and "Usage: /tek_prof USD [SYMBOL]" in str(refused.value)


def test_arguments_that_are_accepted() -> None:
    assert parse_protection("stop_ls", "stop loss", ["$12.5", "xau"], SYMBOLS, 100.0) == (12.5, "XAUUSDm")
    assert parse_usd("40usd", 100.0) == 40.0
    assert parse_symbol_or_all("closeall", [], SYMBOLS) is None
    assert parse_symbol_or_all("closeall", ["ALL"], SYMBOLS) is None
    assert parse_symbol_or_all("closeall", ["btcusdm"], SYMBOLS) == "BTCUSDm"
    assert parse_service(["strategy_xau"], ["strategy_xau", "risk"]) == "strategy_xau"
    for bad in ([], ["strategy"], ["a", "b"]):  # a restart names one program exactly
        with pytest.raises(UsageError, match="Usage: /restart SERVICE"):
            parse_service(bad, ["strategy_xau", "risk"])


def test_a_confirmation_runs_once_and_expires() -> None:
    clock = FakeClock()
    confirmations = Confirmations(clock, ttl_s=60)
    runs: list[str] = []

    async def act() -> str:
        runs.append("closed")
        return "closed"

    def token_of(prefix: str) -> str:
        reply = confirmations.ask("Close all?", "close all", act, "Close all")
        assert "Close all?" in reply.text and "60 s" in reply.text
        return next(b.data for row in reply.buttons for b in row if b.data.startswith(prefix)).split(":", 1)[1]

    used = token_of(CONFIRM_PREFIX)
    assert asyncio.run(on_confirm(confirmations, used)) == "closed"
    assert "expired" in str(asyncio.run(on_confirm(confirmations, used)))  # a double tap does nothing
    late = token_of(CONFIRM_PREFIX)
    clock.advance(60)
    assert "expired" in str(asyncio.run(on_confirm(confirmations, late)))
    cancelled = token_of(CANCEL_PREFIX)
    assert "Cancelled: close all" in str(asyncio.run(on_cancel(confirmations, cancelled)))
    assert "expired" in str(asyncio.run(on_confirm(confirmations, cancelled)))
    assert runs == ["closed"] and len(confirmations) == 0


def snapshot(**states: tuple[str, int]) -> list[ProcessInfo]:
    return [ProcessInfo(name, state, pid, spawnerr="Exited too quickly" if state == "FATAL" else "")
            for name, (state, pid) in states.items()]


def test_service_watch_reports_stops_restarts_and_sums_up_a_crash_loop() -> None:
    clock = FakeClock()
    watch = ServiceWatch(clock, alert_interval_s=60)
    assert watch.update(snapshot(risk=("RUNNING", 10), strategy_btc=("RUNNING", 20), gateway=("FATAL", 0))) == [
        "Service gateway is FATAL (Exited too quickly) (at start)."]
    clock.advance(2)
    [exited] = watch.update(snapshot(risk=("RUNNING", 10), strategy_btc=("EXITED", 0), gateway=("FATAL", 0)))
    assert "strategy_btc is EXITED (exit status 0) (was RUNNING)" in exited
    pid = 20
    for _ in range(5):  # crashes and comes back every 2 s: held back, counted
        clock.advance(2)
        pid += 1
        assert watch.update(snapshot(risk=("RUNNING", 10), strategy_btc=("RUNNING", pid), gateway=("FATAL", 0))) == []
    clock.advance(60)
    [summary] = watch.update(snapshot(risk=("RUNNING", 10), strategy_btc=("RUNNING", pid), gateway=("FATAL", 0)))
    assert "strategy_btc keeps restarting: 5 restarts in the last 10 min" in summary and "RUNNING" in summary
    clock.advance(1)
    assert watch.update(snapshot(risk=("RUNNING", 10), strategy_btc=("RUNNING", pid), gateway=("FATAL", 0))) == []


def test_service_watch_is_quiet_about_restarts_the_owner_asked_for() -> None:
    clock = FakeClock()
    watch = ServiceWatch(clock, alert_interval_s=0)
    watch.update(snapshot(strategy_xau=("RUNNING", 10)))
    watch.expect("strategy_xau")
    assert watch.update(snapshot(strategy_xau=("STOPPED", 0))) == []
    assert watch.update(snapshot(strategy_xau=("RUNNING", 11))) == []
    clock.advance(61)
    assert watch.update(snapshot(strategy_xau=("RUNNING", 12))) == ["Service strategy_xau restarted (pid 11 -> 12)."]
    assert watch.update(snapshot(strategy_xau=("STOPPED", 0))) == [
        "Service strategy_xau is STOPPED (was RUNNING)."]
    assert len(watch.unreachable("socket gone")) == 1 and watch.unreachable("socket gone") == []  # said once
    assert watch.update(snapshot(strategy_xau=("STOPPED", 0)))[0].startswith("supervisord answers again")
