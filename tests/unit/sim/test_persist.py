"""The simulated trade server survives a gateway restart: a broker on the same state file resumes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.gateway_mt5.sim.broker import SimBroker
from services.gateway_mt5.sim.config import SimConfig
from services.gateway_mt5.sim.persist import SimStateError, read_deals, read_state
from shared import mt5
from shared.clock import FakeClock
from shared.messages import DealClosed, PositionData
from shared.wal import IDLE_S
from tests.unit.sim.helpers import DATA, deal

FAULTS = {"seed": 3, "requote": 0.2, "none_filled": 0.2, "none_not_filled": 0.2}


def config(**settings: object) -> SimConfig:
    return SimConfig.model_validate({"speed": 0, "max_bars_per_poll": 30, "initial_balance": 100_000,
                                     "start": "2025-07-14T06:00:00", "faults": FAULTS, **settings})


def sim_at(path: Path | None, clock: FakeClock | None = None, **settings: object) -> SimBroker:
    sim = SimBroker(config(**settings), clock or FakeClock(), DATA, state_path=path, save_every_bars=10)
    sim.connect()
    return sim


def trade(sim: SimBroker, rounds: int) -> list[tuple[object, ...]]:
    """Replay and trade: open a position with SL/TP on each symbol, close some; what each send answered."""
    seen: list[tuple[object, ...]] = []
    for k in range(rounds):
        sim.poll()
        for symbol in ("XAUUSDm", "BTCUSDm"):
            tick = sim.tick(symbol)
            assert tick is not None
            gap = 3.0 if symbol == "XAUUSDm" else 300.0
            result = sim.order_send(deal(symbol, "buy", 0.01, sl=round(tick.bid - gap, 2),
                                         tp=round(tick.bid + gap, 2), magic=7, comment=f"leg-{symbol}-{k}"))
            seen.append((symbol, k, None if result is None else result.retcode))
        if k % 3 == 2 and (open_ := sim.positions()):
            first = open_[0]
            sim.order_send(deal(first.symbol, "sell", first.volume, position=first.ticket, magic=7))
    return seen


def server(sim: SimBroker) -> tuple[float, float, list[PositionData], list[DealClosed]]:
    return sim.now, sim.account().balance, sim.positions(), sim.deals(0)


def test_a_restarted_broker_continues_where_the_killed_one_stopped(tmp_path: Path) -> None:
    path = tmp_path / "sim_broker.sqlite"
    first = sim_at(path)
    trade(first, 12)
    before = server(first)  # the last call was an order_send (or a poll after 10+ bars): saved
    first.order_send(deal("XAUUSDm", "buy", 0.01, magic=7, comment="last"))
    before = server(first)
    del first  # a SIGKILL: no shutdown, no save beyond what order_send committed
    resumed = sim_at(path)
    assert resumed.resumed
    assert server(resumed) == before
    assert any(p.comment == "last" for p in resumed.positions())


def test_the_resumed_replay_is_the_replay_that_was_not_interrupted(tmp_path: Path) -> None:
    whole = sim_at(None)
    interrupted = sim_at(tmp_path / "s.sqlite")
    expected = trade(whole, 10) + trade(whole, 10)
    got = trade(interrupted, 10)
    interrupted = sim_at(tmp_path / "s.sqlite")
    got += trade(interrupted, 10)
    assert got == expected  # same fills and same fault draws after the restart
    assert server(interrupted) == server(whole)
    assert any(d.reason in (mt5.DEAL_REASON_SL, mt5.DEAL_REASON_TP) for d in whole.deals(0))


def test_every_deal_is_kept_with_its_leg_comment(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    sim = sim_at(path)
    trade(sim, 6)
    sim.shutdown()
    deals = read_deals(path)
    entries = [d for d in deals if d["entry"] == mt5.DEAL_ENTRY_IN]
    exits = [d for d in deals if d["entry"] == mt5.DEAL_ENTRY_OUT]
    sim.connect()
    open_now = {p.ticket for p in sim.positions()}
    assert {d["position_id"] for d in entries} == open_now | {d["position_id"] for d in exits}
    assert all(d["comment"].startswith("leg-") for d in entries)
    state = read_state(path)
    assert state is not None and state["now"] == sim.now


def test_wall_clock_pacing_resumes_from_the_saved_market_time(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    clock = FakeClock()
    sim = sim_at(path, clock, speed=60.0)
    clock.advance(600.0)  # ten hours of market time at 60x
    sim.poll()
    reached = sim.now
    sim.shutdown()
    later = FakeClock()
    later.advance(5_000.0)
    again = sim_at(path, later, speed=60.0)
    assert again.now == reached
    later.advance(1.0)
    again.poll()
    assert again.now == reached + 60.0


def test_a_state_of_another_configuration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    sim_at(path).shutdown()
    with pytest.raises(SimStateError, match="another \\[sim\\] configuration"):
        sim_at(path, initial_balance=5_000)


def test_without_a_state_path_nothing_is_written(tmp_path: Path) -> None:
    sim = sim_at(None)
    trade(sim, 3)
    sim.shutdown()
    assert list(tmp_path.iterdir()) == []


def test_the_wal_is_checkpointed_only_in_a_quiet_poll(tmp_path: Path) -> None:
    """Orders and bars write to the WAL; the copy into the database file (a sync of both) waits for a poll
    that replays nothing, IDLE_S after the last order, so it never falls inside an order_send."""
    path = tmp_path / "s.sqlite"
    clock = FakeClock()
    sim = sim_at(path, clock, speed=60.0, faults={})
    main_file = path.stat().st_size
    tick = sim.tick("XAUUSDm")
    assert tick is not None
    result = sim.order_send(deal("XAUUSDm", "buy", 0.01, sl=round(tick.bid - 3, 2), tp=round(tick.bid + 3, 2),
                                 magic=7, comment="leg-quiet"))
    assert result is not None and result.retcode == 10009  # done
    sim.poll()  # no wall time has passed: nothing replayed, but the order was just now
    assert path.stat().st_size == main_file
    clock.advance(IDLE_S / 2)
    sim.poll()  # a 60x replay moves 0.6 market seconds: still no bar, and not quiet long enough
    assert path.stat().st_size == main_file
    clock.advance(IDLE_S)
    sim.poll()
    assert path.stat().st_size > main_file  # the state and the deal are in the database file itself now
    assert [d["comment"] for d in read_deals(path)] == ["leg-quiet"]


def test_a_position_closed_before_the_restart_is_still_known_closed(tmp_path: Path) -> None:
    """The closed tickets are rebuilt from the saved exit deals, not saved in the row (it would grow with
    every position ever closed): closing one again answers 10036 after a restart, as before it."""
    path = tmp_path / "sim_broker.sqlite"
    first = sim_at(path, faults={})
    trade(first, 6)
    open_ticket = first.positions()[0].ticket
    closed = {d.position_id for d in first.deals(0)} - {p.ticket for p in first.positions()}
    assert closed
    state = read_state(path)
    assert state is not None and "closed" not in state
    del first
    resumed = sim_at(path, faults={})
    for ticket in sorted(closed)[:3]:
        result = resumed.order_send(deal("XAUUSDm", "sell", 0.01, position=ticket, magic=7))
        assert result is not None and result.retcode == 10036, ticket
    result = resumed.order_send(deal("XAUUSDm", "sell", 0.01, position=10**9, magic=7))
    assert result is not None and result.retcode == 10013  # never existed
    assert any(p.ticket == open_ticket for p in resumed.positions())
