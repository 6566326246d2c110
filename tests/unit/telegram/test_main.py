"""``python -m services.telegram`` as supervisord runs it: real process, real logging setup, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shared.config import LoadedConfig
from tests.fakes.telegram_api import FakeTelegramServer
from tests.unit.telegram.conftest import ADMIN_ID, REPO_CONFIGS, STRANGER_ID, TOKEN

REPO = REPO_CONFIGS.parent


def start_process(config: LoadedConfig, tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "ADMIN_ID")}
    environment.update(PORTFOLIO_ENV_FILE=str(tmp_path / "no-such.env"), **env)
    return subprocess.Popen([sys.executable, "-m", "services.telegram", "--config", str(config.path)],
                            cwd=REPO, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def stop_process(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stderr


def wait_for_file_text(path: Path, needle: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if needle in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} never appeared in {path}")


def test_process_serves_and_stops_on_sigterm_without_logging_the_token(
        fake: FakeTelegramServer, config: LoadedConfig, tmp_path: Path) -> None:
    process = start_process(config, tmp_path, BOT_TOKEN=TOKEN, ADMIN_ID=str(ADMIN_ID))
    try:
        fake.wait_for_request("getUpdates", timeout=20)
        fake.push_message("/status", STRANGER_ID)
        fake.wait_for_message(lambda m: m.chat_id == STRANGER_ID, timeout=10)
        before = len(fake.requests_log())
        fake.set_unreachable(0.5)  # errors while polling: the lines most likely to carry a URL
        fake.wait_for_request("getUpdates", timeout=10, start=before)
    finally:
        status, stderr = stop_process(process)
    assert status == 0, stderr
    log = (config.system.paths.logs_dir / "telegram.log").read_text()
    assert str(STRANGER_ID) in log  # the refused attempt is logged with the user id
    secret_part = TOKEN.split(":", 1)[1]
    for text in (log, stderr):
        assert text and TOKEN not in text and secret_part not in text


def test_without_secrets_the_process_idles_and_exits_0(fake: FakeTelegramServer, config: LoadedConfig,
                                                       tmp_path: Path) -> None:
    process = start_process(config, tmp_path)
    try:
        wait_for_file_text(config.system.paths.logs_dir / "telegram.log", "BOT_TOKEN")
        assert process.poll() is None  # idling, not exiting: supervisord must not restart-loop it
    finally:
        status, stderr = stop_process(process)
    assert status == 0, stderr
    assert fake.requests_log() == []
