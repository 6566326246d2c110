"""Every key of every shipped config file, given a wrong type or an out-of-range value, is refused with one
line naming the file, the key, the value and what is allowed; a service then exits 2 before any socket opens.

The keys are read from the shipped files themselves, so a key added later is covered without touching this
test, and so are the optional keys the files leave out (read from the config models: a number, a string, a
flag with a default). The loader runs in-process for every key (fast); a service and main.py run as
subprocesses for a sample.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from services.gateway_mt5.runner import validate_backend_config
from services.gateway_mt5.sim.config import SimConfig
from shared.config import CONFIG_EXIT_STATUS, ConfigError, SystemConfig, load_config, validate_table
from shared.symbol_config import SymbolConfig

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "configs"
FILES: dict[str, type[BaseModel]] = {"system.toml": SystemConfig, "xau.toml": SymbolConfig, "btc.toml": SymbolConfig}
WRONG_TYPE = "not-a-number"


def leaves(table: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (key path, value) of a parsed TOML file; inline tables are walked into, arrays are one value."""
    for key, value in table.items():
        if isinstance(value, dict):
            yield from leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def wrong_type(value: Any) -> Any:
    return 12345 if isinstance(value, str) else WRONG_TYPE


def out_of_range(value: Any) -> list[Any]:
    """Values outside any sensible range for this key's type (at least one must be refused)."""
    if isinstance(value, bool | str | dt.datetime):
        return []
    if isinstance(value, int | float):
        return [-1, -(10**9), 10**12]
    return []


def model_leaves(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every scalar key a config model accepts (nested tables walked into), with its default."""
    for key, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from model_leaves(annotation, (*prefix, key))
        elif isinstance(field.default, bool | int | float | str):
            yield (*prefix, key), field.default


def optional_keys(name: str) -> list[tuple[str, tuple[str, ...], Any]]:
    """The keys a file may set but does not, as (file, key path, default): its model's (and for system.toml
    the simulator's [sim] table, which the gateway validates)."""
    present = {path for path, _ in leaves(tomllib.loads((CONFIGS / name).read_text()))}
    accepted = list(model_leaves(FILES[name]))
    if name == "system.toml":
        accepted += list(model_leaves(SimConfig, ("sim",)))
    return [(name, path, value) for path, value in accepted if path not in present]


SHIPPED = [(name, path, value) for name in FILES for path, value in leaves(tomllib.loads((CONFIGS / name).read_text()))]
OPTIONAL = [case for name in FILES for case in optional_keys(name)]
CASES = SHIPPED + OPTIONAL


def check(name: str, raw: dict[str, Any]) -> None:
    """The loader's validation of one file (system.toml's [sim] table through the gateway's check)."""
    path = CONFIGS / name
    validated = validate_table(path, raw, FILES[name])
    if name == "system.toml":
        loaded = load_config(CONFIGS / "system.toml")
        assert isinstance(validated, SystemConfig)
        validate_backend_config(loaded.model_copy(update={"system": validated}))


def with_value(name: str, key: tuple[str, ...], value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(tomllib.loads((CONFIGS / name).read_text()))
    table = raw
    for part in key[:-1]:
        table = table.setdefault(part, {})
    table[key[-1]] = value
    return raw


def assert_one_clear_line(text: str, name: str, key: tuple[str, ...], value: Any) -> None:
    assert "\n" not in text.strip()
    assert name in text, text
    assert ".".join(key) in text, text
    assert repr(value) in text or str(value) in text, text
    assert "Allowed" in text or "should be" in text or "must be" in text or "allowed" in text, text


def test_the_shipped_files_load_and_every_key_is_covered() -> None:
    for name in FILES:
        check(name, tomllib.loads((CONFIGS / name).read_text()))
    assert len(SHIPPED) > 150 and len(OPTIONAL) > 20


@pytest.mark.parametrize(("name", "key", "value"), CASES, ids=[f"{n}:{'.'.join(k)}" for n, k, _ in CASES])
def test_every_key_refuses_a_wrong_type_and_an_out_of_range_value(name: str, key: tuple[str, ...], value: Any) -> None:
    bad = wrong_type(value)
    with pytest.raises(ConfigError) as refused:
        check(name, with_value(name, key, bad))
    assert_one_clear_line(str(refused.value), name, key, bad)
    candidates = out_of_range(value)
    if not candidates:
        return
    refusals = []
    for candidate in candidates:
        try:
            check(name, with_value(name, key, candidate))
        except ConfigError as exc:
            assert_one_clear_line(str(exc), name, key, candidate)
            refusals.append(candidate)
    assert refusals, f"{name} {'.'.join(key)} accepts every one of {candidates}: its range is not validated"


def bad_system(tmp_path: Path, old: str, new: str) -> Path:
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in FILES:
        (configs / name).write_text((CONFIGS / name).read_text())
    text = (CONFIGS / "system.toml").read_text().replace('run_dir = "run"', f'run_dir = "{tmp_path / "run"}"')
    text = text.replace('logs_dir = "Logs"', f'logs_dir = "{tmp_path / "Logs"}"')
    assert old in text
    (configs / "system.toml").write_text(text.replace(old, new))
    return configs / "system.toml"


@pytest.mark.parametrize("command", [["-m", "services.risk"], ["main.py"]])
def test_a_process_exits_2_with_one_line_before_any_socket_opens(tmp_path: Path, command: list[str]) -> None:
    config = bad_system(tmp_path, "state_interval_s = 1.0", "state_interval_s = -3.0")
    env = {**os.environ, "PORTFOLIO_ENV_FILE": str(tmp_path / "absent.env")}
    result = subprocess.run([sys.executable, *command, "--config", str(config)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == CONFIG_EXIT_STATUS, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "system.toml" in lines[0] and "risk.state_interval_s" in lines[0] and "-3.0" in lines[0]
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@pytest.mark.parametrize("address", ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://192.168.1.20:5555",
                                     "tcp://eth0:5555", "tcp://example.com:5555", "pgm://239.0.0.1:5555"])
def test_an_endpoint_off_this_machine_is_refused_until_curve_is_configured(address: str) -> None:
    raw = with_value("system.toml", ("endpoints", "gateway_rep"), address)
    with pytest.raises(ConfigError) as refused:
        check("system.toml", raw)
    assert_one_clear_line(str(refused.value), "system.toml", ("endpoints", "gateway_rep"), address)


def test_every_default_endpoint_is_ipc_or_loopback() -> None:
    endpoints = SystemConfig().endpoints.model_dump()
    assert endpoints and all(value.startswith("ipc://") for value in endpoints.values())


SYNC_KEYS = [("risk", "store_sync"), ("executor", "journal_sync")]


@pytest.mark.parametrize("key", SYNC_KEYS, ids=[".".join(k) for k in SYNC_KEYS])
@pytest.mark.parametrize("value", ["NORMAL", "off", "fast", ""])
def test_a_sync_mode_other_than_normal_or_full_is_refused_naming_both(key: tuple[str, str], value: str) -> None:
    """A string key escapes the range check above; a typo here must not silently pick a flush mode."""
    with pytest.raises(ConfigError) as refused:
        check("system.toml", with_value("system.toml", key, value))
    text = str(refused.value)
    assert_one_clear_line(text, "system.toml", key, value)
    assert "'normal'" in text and "'full'" in text, text


@pytest.mark.parametrize("key", SYNC_KEYS, ids=[".".join(k) for k in SYNC_KEYS])
def test_a_sync_mode_is_shipped_normal_and_full_is_accepted(key: tuple[str, str]) -> None:
    shipped = tomllib.loads((CONFIGS / "system.toml").read_text())
    assert shipped[key[0]][key[1]] == "normal"
    validated = validate_table(CONFIGS / "system.toml", with_value("system.toml", key, "full"), SystemConfig)
    assert getattr(getattr(validated, key[0]), key[1]) == "full"


def test_a_bad_sync_mode_stops_the_executor_with_one_line_and_exit_2(tmp_path: Path) -> None:
    config = bad_system(tmp_path, 'journal_sync = "normal"', 'journal_sync = "off"')
    env = {**os.environ, "PORTFOLIO_ENV_FILE": str(tmp_path / "absent.env")}
    result = subprocess.run([sys.executable, "-m", "services.executor", "--config", str(config)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == CONFIG_EXIT_STATUS, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "system.toml" in lines[0] and "executor.journal_sync" in lines[0] and "'off'" in lines[0], lines[0]
