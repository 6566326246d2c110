"""Fixtures of the risk tests: a real config written in tmp_path and a fake clock at a gold trading hour."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.clock import FakeClock
from shared.config import LoadedConfig, load_config
from tests.unit.risk.helpers import T0, write_system_toml


@pytest.fixture
def config(tmp_path: Path) -> LoadedConfig:
    return load_config(write_system_toml(tmp_path))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(float(T0))
