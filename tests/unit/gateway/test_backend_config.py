"""Choosing a real backend: what is checked before anything starts, and the one-line errors (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.gateway_mt5.hours import PRESET_HOURS
from services.gateway_mt5.runner import make_broker, validate_backend_config
from services.gateway_mt5.terminal.adapter import TerminalBroker
from services.gateway_mt5.terminal.settings import TerminalSettings
from shared.clock import FakeClock
from shared.config import ConfigError, LoadedConfig, load_config
from shared.secrets import Secrets
from tests.unit.shared.test_config import ROOT, copy_configs

SECRET_NAMES = ("EXNESS_LOGIN", "EXNESS_PASSWORD", "EXNESS_SERVER")


def configured(tmp_path: Path, backend: str, extra: str = "") -> Path:
    system = copy_configs(tmp_path)
    text = system.read_text().replace('backend = "sim"', f'backend = "{backend}"')
    text = text.replace('run_dir = "run"', f'run_dir = "{tmp_path / "run"}"')
    system.write_text(text + extra)
    return system


def load(tmp_path: Path, backend: str, extra: str = "") -> LoadedConfig:
    return load_config(configured(tmp_path, backend, extra))


def one_line(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_mt5_without_the_package_names_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_backend_config(load(tmp_path, "mt5"))
    assert "pip install MetaTrader5" in one_line(caught) and "mt5linux" in one_line(caught)


def test_mt5linux_settings_take_the_preset_hours_and_the_deadlines(tmp_path: Path) -> None:
    settings = validate_backend_config(load(tmp_path, "mt5linux"))
    assert isinstance(settings, TerminalSettings)
    assert settings.symbols == ("XAUUSDm", "BTCUSDm") and dict(settings.hours) == PRESET_HOURS
    assert (settings.host, settings.port, settings.init_deadline_s, settings.call_deadline_s) == (
        "127.0.0.1", 18812, 90.0, 15.0)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('host = "10.0.0.5"\n', "must be loopback"),
        ("reconnect_min_s = 5.0\nreconnect_max_s = 1.0\n", "reconnect_max_s = 1.0"),
        ("[mt5.hours.XAUUSDm]\nbreak_minutes = 0\n", "mt5.hours.XAUUSDm.break_minutes = 0"),
        ("[mt5.hours.EURUSDm]\nalways_open = true\n", "mt5.hours.EURUSDm names a symbol not in [symbols]"),
    ],
)
def test_bad_terminal_settings_are_refused(tmp_path: Path, extra: str, problem: str) -> None:
    system = configured(tmp_path, "mt5linux")
    text = system.read_text()
    if extra.startswith("["):
        text += "\n" + extra
    elif extra.startswith("host"):
        text = text.replace('host = "127.0.0.1"', extra.strip())
    else:
        text = text.replace("port = 18812\n", "port = 18812\n" + extra)
    system.write_text(text)
    with pytest.raises(ConfigError) as caught:
        validate_backend_config(load_config(system))
    assert problem in one_line(caught)


def test_credentials_are_required_and_one_gateway_holds_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in SECRET_NAMES:
        monkeypatch.delenv(name, raising=False)
    config = load(tmp_path, "mt5linux")
    with pytest.raises(ConfigError) as caught:
        make_broker(config, FakeClock(), Secrets(_env_file=None, EXNESS_LOGIN=5550001))
    assert "EXNESS_PASSWORD, EXNESS_SERVER" in one_line(caught) and "5550001" not in one_line(caught)
    secrets = Secrets(_env_file=None, EXNESS_LOGIN=5550001, EXNESS_PASSWORD=SecretStr("s3cret-Passw0rd"),
                      EXNESS_SERVER="Exness-MT5Trial")
    first = make_broker(config, FakeClock(), secrets)
    assert isinstance(first, TerminalBroker) and not first.connected
    try:
        with pytest.raises(ConfigError) as second:
            make_broker(config, FakeClock(), secrets)
        assert "another gateway already drives this terminal" in one_line(second)
    finally:
        first.close()


def test_the_gateway_exits_2_with_one_line_when_the_package_is_missing(tmp_path: Path) -> None:
    system = configured(tmp_path, "mt5")
    env = {**os.environ, "PORTFOLIO_ENV_FILE": str(tmp_path / "no.env")}
    result = subprocess.run([sys.executable, "-m", "services.gateway_mt5", "--config", str(system)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install MetaTrader5" in lines[0]
    assert not (tmp_path / "run").exists(), "nothing may be created before the config is valid"
