"""What a backtest refuses (naming file, line and problem), what it only counts (gaps), and --faults."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backtest.cli import main
from backtest.inputs import Gaps, InputError, build_setup, fault_overrides
from tests.unit.backtest.helpers import Row, copy_configs, write_m1

T0 = 1_752_537_600  # 2025-07-15 00:00 UTC


def bars(count: int, start: int = T0) -> list[Row]:
    return [(start + 60 * i, 100_000.0 + i, 100_010.0 + i, 99_990.0 + i, 100_005.0 + i) for i in range(count)]


def run(tmp_path: Path, *extra: str) -> int:
    return main(["--config", str(tmp_path / "configs" / "system.toml"), "--symbols", "BTCUSDm",
                 "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"), *extra])


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    return copy_configs(tmp_path)


@pytest.mark.parametrize(("damage", "problem"), [
    (lambda lines: lines.__setitem__(6, lines[6].replace("100015.00", "nan", 1)), "not a positive finite price"),
    (lambda lines: lines.insert(6, lines[3]), "not sorted by time"),
    (lambda lines: lines.insert(6, lines[5]), "duplicate bar"),
])
def test_a_bad_file_is_refused_naming_file_and_line(
    tmp_path: Path, configs: Path, capsys: pytest.CaptureFixture[str], damage: object, problem: str,
) -> None:
    path = write_m1(tmp_path / "data" / "BTCUSDm.csv", bars(50))
    lines = path.read_text().splitlines()
    damage(lines)  # type: ignore[operator]
    path.write_text("\n".join(lines) + "\n")
    assert run(tmp_path) == 2
    message = capsys.readouterr().err
    assert str(path) in message and "line 7" in message and problem in message
    assert not (tmp_path / "out" / "trades.csv").exists()


def test_a_gap_is_skipped_and_counted(tmp_path: Path, configs: Path) -> None:
    rows = bars(600)
    del rows[400:403]  # three minutes missing while bitcoin trades
    del rows[500:501]
    write_m1(tmp_path / "data" / "BTCUSDm.csv", rows)
    setup = build_setup(configs, ["BTCUSDm"], tmp_path / "data", start=datetime.fromtimestamp(T0 + 300 * 60, UTC))
    assert setup.gaps == {"BTCUSDm": Gaps(runs=2, minutes=4)}
    assert setup.m1_bars == len([r for r in rows if r[0] + 60 > setup.start])


def test_gold_closed_hours_are_not_gaps(tmp_path: Path, configs: Path) -> None:
    friday_close = 1_752_872_400  # 2025-07-18 21:00 UTC: gold's weekend begins (summer time)
    rows = bars(30, friday_close - 30 * 60) + bars(30, friday_close + 49 * 3600)  # back on Sunday 22:00
    write_m1(tmp_path / "data" / "XAUUSDm.csv", rows)
    setup = build_setup(configs, ["XAUUSDm"], tmp_path / "data", start=datetime.fromtimestamp(friday_close - 1800, UTC))
    assert setup.gaps["XAUUSDm"] == Gaps(runs=0, minutes=0)


def test_the_window_must_hold_bars_and_the_symbols_must_be_configured(tmp_path: Path, configs: Path) -> None:
    write_m1(tmp_path / "data" / "BTCUSDm.csv", bars(50))
    with pytest.raises(InputError, match="no bar closes between"):
        build_setup(configs, ["BTCUSDm"], tmp_path / "data", start=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(InputError, match="choose among them"):
        build_setup(configs, ["EURUSDm"], tmp_path / "data")
    write_m1(tmp_path / "data" / "BTCUSDm_copy.csv", bars(50))
    with pytest.raises(InputError, match="2 files"):
        build_setup(configs, ["BTCUSDm"], tmp_path / "data")


def test_faults_from_the_command_line_and_from_a_file(tmp_path: Path, configs: Path) -> None:
    assert fault_overrides("requote=0.05,slippage=20,seed=3", ["XAUUSDm"]) == {
        "faults": {"requote": 0.05, "seed": 3},
        "symbols": {"XAUUSDm": {"sl_slippage_points": 20, "tp_slippage_points": 20}},
    }
    with pytest.raises(InputError, match="unknown key 'requotes'"):
        fault_overrides("requotes=0.05", ["XAUUSDm"])
    with pytest.raises(InputError, match="KEY=NUMBER"):
        fault_overrides("requote", ["XAUUSDm"])
    write_m1(tmp_path / "data" / "BTCUSDm.csv", bars(1500))  # a day of warm-up and an hour to replay
    toml = tmp_path / "pessimistic.toml"
    toml.write_text("[faults]\nrequote = 0.2\ntimeout = 0.1\n\n[symbols.BTCUSDm]\nsl_slippage_points = 30\n")
    setup = build_setup(configs, ["BTCUSDm"], tmp_path / "data", faults=str(toml))
    assert (setup.sim.faults.requote, setup.sim.faults.timeout) == (0.2, 0.1)
    assert setup.sim.symbols["BTCUSDm"].sl_slippage_points == 30
    assert setup.sim.symbols["BTCUSDm"].spread.points == 1000  # the preset still applies beneath the file
    assert "requote 0.2" in setup.fault_text
    toml.write_text("[faults]\nrequote = 0.9\ntimeout = 0.5\n")
    with pytest.raises(InputError, match=re.escape("sum to 1.4 > 1")):
        build_setup(configs, ["BTCUSDm"], tmp_path / "data", faults=str(toml))


def test_the_run_names_the_keys_of_its_symbols_that_have_no_effect(
    tmp_path: Path, configs: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    write_m1(tmp_path / "data" / "BTCUSDm.csv", bars(400))
    assert run(tmp_path, "--from", "2025-07-15T05:00") == 0
    err = capsys.readouterr().err
    assert "btc.toml sets 26 keys that have no effect" in err and "sltp.trail_atr_mult" in err
    assert "xau.toml" not in err  # only the symbols backtested
