"""The Telegram service end to end: real PTB against the fake Bot API, real ZeroMQ ipc sockets.

The test plays risk (a ROUTER at risk_rep, a PUB at risk_pub) and the users (pushing updates into the
fake). Waits are polls with deadlines.
"""

from __future__ import annotations

import time

import pytest

from services.telegram.core import REFUSAL, RISK_SILENT
from shared import topics
from shared.messages import RegimeChanged, RiskStateRequest
from shared.secrets import load_secrets
from tests.fakes.telegram_api import FakeTelegramServer, SentMessage
from tests.unit.telegram.conftest import ADMIN_ID, STRANGER_ID, FakeRisk, ServiceFactory, filled_report


def _has(fake: FakeTelegramServer, text: str) -> bool:
    return any(text in message.text for message in fake.sent_messages())


def _status_reply(message: SentMessage) -> bool:
    return message.chat_id == ADMIN_ID and "Trading:" in message.text


def test_admin_status_shows_both_regimes(fake: FakeTelegramServer, risk: FakeRisk,
                                         start_service: ServiceFactory) -> None:
    risk.start_router()
    start_service()
    fake.push_message("/status", ADMIN_ID)
    reply = fake.wait_for_message(_status_reply, timeout=10)
    assert "XAUUSDm: regime B" in reply.text and "BTCUSDm: regime C" in reply.text
    assert "+1.25 %" in reply.text
    [(caller, request)] = risk.received()
    assert caller == "telegram" and isinstance(request, RiskStateRequest)


def test_stranger_is_refused_and_risk_hears_nothing(fake: FakeTelegramServer, risk: FakeRisk,
                                                    start_service: ServiceFactory) -> None:
    risk.start_router()
    start_service()
    fake.push_message("/status", STRANGER_ID)
    refusal = fake.wait_for_message(lambda m: m.chat_id == STRANGER_ID, timeout=10)
    assert refusal.text == REFUSAL
    # PTB handles updates in order, so once the admin's later /status is answered the stranger's
    # attempt is fully handled: risk must have seen exactly one request, the admin's.
    fake.push_message("/status", ADMIN_ID)
    fake.wait_for_message(_status_reply, timeout=10)
    assert len(risk.received()) == 1
    assert [m.text for m in fake.sent_messages() if m.chat_id == STRANGER_ID] == [REFUSAL]


def test_help_and_menu_come_from_the_command_registry(fake: FakeTelegramServer,
                                                      start_service: ServiceFactory) -> None:
    start_service()
    menu = fake.wait_for_request("setMyCommands", timeout=10)
    assert [c["command"] for c in menu.params["commands"]] == ["status", "help"]
    fake.push_message("/help", ADMIN_ID)
    text = fake.wait_for_message(lambda m: m.chat_id == ADMIN_ID, timeout=10).text
    assert "/status" in text and "/help" in text


def test_silent_risk_gets_an_answer_then_reconnects(fake: FakeTelegramServer, risk: FakeRisk,
                                                    start_service: ServiceFactory) -> None:
    start_service(risk_timeout_s=0.5)
    fake.push_message("/status", ADMIN_ID)
    fake.wait_for_message(lambda m: m.text == RISK_SILENT, timeout=10)
    risk.start_router()
    fake.push_message("/status", ADMIN_ID)
    reply = fake.wait_for_message(_status_reply, timeout=10)
    assert "XAUUSDm: regime B" in reply.text
    assert len(risk.received()) == 1  # the timed-out request died with its socket (linger 0)


def test_filled_report_and_regime_change_reach_the_admin(fake: FakeTelegramServer, risk: FakeRisk,
                                                         start_service: ServiceFactory) -> None:
    start_service()
    # Malformed frames are counted and dropped by the shared Subscriber; the service lives on.
    risk.publisher.socket.send_multipart([topics.RISK_EXECUTION.encode(), b"no header"])
    risk.publisher.socket.send_multipart([topics.RISK_EXECUTION.encode(), bytes(16), b"\xc1 not msgpack"])
    risk.publish_until(topics.RISK_EXECUTION, filled_report(), lambda: _has(fake, "Order opened"))
    opened = fake.wait_for_message(lambda m: "Order opened" in m.text)
    assert opened.chat_id == ADMIN_ID
    for expected in ("XAUUSDm BUY", "0.02 lots", "SL 2345.5", "TP 2360.25", "87 %"):
        assert expected in opened.text, expected
    regime = RegimeChanged(ts=1.0, symbol="XAUUSDm", old="A", new="B", reason="daily target reached",
                           day_return=0.2)
    risk.publish_until(topics.RISK_REGIME, regime, lambda: _has(fake, "daily target reached"))
    assert fake.wait_for_message(lambda m: "daily target reached" in m.text).chat_id == ADMIN_ID


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
