"""The Telegram service end to end: real PTB against the fake Bot API, real ZeroMQ ipc sockets.

The test plays risk (a ROUTER at risk_rep, a PUB at risk_pub) and the users (pushing updates into the
fake). Waits are polls with deadlines.
"""

from __future__ import annotations

import time

import pytest

from services.telegram.core import REFUSAL
from shared import topics
from shared.messages import DayStarted, RegimeChanged, RiskStateRequest, TradingLocked
from shared.secrets import load_secrets
from tests.fakes.telegram_api import FakeTelegramServer, SentMessage
from tests.unit.telegram.conftest import (
    ADMIN_ID,
    STRANGER_ID,
    FakePeer,
    FakeRisk,
    ServiceFactory,
    filled_report,
)


def _has(fake: FakeTelegramServer, text: str) -> bool:
    return any(text in message.text for message in fake.sent_messages())


def _status_reply(message: SentMessage) -> bool:
    return message.chat_id == ADMIN_ID and "Trading:" in message.text


def test_admin_status_shows_both_regimes(fake: FakeTelegramServer, risk: FakeRisk, gateway: FakePeer,
                                         start_service: ServiceFactory) -> None:
    risk.start_router()
    start_service()
    fake.push_message("/status", ADMIN_ID)
    reply = fake.wait_for_message(_status_reply, timeout=10)
    assert "XAUUSDm: regime B" in reply.text and "BTCUSDm: regime C" in reply.text
    assert "+1.25 %" in reply.text
    [(caller, request)] = risk.received()
    assert caller == "telegram" and isinstance(request, RiskStateRequest)


def test_stranger_is_refused_and_risk_hears_nothing(fake: FakeTelegramServer, risk: FakeRisk, gateway: FakePeer,
                                                    start_service: ServiceFactory) -> None:
    risk.start_router()
    start_service()
    fake.push_message("/status", STRANGER_ID)
    refusal = fake.wait_for_message(lambda m: m.chat_id == STRANGER_ID, timeout=10)
    assert refusal.text == REFUSAL
    # The refusal is the guard's last step, so the stranger's attempt is fully handled: after the
    # admin's /status, risk must have seen exactly one request, the admin's.
    fake.push_message("/status", ADMIN_ID)
    fake.wait_for_message(_status_reply, timeout=10)
    assert len(risk.received()) == 1
    assert [m.text for m in fake.sent_messages() if m.chat_id == STRANGER_ID] == [REFUSAL]


def test_help_and_menu_come_from_the_command_registry(fake: FakeTelegramServer,
                                                      start_service: ServiceFactory) -> None:
    start_service()
    menu = fake.wait_for_request("setMyCommands", timeout=10)
    names = [c["command"] for c in menu.params["commands"]]
    assert names == ["start", "status", "start_trading", "stop_trading", "balance", "positions", "pnl", "tek_prof",
                     "stop_ls", "closeall", "restart", "help"]
    fake.push_message("/help", ADMIN_ID)
    text = fake.wait_for_message(lambda m: m.chat_id == ADMIN_ID, timeout=10).text
    assert [line.split(" ", 1)[0] for line in text.splitlines()[1:]] == [f"/{name}" for name in names]


def test_silent_risk_gets_an_answer_then_reconnects(fake: FakeTelegramServer, risk: FakeRisk, gateway: FakePeer,
                                                    start_service: ServiceFactory) -> None:
    start_service(peer_timeout_s=0.5)
    fake.push_message("/status", ADMIN_ID)
    silent = fake.wait_for_message(lambda m: m.chat_id == ADMIN_ID and "risk not answering" in m.text, timeout=10)
    assert "Trading:" not in silent.text and "XAUUSDm:" in silent.text  # the rest of /status still answers
    risk.start_router()
    fake.push_message("/status", ADMIN_ID)
    reply = fake.wait_for_message(_status_reply, timeout=10)
    assert "XAUUSDm: regime B" in reply.text
    assert len(risk.received()) == 1  # the timed-out request died with its socket (linger 0)


def test_every_notification_reaches_the_admin_with_its_content(fake: FakeTelegramServer, risk: FakeRisk,
                                                                start_service: ServiceFactory) -> None:
    start_service()
    # Malformed frames are counted and dropped by the shared Subscriber; the service lives on.
    risk.publisher.socket.send_multipart([topics.RISK_EXECUTION.encode(), b"no header"])
    risk.publisher.socket.send_multipart([topics.RISK_EXECUTION.encode(), bytes(16), b"\xc1 not msgpack"])
    events = [
        (topics.RISK_EXECUTION, filled_report(),
         ("Order opened: XAUUSDm BUY", "Leg XAU-1752080460-1: 0.02 lots @ 2350.15", "SL 2345.5 | TP 2360.25",
          "Confidence 87 % | regime A", "ema stack up; rsi 58 rising", "Latency 123 ms | slippage 5 points")),
        (topics.RISK_REGIME, RegimeChanged(ts=1.0, symbol="XAUUSDm", old="A", new="B",
                                           reason="daily target reached", day_return=0.2),
         ("Regime XAUUSDm: A -> B (protective)", "Reason: daily target reached", "+20.00 %")),
        (topics.RISK_LOCK, TradingLocked(ts=2.0, symbol="BTCUSDm", reason="daily loss 5% reached", day_return=-0.05),
         ("TRADING LOCKED on BTCUSDm", "Reason: daily loss 5% reached", "-5.00 %")),
        (topics.RISK_DAY, DayStarted(ts=3.0, day="2025-07-10", start_balance=10_250.0, previous_day="2025-07-09",
                                     previous_pnl=250.0, previous_return=0.025),
         ("New trading day 2025-07-10", "Yesterday 2025-07-09: +250.00 (+2.50 %)")),
    ]
    for topic, event, expected in events:
        risk.publish_until(topic, event, lambda first=expected[0]: _has(fake, first))  # type: ignore[misc]
        text = "\n".join(m.text for m in fake.sent_messages() if m.chat_id == ADMIN_ID)
        for line in expected:
            assert line in text, line
    assert all(m.chat_id == ADMIN_ID for m in fake.sent_messages())


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB's own RetryAfter()
def test_flood_control_retry_after_is_honoured(fake: FakeTelegramServer, risk: FakeRisk,
                                               start_service: ServiceFactory) -> None:
    start_service()
    warm_up = RegimeChanged(ts=1.0, symbol="BTCUSDm", old="A", new="B", reason="warm-up", day_return=0.0)
    risk.publish_until(topics.RISK_REGIME, warm_up, lambda: _has(fake, "warm-up"))  # SUB is joined now
    first = len(fake.requests_log())
    fake.fail_next("sendMessage", count=1, error_code=429, retry_after=1)
    risk.publisher.publish(topics.RISK_EXECUTION, filled_report())
    fake.wait_for_request("sendMessage", timeout=10, start=first,
                          predicate=lambda r: "Order opened" in str(r.params.get("text")))
    refused_at = time.time()
    delivered = fake.wait_for_message(lambda m: "Order opened" in m.text, timeout=10)
    assert delivered.received_at - refused_at >= 0.8  # waited what Telegram asked (1 s)
    attempts = [r for r in fake.requests_log()[first:]
                if r.method == "sendMessage" and "Order opened" in str(r.params.get("text"))]
    assert len(attempts) == 2


def test_a_start_during_an_outage_loses_no_notification(fake: FakeTelegramServer, risk: FakeRisk,
                                                        start_service: ServiceFactory) -> None:
    fake.set_unreachable(2.0)
    service = start_service(wait_connected=False)
    risk.publish_until(topics.RISK_EXECUTION, filled_report(), lambda: _has(fake, "Order opened"),
                       timeout=20)
    assert service.runner.connected.is_set()


def test_notify_only_ignores_commands_but_notifies(fake: FakeTelegramServer, risk: FakeRisk,
                                                   start_service: ServiceFactory) -> None:
    risk.start_router()
    start_service("notify_only")
    fake.push_message("/status", ADMIN_ID)
    risk.publish_until(topics.RISK_EXECUTION, filled_report(), lambda: _has(fake, "Order opened"))
    methods = {request.method for request in fake.requests_log()}
    assert "getUpdates" not in methods and "setMyCommands" not in methods
    assert not any(_status_reply(m) for m in fake.sent_messages())
    assert risk.received() == []


def test_without_bot_token_it_idles_and_stops_cleanly(fake: FakeTelegramServer, monkeypatch: pytest.MonkeyPatch,
                                                      start_service: ServiceFactory) -> None:
    monkeypatch.delenv("BOT_TOKEN")
    service = start_service(secrets=load_secrets(), wait_connected=False)
    service.thread.join(0.5)
    assert service.thread.is_alive()  # idles: supervisord sees a running process, not a crash loop
    service.stop()
    assert fake.requests_log() == []


def test_a_rejected_token_is_never_logged(fake: FakeTelegramServer, monkeypatch: pytest.MonkeyPatch,
                                          start_service: ServiceFactory,
                                          caplog: pytest.LogCaptureFixture) -> None:
    wrong = "999999:WRONG-token-must-not-appear-in-logs"
    monkeypatch.setenv("BOT_TOKEN", wrong)
    service = start_service(secrets=load_secrets(), wait_connected=False)
    fake.wait_for_request("getMe", timeout=10)
    service.thread.join(0.5)
    assert service.thread.is_alive() and not service.runner.connected.is_set()
    service.stop()
    assert caplog.records  # the rejection was logged...
    assert wrong not in caplog.text and wrong.split(":", 1)[1] not in caplog.text  # ...without the token
