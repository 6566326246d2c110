"""Keys that change nothing are declared (INERT_KEYS), marked in the shipped files and named at start.

An owner who sets ``max_risk_per_trade`` or ``trail_atr_mult`` must not believe it works. These tests keep the
declaration true in both directions: an inert key is read by no code, and every other key is read somewhere.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config import inert_key_notices, load_config
from shared.symbol_config import INERT_KEYS, SymbolConfig, Table, inert_keys_set

ROOT = Path(__file__).resolve().parents[3]
CODE_DIRS = ("services", "shared", "backtest")
# A key counts as read where code reads an attribute of its name (``.max_positions``), except in the files named
# here for it, where an attribute of the same name is something else (the backtest report's own drawdown).
NAME_CLASHES = {"max_drawdown": ("backtest/report.py",)}
# Keys that can hold one value only: they cannot mislead, so they are not declared inert.
SINGLE_VALUED = {"symbol": ("tf_primary", "tf_confirm", "tf_long"), "multi_order": ("multi_order_sl_tighten_pct",)}
TABLES: dict[str, type[Table]] = {name: field.annotation for name, field in SymbolConfig.model_fields.items()}  # type: ignore[misc]


@cache
def code() -> dict[str, str]:
    """Every module that could read a config key (path from the root -> text), but the one declaring them."""
    files = [p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py") if p.name != "symbol_config.py"]
    return {str(p.relative_to(ROOT)): p.read_text() for p in [*files, ROOT / "main.py"]}


def read_by_code(key: str) -> bool:
    attribute = re.compile(rf"\.{re.escape(key)}\b")
    return any(attribute.search(text) for path, text in code().items() if path not in NAME_CLASHES.get(key, ()))


def test_the_declared_tables_and_keys_exist() -> None:
    for table, keys in {**INERT_KEYS, **SINGLE_VALUED}.items():
        assert set(keys) <= set(TABLES[table].model_fields), table


@pytest.mark.parametrize("key", [f"{t}.{k}" for t, keys in INERT_KEYS.items() for k in keys])
def test_an_inert_key_is_read_by_no_code(key: str) -> None:
    assert not read_by_code(key.split(".")[1]), f"{key} is read somewhere: take it out of INERT_KEYS"


def test_every_other_key_is_read_somewhere() -> None:
    unread = [f"{table}.{key}" for table, model in TABLES.items() for key in model.model_fields
              if key not in INERT_KEYS.get(table, ()) and key not in SINGLE_VALUED.get(table, ())
              and not read_by_code(key)]
    assert unread == [], f"no code reads {unread}: make them work, or declare them in INERT_KEYS"


@pytest.mark.parametrize("key", [f"{t}.{k}" for t, keys in SINGLE_VALUED.items() for k in keys])
def test_a_single_valued_key_refuses_any_other_value(key: str) -> None:
    table, name = key.split(".")
    with pytest.raises(ValidationError):
        TABLES[table].model_validate({"name": "X", name: "M30" if name.startswith("tf_") else 0.1})


@pytest.mark.parametrize("name", ["xau.toml", "btc.toml"])
def test_the_shipped_files_mark_exactly_the_inert_keys(name: str) -> None:
    marked, section = set(), ""
    for line in (ROOT / "configs" / name).read_text().splitlines():
        if header := re.match(r"^\[([A-Za-z_]+)\]", line):
            section = header.group(1)
        if (key := re.match(r"^([A-Za-z0-9_]+)\s*=", line)) and "no effect yet" in line:
            marked.add(f"{section}.{key.group(1)}")
    assert marked == {f"{t}.{k}" for t, keys in INERT_KEYS.items() for k in keys}


def test_the_notice_names_the_inert_keys_a_file_spells_out(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    system = (ROOT / "configs" / "system.toml").read_text()
    (configs / "system.toml").write_text(system)
    (configs / "xau.toml").write_text('[symbol]\nname = "XAUUSDm"\n[sltp]\ntrail_atr_mult = 1.0\n'
                                      "sl_atr_mult_trend = 1.2\n[risk]\nmax_risk_per_trade = 0.01\n")
    (configs / "btc.toml").write_text('[symbol]\nname = "BTCUSDm"\n')  # every key left at its default
    config = load_config(configs / "system.toml")
    assert inert_keys_set(config.symbols["XAUUSDm"]) == ["risk.max_risk_per_trade", "sltp.trail_atr_mult"]
    assert inert_keys_set(config.symbols["BTCUSDm"]) == []
    notices = inert_key_notices(config)
    assert len(notices) == 1
    assert "xau.toml sets 2 keys that have no effect" in notices[0]
    assert notices[0].endswith("risk.max_risk_per_trade, sltp.trail_atr_mult")
