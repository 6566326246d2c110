"""[curve] and the endpoints: an address off loopback is accepted only with CURVE on and its keys readable; a
missing key file is one line naming it, and a service exits 2 before any socket opens."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import BOUND_BY, CONFIG_EXIT_STATUS, ConfigError, Endpoints, curve_keys, load_config
from shared.curve import create_keys, load_public_key

ROOT = Path(__file__).resolve().parents[3]
REMOTE = "tcp://192.168.1.20"  # the gateway's machine; nothing is bound or connected in these tests


def project(tmp_path: Path, curve: str, keys: bool = True) -> Path:
    """A project root with the shipped configs, the gateway's endpoints off this machine and ``curve``
    (a [curve] table body) appended; with ``keys``, every service's key pair under keys/."""
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("xau.toml", "btc.toml"):
        shutil.copy(ROOT / "configs" / name, configs / name)
    text = (ROOT / "configs" / "system.toml").read_text()
    text = text.replace('logs_dir = "Logs"', f'logs_dir = "{tmp_path / "Logs"}"')
    text = text.replace('run_dir = "run"', f'run_dir = "{tmp_path / "run"}"')
    text = text.replace('"ipc://{run_dir}/gateway_pub"', f'"{REMOTE}:5555"', 1)
    text = text.replace('"ipc://{run_dir}/gateway_rep"', f'"{REMOTE}:5556"', 1)
    start = text.index("\n[curve]\n")
    end = text.index("\n[symbols]\n")
    (configs / "system.toml").write_text(f"{text[:start]}\n[curve]\n{curve}\n{text[end:]}")
    if keys:
        create_keys(tmp_path / "keys")
    return configs / "system.toml"


ON = 'enabled = true\npublic_keys_dir = "keys/public"\nsecret_keys_dir = "keys/secret"'


def test_every_endpoint_names_the_service_that_binds_it() -> None:
    assert set(BOUND_BY) == set(Endpoints.model_fields)


def test_an_address_off_loopback_without_curve_is_refused_with_the_fix(tmp_path: Path) -> None:
    config = project(tmp_path, "enabled = false")
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    line = str(refused.value)
    assert "\n" not in line
    assert f"endpoints.gateway_pub = '{REMOTE}:5555'" in line and "[curve] enabled = true" in line, line


def test_with_curve_and_readable_keys_it_is_accepted_relative_to_the_project_root(tmp_path: Path) -> None:
    loaded = load_config(project(tmp_path, ON))
    assert loaded.system.curve.public_keys_dir == tmp_path / "keys" / "public"
    keys = curve_keys(loaded, "executor")
    assert keys is not None and keys.name == "executor"
    gateway = load_public_key(tmp_path / "keys" / "public" / "gateway_mt5.key")
    # The gateway's endpoints are tcp, so secured, trusting the gateway's key; the ipc ones stay plain.
    assert keys.server_keys == {f"{REMOTE}:5555": gateway, f"{REMOTE}:5556": gateway}
    assert sorted(keys.clients.values()) == sorted({*BOUND_BY.values(), "strategy_xau", "strategy_btc", "telegram"})


def test_curve_off_gives_no_keys() -> None:
    assert curve_keys(load_config(ROOT / "configs" / "system.toml"), "executor") is None


def test_a_missing_server_public_key_is_named(tmp_path: Path) -> None:
    config = project(tmp_path, ON)
    (tmp_path / "keys" / "public" / "gateway_mt5.key").unlink()
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    line = str(refused.value)
    assert "curve.public_keys_dir" in line and str(tmp_path / "keys" / "public" / "gateway_mt5.key") in line, line
    assert "docs/SECURITY.md" in line and "\n" not in line


def test_no_public_keys_at_all_is_named(tmp_path: Path) -> None:
    config = project(tmp_path, ON, keys=False)
    with pytest.raises(ConfigError, match=r"curve\.public_keys_dir = .*no such directory of public keys"):
        load_config(config)


def test_a_missing_secret_key_is_named_for_the_service(tmp_path: Path) -> None:
    config = project(tmp_path, ON)
    (tmp_path / "keys" / "secret" / "risk.key_secret").unlink()
    loaded = load_config(config)  # the other services of this machine still have theirs
    assert curve_keys(loaded, "executor") is not None
    with pytest.raises(ConfigError) as refused:
        curve_keys(loaded, "risk")
    line = str(refused.value)
    assert "curve.secret_keys_dir" in line and str(tmp_path / "keys" / "secret" / "risk.key_secret") in line, line


def run_risk(config: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PORTFOLIO_ENV_FILE": str(tmp_path / "absent.env")}
    return subprocess.run([sys.executable, "-m", "services.risk", "--config", str(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", ["off loopback without curve", "curve without the service's secret key"])
def test_the_service_exits_2_with_one_line_before_any_socket_opens(tmp_path: Path, case: str) -> None:
    if case == "off loopback without curve":
        config, named = project(tmp_path, "enabled = false"), "endpoints.gateway_pub"
    else:
        config, named = project(tmp_path, ON), str(tmp_path / "keys" / "secret" / "risk.key_secret")
        (tmp_path / "keys" / "secret" / "risk.key_secret").unlink()
    result = run_risk(config, tmp_path)
    assert result.returncode == CONFIG_EXIT_STATUS, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_main_refuses_to_start_supervisord_when_a_service_key_is_missing(tmp_path: Path) -> None:
    """All six services run on the machine main.py starts them on: one missing secret key stops the launch
    with one line (not five services up and one exiting 2 under supervisord)."""
    config = project(tmp_path, ON)
    (tmp_path / "keys" / "secret" / "executor.key_secret").unlink()
    env = {**os.environ, "PORTFOLIO_ENV_FILE": str(tmp_path / "absent.env")}
    result = subprocess.run([sys.executable, "main.py", "--config", str(config)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == CONFIG_EXIT_STATUS, result.stderr
    assert "executor.key_secret" in result.stderr, result.stderr
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
