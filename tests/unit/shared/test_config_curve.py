"""[curve] and the endpoints: an address off loopback is accepted only with CURVE on and its keys readable; a
missing key file is one line naming it, and a service exits 2 before any socket opens."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import main
from shared.config import BOUND_BY, CONFIG_EXIT_STATUS, ConfigError, Endpoints, curve_keys, load_config
from shared.curve import create_keys, load_public_key
from shared.secrets import Secrets

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
    text = text.replace('state_dir = "state"', f'state_dir = "{tmp_path / "state"}"')
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


def remote_gateway(tmp_path: Path) -> Path:
    """The Linux machine of docs/SECURITY.md: CURVE on, the gateway elsewhere, risk_in on tcp for its
    heartbeat, and only the five local services' secret keys here."""
    config = project(tmp_path, ON)
    text = config.read_text().replace('"ipc://{run_dir}/risk_in"', '"tcp://192.168.1.10:5557"', 1)
    config.write_text(deploy(text, gateway_here=False))
    (tmp_path / "keys" / "secret" / "gateway_mt5.key_secret").unlink()
    return config


def deploy(text: str, *, gateway_here: bool) -> str:
    return re.sub(r"^gateway_here = \w+", f"gateway_here = {str(gateway_here).lower()}", text, count=1, flags=re.M)


def test_main_starts_the_five_others_when_the_gateway_runs_on_another_machine(tmp_path: Path) -> None:
    config = remote_gateway(tmp_path)
    loaded = load_config(config)
    assert main.local_services(loaded) == tuple(s for s in main.SERVICES if s != "gateway_mt5")
    env = main._environment(loaded, Secrets(), headless=True, engine_only=False)  # no gateway key: no error
    assert env["PORTFOLIO_GATEWAY_AUTOSTART"] == "false"


def test_the_gateway_s_key_is_required_when_it_runs_here(tmp_path: Path) -> None:
    config = remote_gateway(tmp_path)
    config.write_text(deploy(config.read_text(), gateway_here=True))
    with pytest.raises(ConfigError, match=r"gateway_mt5\.key_secret"):
        main._environment(load_config(config), Secrets(), headless=True, engine_only=False)


def test_a_remote_gateway_needs_its_endpoints_on_tcp(tmp_path: Path) -> None:
    config = remote_gateway(tmp_path)
    config.write_text(config.read_text().replace('"tcp://192.168.1.10:5557"', '"ipc://{run_dir}/risk_in"', 1))
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    line = str(refused.value)
    assert "endpoints.risk_in" in line and "gateway_here = false" in line and "\n" not in line, line


def test_run_and_state_are_made_owner_only(tmp_path: Path) -> None:
    config = project(tmp_path, ON)
    (tmp_path / "run").mkdir(mode=0o755)  # an older install's run/, open to others: closed on the next start
    os.chmod(tmp_path / "run", 0o755)
    main._environment(load_config(config), Secrets(), headless=True, engine_only=False)
    for name in ("run", "state"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o700, name


def test_main_ctl_works_while_a_key_is_missing(tmp_path: Path) -> None:
    """`main.py ctl` (make stop, status) checks the config but neither the backend nor the keys: a running
    system can always be stopped, also while a secret key is being replaced."""
    config = remote_gateway(tmp_path)
    config.write_text(deploy(config.read_text(), gateway_here=True))  # the gateway's key is missing here
    env = main._environment(load_config(config), Secrets(), headless=True, engine_only=False, control_only=True)
    assert env["PORTFOLIO_GATEWAY_AUTOSTART"] == "true"


def test_a_directory_that_cannot_be_made_owner_only_is_one_line(tmp_path: Path) -> None:
    config = project(tmp_path, ON)
    (tmp_path / "blocker").write_text("a file where run/ should go")
    config.write_text(config.read_text().replace(f'run_dir = "{tmp_path / "run"}"',
                                                 f'run_dir = "{tmp_path / "blocker" / "run"}"'))
    with pytest.raises(ConfigError) as refused:
        main._environment(load_config(config), Secrets(), headless=True, engine_only=False)
    assert "paths.run_dir" in str(refused.value) and "\n" not in str(refused.value)


def test_the_gateway_refuses_to_start_under_the_supervisord_of_a_machine_without_it(tmp_path: Path) -> None:
    """With [deploy] gateway_here = false main.py leaves the gateway program stopped; started by hand there
    (ctl start, Telegram's /restart) it says why in one line and exits 2 before any socket opens."""
    config = project(tmp_path, "enabled = false")
    config.write_text(config.read_text().replace(f'"{REMOTE}:5555"', '"ipc://{run_dir}/gateway_pub"')
                      .replace(f'"{REMOTE}:5556"', '"ipc://{run_dir}/gateway_rep"'))
    env = {**os.environ, "PORTFOLIO_ENV_FILE": str(tmp_path / "absent.env"), "PORTFOLIO_GATEWAY_AUTOSTART": "false"}
    result = subprocess.run([sys.executable, "-m", "services.gateway_mt5", "--config", str(config)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == CONFIG_EXIT_STATUS, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "gateway_here = false" in lines[0], result.stderr
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
