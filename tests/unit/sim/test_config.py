"""The [sim] table: presets, unknown keys, and errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.gateway_mt5.sim.config import SimConfig, SpecConfig, SpreadConfig


def test_defaults_replay_both_shipped_symbols() -> None:
    config = SimConfig()
    assert list(config.symbols) == ["XAUUSDm", "BTCUSDm"]
    gold, btc = config.symbols["XAUUSDm"], config.symbols["BTCUSDm"]
    assert (gold.spec.digits, gold.spec.trade_contract_size, gold.spread.points) == (3, 100.0, 200)
    assert (btc.spec.digits, btc.spec.trade_contract_size, btc.spread.points) == (2, 1.0, 1000)
    assert btc.hours.always_open and not gold.hours.always_open
    assert (config.speed, config.initial_balance, config.leverage) == (1.0, 1000.0, 200)


def test_a_partial_table_is_merged_onto_the_preset() -> None:
    table = {"XAUUSDm": {"spread": {"points": 250}, "spec": {"trade_stops_level": 20}}}
    config = SimConfig.model_validate({"symbols": table})
    gold = config.symbols["XAUUSDm"]
    assert gold.spread.points == 250 and gold.spec.trade_stops_level == 20
    assert gold.spec.trade_contract_size == 100.0 and gold.data == Path("XAUUSDm_M1_2025-07-09_2025-08-12.csv.gz")
    assert list(config.symbols) == ["XAUUSDm"]


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"sped": 1}, "sped"),
        ({"symbols": {"XAUUSDm": {"spred": {}}}}, "spred"),
        ({"symbols": {"EURUSDm": {"spread": {"points": 10}}}}, "data"),
        ({"symbols": {}}, "at least one symbol"),
        ({"speed": -1}, "speed"),
        ({"faults": {"stale": [{"symbol": "ETH", "start": "2025-07-10T00:00:00", "end": "2025-07-10T01:00:00"}]}},
         "not in sim.symbols"),
        ({"faults": {"disconnects": [{"start": "2025-07-10T01:00:00", "end": "2025-07-10T00:00:00"}]}},
         "must be after start"),
    ],
)
def test_bad_tables_are_refused(table: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        SimConfig.model_validate(table)


def test_spec_consistency() -> None:
    with pytest.raises(ValidationError, match="trade_tick_value"):
        SpecConfig(trade_tick_value=1.0)
    with pytest.raises(ValidationError, match="multiple of point"):
        SpecConfig(trade_tick_size=0.0015)
    with pytest.raises(ValidationError, match="min_points <= max_points"):
        SpreadConfig(mode="random", min_points=300, max_points=200)
