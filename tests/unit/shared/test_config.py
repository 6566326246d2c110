"""Config files: the shipped ones load; a bad value names file, key, value and the fix; exit status 2."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "configs"


def copy_configs(tmp_path: Path) -> Path:
    target = tmp_path / "configs"
    shutil.copytree(CONFIGS, target)
    return target / "system.toml"


def test_shipped_configs_load_with_the_documented_defaults() -> None:
    config = load_config(CONFIGS / "system.toml")
    xau, btc = config.symbols["XAUUSDm"], config.symbols["BTCUSDm"]
    assert config.system.broker.backend == "sim"
    assert (xau.risk.daily_target_pct, xau.risk.daily_loss_b_pct, xau.risk.daily_loss_c_pct) == (0.20, 0.02, 0.05)
    assert (xau.risk.max_daily_loss_pct, btc.risk.max_daily_loss_pct) == (0.10, 0.03)
    assert (xau.signal.min_confidence_signal, btc.signal.min_confidence_signal) == (0.80, 0.75)
    assert (xau.signal.ultra_confidence_min, btc.signal.ultra_confidence_min) == (0.90, 0.92)
    assert (xau.signal.net_norm_signal_threshold, btc.signal.net_norm_signal_threshold) == (0.10, 0.12)
    assert (xau.signal.confidence_gain, btc.signal.confidence_gain) == (70.0, 120.0)
    assert xau.signal.confidence_bias == btc.signal.confidence_bias == 50.0
    assert xau.multi_order.multi_order_confidence_tiers == (0.85, 0.90, 0.90)
    assert xau.multi_order.multi_order_max_orders == 3
    assert xau.limits.max_signals_per_day == 0
    assert xau.risk.ignore_external_positions and xau.symbol.magic == 777001
    assert xau.risk.protect_drawdown_from_peak_pct == 0.30
    assert xau.symbol.market_open_24_5 and not btc.symbol.market_open_24_5
    assert config.system.mt5.mt5_path == ""
    assert config.system.endpoint("gateway_pub").startswith("ipc://")


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        ("xau.toml", "daily_target_pct = 0.20", 'daily_target_pct = "lots"', "risk.daily_target_pct = 'lots'"),
        ("xau.toml", "daily_loss_c_pct = 0.05", "daily_loss_c_pct = -0.05", "risk.daily_loss_c_pct = -0.05"),
        ("btc.toml", "confidence_gain = 120.0", "confidance_gain = 120.0", "unknown key signal.confidance_gain"),
        ("system.toml", 'backend = "sim"', 'backend = "metatrader"', "broker.backend = 'metatrader'"),
        ("system.toml", 'gateway_pub = "ipc://{run_dir}/gateway_pub"', 'gateway_pub = "tcp://0.0.0.0:5555"',
         "endpoints.gateway_pub"),
    ],
)
def test_a_bad_value_is_named_with_its_file_and_key(
    tmp_path: Path, file: str, old: str, new: str, expected: str
) -> None:
    system = copy_configs(tmp_path)
    target = system.parent / file
    text = target.read_text()
    assert old in text
    target.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_config(system)
    message = str(caught.value)
    assert file in message and expected in message
    assert "\n" not in message


@pytest.mark.parametrize("module", ["services.gateway_mt5", "services.executor", "services.strategy_xau"])
def test_a_service_with_a_bad_config_exits_2_before_opening_sockets(tmp_path: Path, module: str) -> None:
    system = copy_configs(tmp_path)
    system.write_text(system.read_text().replace("poll_interval_s = 0.02", "poll_interval_s = 0"))
    result = subprocess.run([sys.executable, "-m", module, "--config", str(system)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "gateway.poll_interval_s = 0" in lines[0]
    assert not (tmp_path / "run").exists(), "no socket directory may be created before the config is valid"


def test_main_refuses_a_bad_config_with_status_2(tmp_path: Path) -> None:
    system = copy_configs(tmp_path)
    xau = system.parent / "xau.toml"
    xau.write_text(xau.read_text().replace("multi_order_max_orders = 3", "multi_order_max_orders = 7"))
    result = subprocess.run([sys.executable, "main.py", "--config", str(system)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "xau.toml" in result.stderr and "multi_order.multi_order_max_orders = 7" in result.stderr
