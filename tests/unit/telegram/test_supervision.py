"""/restart and the service alerts against a real supervisord (unix socket, password) in tmp_path.

The programs are stand-ins (``sleep``, a shell that exits at once, a shell that crashes every 0.3 s)
named like ours, so the service's rules (which restarts need a confirmation, which it refuses) are
exercised on real process control. Every wait is a poll with a deadline; supervisord is shut down at
the end of each test.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from supervisor.xmlrpc import SupervisorTransport

from shared.config import LoadedConfig
from tests.fakes.telegram_api import FakeTelegramServer, SentMessage
from tests.unit.telegram.conftest import ADMIN_ID, STRANGER_ID, ServiceFactory, write_config

SUPERVISORD = str(Path(sys.executable).parent / "supervisord")
SLEEPER = 'command=/bin/sleep 600\nstartsecs=0\nautorestart=true\nstopwaitsecs=5\n'
PROGRAMS = {
    "gateway_mt5": SLEEPER, "executor": SLEEPER, "strategy_xau": SLEEPER, "telegram": SLEEPER,
    "broken": 'command=/bin/sh -c "exit 3"\nstartsecs=1\nstartretries=0\nautorestart=true\n',
    "crashy": 'command=/bin/sh -c "sleep 0.3; exit 3"\nstartsecs=0\nautostart=false\nautorestart=true\n',
}


class Supervisord:
    """A real supervisord on ``run_dir/supervisor.sock``, as main.py would start it."""

    def __init__(self, config: LoadedConfig) -> None:
        paths = config.system.paths
        self.socket = paths.run_dir / "supervisor.sock"
        password = secrets.token_urlsafe(16)
        secret = paths.run_dir / "supervisor.secret"
        secret.write_text(password)
        secret.chmod(0o600)
        paths.logs_dir.mkdir(parents=True, exist_ok=True)
        conf = paths.run_dir / "supervisord.conf"
        conf.write_text(f"""[supervisord]
nodaemon=true
logfile={paths.logs_dir}/supervisord.log
pidfile={paths.run_dir}/supervisord.pid
childlogdir={paths.logs_dir}

[unix_http_server]
file={self.socket}
chmod=0700
username=portfolio
password={password}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
""" + "".join(f"\n[program:{name}]\n{body}" for name, body in PROGRAMS.items()))
        self.password = password
        self.process = subprocess.Popen([SUPERVISORD, "-n", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        self.wait_until(lambda: self.pid("strategy_xau") and self.pid("telegram"), "programs RUNNING")

    @property
    def rpc(self) -> Any:
        """A fresh proxy per call: a transport that failed once (socket not there yet) stays unusable."""
        transport = SupervisorTransport("portfolio", self.password, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def pid(self, name: str) -> int:
        try:
            info = self.rpc.getProcessInfo(name)
        except (OSError, xmlrpc.client.Fault):
            return 0
        return int(info["pid"]) if info["statename"] == "RUNNING" else 0

    def wait_until(self, condition: Any, what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError(f"supervisord: no {what} within {timeout}s")

    def shutdown(self) -> None:
        try:
            self.rpc.shutdown()
            self.process.wait(timeout=15)
        except (OSError, xmlrpc.client.Fault, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=5)


@pytest.fixture
def supervised(fake: FakeTelegramServer, tmp_path: Path) -> Iterator[tuple[LoadedConfig, Supervisord]]:
    config = write_config(tmp_path, fake.base_url, supervisor_poll_s=0.2, service_alert_interval_s=1.0)
    supervisord = Supervisord(config)
    try:
        yield config, supervisord
    finally:
        supervisord.shutdown()


def ask(fake: FakeTelegramServer, text: str, user: int = ADMIN_ID, contains: str = "") -> SentMessage:
    start = len(fake.sent_messages())
    fake.push_message(text, user)
    return fake.wait_for_message(lambda m: m.chat_id == user and m.method == "sendMessage" and contains in m.text,
                                 timeout=15, start=start)


def press(fake: FakeTelegramServer, message: SentMessage, prefix: str, contains: str) -> SentMessage:
    data = next(d for d in message.button_data() if d.startswith(prefix))
    start = len(fake.sent_messages())
    fake.push_callback(data, ADMIN_ID, message_id=message.message_id)
    return fake.wait_for_message(lambda m: m.chat_id == ADMIN_ID and contains in m.text, timeout=15, start=start)


def test_restart_one_strategy_and_vital_services_only_when_confirmed(
        fake: FakeTelegramServer, supervised: tuple[LoadedConfig, Supervisord], start_service: ServiceFactory) -> None:
    config, supervisord = supervised
    start_service(loaded=config)
    before = {name: supervisord.pid(name) for name in ("strategy_xau", "executor", "gateway_mt5", "telegram")}

    assert ask(fake, "/restart strategy_xau", STRANGER_ID).text.startswith("Sorry")
    done = ask(fake, "/restart strategy_xau", contains="Restarted")
    after = supervisord.pid("strategy_xau")
    assert after not in (0, before["strategy_xau"])
    assert f"pid {before['strategy_xau']} -> {after}" in done.text

    prompt = ask(fake, "/restart executor", contains="Restart executor?")
    assert "Restart executor?" in prompt.text and supervisord.pid("executor") == before["executor"]
    restarted = press(fake, prompt, "ok:", "Restarted executor")
    assert supervisord.pid("executor") not in (0, before["executor"])
    assert "now RUNNING" in restarted.text

    cancelled = press(fake, ask(fake, "/restart gateway_mt5", contains="Restart gateway_mt5?"), "no:", "Cancelled")
    assert "restart of gateway_mt5" in cancelled.text
    ask(fake, "/restart telegram", contains="do not restart myself")
    usage = ask(fake, "/restart nosuch", contains="Unknown service 'nosuch'").text
    assert "Usage: /restart SERVICE" in usage and "strategy_xau" in usage
    assert supervisord.pid("gateway_mt5") == before["gateway_mt5"]
    assert supervisord.pid("telegram") == before["telegram"]
    status = ask(fake, "/status", contains="Services:").text
    assert "gateway_mt5 RUNNING" in status and "broken FATAL" in status
    alerts = [m.text for m in fake.sent_messages() if "restarted (pid" in m.text]
    assert alerts == []  # the owner's own restarts are announced once, by the command


def test_a_stopped_or_crash_looping_service_is_reported_without_flooding(
        fake: FakeTelegramServer, supervised: tuple[LoadedConfig, Supervisord],
        start_service: ServiceFactory) -> None:
    config, supervisord = supervised
    start_service(loaded=config)
    fake.wait_for_message(lambda m: "Service broken is FATAL" in m.text, timeout=15)
    supervisord.rpc.startProcess("crashy", False)
    start = len(fake.sent_messages())
    fake.wait_for_message(lambda m: "Service crashy" in m.text, timeout=15, start=start)
    fake.wait_for_message(lambda m: "crashy keeps restarting" in m.text, timeout=20, start=start)
    supervisord.rpc.stopProcess("crashy", True)
    about_crashy = [m for m in fake.sent_messages() if "crashy" in m.text]
    assert len(about_crashy) <= 4  # several restarts a second, summed up in a few messages


def test_without_supervisord_the_owner_is_told_once(fake: FakeTelegramServer, tmp_path: Path,
                                                    start_service: ServiceFactory) -> None:
    config = write_config(tmp_path, fake.base_url, supervisor_poll_s=0.05)
    start_service(loaded=config)
    fake.wait_for_message(lambda m: "Cannot read service states from supervisord" in m.text, timeout=10)
    fake.push_message("/help", ADMIN_ID)  # polls go on meanwhile; the problem is still said once
    fake.wait_for_message(lambda m: m.text.startswith("Commands:"), timeout=10)
    assert sum("Cannot read service states" in m.text for m in fake.sent_messages()) == 1
