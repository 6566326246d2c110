"""Every owner command end to end: real PTB against the fake Bot API, real ZeroMQ ROUTERs playing risk,
the gateway and the executor. Each command as the admin and as a stranger; bad arguments; buttons."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.telegram.core import REFUSAL, UNKNOWN_COMMAND
from shared.clock import FakeClock
from shared.config import LoadedConfig
from shared.messages import (
    AccountRequest,
    CloseAll,
    DealsRequest,
    PositionsRequest,
    RiskStateRequest,
    SetProtection,
    SetTrading,
)
from tests.fakes.telegram_api import FakeTelegramServer, SentMessage
from tests.unit.telegram.conftest import (
    ADMIN_ID,
    STRANGER_ID,
    FakePeer,
    Peers,
    ServiceFactory,
    gateway_answer,
    position,
    write_config,
)

EVERY_COMMAND = ("/start", "/status", "/start_trading", "/stop_trading", "/balance", "/positions", "/pnl",
                 "/tek_prof 50", "/stop_ls 25", "/closeall", "/restart strategy_xau", "/help", "/nonsense", "hello")


def ask(fake: FakeTelegramServer, text: str, user: int = ADMIN_ID) -> SentMessage:
    """Send ``text`` as ``user`` and return the bot's next message to them."""
    start = len(fake.sent_messages())
    fake.push_message(text, user)
    return fake.wait_for_message(lambda m: m.chat_id == user and m.method == "sendMessage", timeout=10, start=start)


def press(fake: FakeTelegramServer, message: SentMessage, prefix: str, user: int = ADMIN_ID) -> SentMessage:
    """Press the button of ``message`` whose data starts with ``prefix``; the bot's next message to ``user``."""
    data = next(d for d in message.button_data() if d.startswith(prefix))
    start = len(fake.sent_messages())
    fake.push_callback(data, user, message_id=message.message_id)
    return fake.wait_for_message(lambda m: m.chat_id == user and m.method == "sendMessage", timeout=10, start=start)


def test_every_command_answers_the_admin(fake: FakeTelegramServer, peers: Peers,
                                         start_service: ServiceFactory) -> None:
    risk, gateway, executor = peers
    start_service()
    menu = ask(fake, "/start")
    assert "Trading: ON (set by telegram:1111)" in menu.text and menu.button_data() == ["trade:on", "trade:off"]
    status = ask(fake, "/status")
    for expected in ("XAUUSDm: regime B", "BUY 87 %", "open positions 3 | floating +3.30", "today realised +30.00",
                     "BTCUSDm: regime C", "NOT ok (stale 130s)", "Services: unknown (no control socket"):
        assert expected in status.text, expected
    assert status.button_data() == ["trade:off"]
    assert "Balance 10,125.50 USD" in ask(fake, "/balance").text
    assert ask(fake, "/positions").text.startswith("Open positions: 4 | floating +13.20")
    assert ask(fake, "/positions btc").text.startswith("Open positions on BTCUSDm: 1")
    assert "2025-07-09 (today): +25.00 (2 deals)" in ask(fake, "/pnl").text

    take_profit = ask(fake, "/tek_prof 50").text
    assert "OK #5001 XAUUSDm BUY TP 2360.25 -> 2375.15" in take_profit and "FAILED #5002" in take_profit
    stop_loss = ask(fake, "/stop_ls 25 xau").text
    assert "SL at 25 USD" in stop_loss and "OK #5001 XAUUSDm BUY SL 2360.25 -> 2375.15" in stop_loss
    assert [(r.level, r.usd, r.symbol, r.by) for _, r in executor.received() if isinstance(r, SetProtection)] == [
        ("tp", 50.0, None, "telegram:1111"), ("sl", 25.0, "XAUUSDm", "telegram:1111")]

    stopped = ask(fake, "/stop_trading")
    assert "Trading is now OFF" in stopped.text and "processes keep running" in stopped.text
    assert stopped.button_data() == ["trade:on"]
    assert "Trading is now ON" in ask(fake, "/start_trading").text
    assert [r.enabled for _, r in risk.received() if isinstance(r, SetTrading)] == [False, True]

    assert "Cannot restart anything: no control socket" in ask(fake, "/restart strategy_xau").text
    assert ask(fake, "/help").text.startswith("Commands:\n/start")
    assert ask(fake, "/nonsense").text == UNKNOWN_COMMAND
    assert ask(fake, "hello").text == UNKNOWN_COMMAND
    callers = {caller for peer in (risk, gateway, executor) for caller, _ in peer.received()}
    assert callers == {"telegram"}
    assert {type(r) for _, r in gateway.received()} == {AccountRequest, PositionsRequest, DealsRequest}


def test_every_command_refuses_a_stranger(fake: FakeTelegramServer, peers: Peers, start_service: ServiceFactory,
                                          caplog: pytest.LogCaptureFixture) -> None:
    risk, gateway, executor = peers
    start_service()
    menu = ask(fake, "/start")  # the admin's message with buttons, for a stranger to press
    for offset, command in enumerate(EVERY_COMMAND, start=1):
        assert ask(fake, command, STRANGER_ID + offset).text == REFUSAL
    start = len(fake.requests_log())
    fake.push_callback("trade:off", STRANGER_ID, message_id=menu.message_id)
    answered = fake.wait_for_request("answerCallbackQuery", timeout=10, start=start)
    assert answered.params.get("text") == REFUSAL
    # Nothing else happened: the only requests any peer saw are the admin's /start.
    assert [type(r) for _, r in risk.received()] == [RiskStateRequest]
    assert gateway.received() == [] and executor.received() == []
    assert not any(m.method != "sendMessage" for m in fake.sent_messages())  # no buttons were retired either
    logged = caplog.text
    for offset in range(len(EVERY_COMMAND) + 1):
        assert str(STRANGER_ID + offset) in logged  # every attempt is logged with the user id


@pytest.mark.parametrize("command", [
    "/tek_prof", "/tek_prof -5", "/tek_prof abc", "/stop_ls 0", "/stop_ls 1e9", "/stop_ls nan",
    "/tek_prof 10 EURUSD", "/closeall EURUSD", "/closeall xau btc", "/positions nope"])
def test_bad_arguments_get_usage_and_nothing_is_sent(command: str, fake: FakeTelegramServer, gateway: FakePeer,
                                                     executor: FakePeer, start_service: ServiceFactory) -> None:
    start_service()
    answer = ask(fake, command).text
    assert "Usage: /" in answer and command.split(maxsplit=1)[0] in answer
    assert executor.received() == [] and gateway.received() == []


def test_buttons_switch_trading_and_closeall_waits_for_confirmation(
        fake: FakeTelegramServer, peers: Peers, start_service: ServiceFactory) -> None:
    risk, _, executor = peers
    clock = FakeClock()
    start_service(clock=clock)
    status = ask(fake, "/status")
    switched = press(fake, status, "trade:off")
    assert "Trading is now OFF" in switched.text and switched.button_data() == ["trade:on"]
    assert [r.enabled for _, r in risk.received() if isinstance(r, SetTrading)] == [False]
    fake.wait_for_request("editMessageReplyMarkup", timeout=10)  # the pressed buttons are retired

    prompt = ask(fake, "/closeall xau")
    assert "Close ALL our positions on XAUUSDm?" in prompt.text and "Open positions of ours: 2" in prompt.text
    assert executor.received() == []  # nothing before the confirmation
    done = press(fake, prompt, "ok:")
    assert "closed 2 positions on XAUUSDm" in done.text and "OK #5001 closed" in done.text
    again = press(fake, prompt, "ok:")  # a second tap on the same button
    assert "expired" in again.text and "nothing was done" in again.text

    late = ask(fake, "/closeall")
    clock.advance(61)  # the button's 60 s are over
    assert "expired" in press(fake, late, "ok:").text
    assert "Cancelled: close all on every symbol" in press(fake, ask(fake, "/closeall"), "no:").text
    assert [r.symbol for _, r in executor.received() if isinstance(r, CloseAll)] == ["XAUUSDm"]


def test_a_silent_executor_is_reported_and_never_asked_twice(fake: FakeTelegramServer, tmp_path: Path,
                                                             start_service: ServiceFactory) -> None:
    loaded = write_config(tmp_path, fake.base_url, command_timeout_s=0.5)
    silent = FakePeer(loaded, "executor_rep", lambda _request: None).start()
    try:
        start_service(loaded=loaded)
        answer = ask(fake, "/tek_prof 40").text
        assert "No answer from the executor within 0.5 s" in answer and "check /positions" in answer
        assert ask(fake, "/help").text.startswith("Commands:")  # the bot stays responsive
        assert [type(r) for _, r in silent.received()] == [SetProtection]
    finally:
        silent.close()


def test_a_long_answer_arrives_split(fake: FakeTelegramServer, config: LoadedConfig,
                                     start_service: ServiceFactory) -> None:
    many = tuple(position(10_000 + i) for i in range(150))
    gateway = FakePeer(config, "gateway_rep", gateway_answer(many)).start()
    try:
        start_service()
        start = len(fake.sent_messages())
        fake.push_message("/positions", ADMIN_ID)
        fake.wait_for_message(lambda m: "#10000 " in m.text, timeout=10, start=start)  # listed last
        parts = [m.text for m in fake.sent_messages()[start:] if m.chat_id == ADMIN_ID]
    finally:
        gateway.close()
    assert len(parts) >= 3 and all(len(part) <= 4096 for part in parts)
    joined = "\n".join(parts)
    assert all(f"#{10_000 + i} " in joined for i in range(150))
