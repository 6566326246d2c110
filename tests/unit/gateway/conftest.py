"""Fixtures of the gateway tests: the venues of the broker contract and the mt5linux bridge."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.gateway.venues import KINDS, Bridge, Venue, close, make_venue
from tests.unit.sim.helpers import Row

OpenVenue = Callable[..., Venue]


@pytest.fixture(scope="session")
def bridge() -> Iterator[Bridge]:
    """One loopback RPyC bridge for the whole run (each venue connects its own client)."""
    served = Bridge()
    yield served
    served.close()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """sim, mt5 (adapter + fake module) or mt5linux (adapter + mt5linux client + bridge + fake module)."""
    return str(request.param)


@pytest.fixture
def open_venue(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[OpenVenue]:
    """``open_venue(xau_rows, btc_rows, **sim_settings)`` -> a Venue of this test's kind, closed afterwards."""
    opened: list[Venue] = []

    def factory(xau: list[Row] | None, btc: list[Row] | None, **sim_settings: Any) -> Venue:
        bridge = request.getfixturevalue("bridge") if kind == "mt5linux" else None
        where = tmp_path / f"venue{len(opened)}"
        where.mkdir()
        venue = make_venue(kind, where, xau, btc, bridge, **sim_settings)
        opened.append(venue)
        return venue

    yield factory
    for venue in opened:
        close(venue)
