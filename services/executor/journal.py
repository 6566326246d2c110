"""The executor's journal: the life of every leg in SQLite (WAL), each step written BEFORE it is taken.

An order must reach the broker exactly once even if the process is killed between any two steps, so
the journal, not memory, says where each leg stands; on start the executor reconciles it with the
broker (``reconcile.py``). Every write is its own transaction. ``[executor] journal_sync`` picks how a
commit is flushed: ``normal`` (the default) leaves it in the WAL in the OS page cache, which survives a
SIGKILL of the process at any point; only an OS crash or power cut can lose the last commits, and the
start-up reconciliation finds those legs at the broker (the leg id travels in the order comment) or adopts
the position. ``full`` fsyncs every commit (about 0.3 ms each on the development disk, twice per order
before it leaves), for a machine whose OS or power is less trusted than its broker link.

A leg's states:

- ``intended``: written with its plan, before anything is sent; also written again after the broker
  answered an attempt with a retryable retcode (that attempt certainly did nothing).
- ``sending``: written just before a request leaves. Found after a crash, the request may or may not
  have reached the broker: the broker is asked. A leg that leaves at once (nothing else in flight, its
  symbol's spec known) is written ``sending`` in the transaction that records its plan, one commit
  instead of two before the order goes; the reconciliation treats it exactly like a later ``sending``.
- ``unknown``: the answer did not say (None, 10011, 10012, an IPC error, no reply in time); resolved
  from the broker's positions and deals, never by a blind resend.
- ``filled`` (ticket, price, volume) and ``rejected`` (retcode, why): final.

``reported`` records that the final report was handed to risk, so one lost in a crash is sent again
on start and one already delivered is not repeated. A plan id or a leg id seen before is refused.
Positions with our magic that no leg explains are written to ``adopted`` once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shared.config import SyncMode
from shared.messages import OrderLeg, OrderPlan, PositionData
from shared.wal import QuietCheckpoint

LegState = Literal["intended", "sending", "unknown", "filled", "rejected"]
OPEN_STATES: tuple[LegState, ...] = ("intended", "sending", "unknown")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (plan_id TEXT PRIMARY KEY, body TEXT NOT NULL, received_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS legs (
    leg_id TEXT PRIMARY KEY, plan_id TEXT NOT NULL REFERENCES plans (plan_id), seq INTEGER NOT NULL,
    symbol TEXT NOT NULL, side TEXT NOT NULL, volume REAL NOT NULL, magic INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('intended', 'sending', 'unknown', 'filled', 'rejected')),
    attempts INTEGER NOT NULL DEFAULT 0, ticket INTEGER, fill_price REAL, fill_volume REAL,
    retcode INTEGER, detail TEXT NOT NULL DEFAULT '',
    intended_at REAL NOT NULL, sent_at REAL, done_at REAL, market_sent_at REAL,
    latency_ms REAL NOT NULL DEFAULT 0, slippage_points REAL NOT NULL DEFAULT 0,
    slippage_usd REAL NOT NULL DEFAULT 0, retries INTEGER NOT NULL DEFAULT 0,
    reported INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS legs_state ON legs (state);
CREATE TABLE IF NOT EXISTS adopted (ticket INTEGER PRIMARY KEY, symbol TEXT NOT NULL, side TEXT NOT NULL,
    volume REAL NOT NULL, price_open REAL NOT NULL, magic INTEGER NOT NULL, comment TEXT NOT NULL,
    reason TEXT NOT NULL, adopted_at REAL NOT NULL);
"""
_COLUMNS = ("leg_id, plan_id, seq, symbol, side, volume, magic, state, attempts, ticket, fill_price, fill_volume, "
            "retcode, detail, intended_at, sent_at, done_at, market_sent_at, latency_ms, slippage_points, "
            "slippage_usd, retries, reported")


@dataclass(frozen=True, slots=True)
class LegRecord:
    """One row of ``legs``."""

    leg_id: str
    plan_id: str
    seq: int
    symbol: str
    side: str
    volume: float
    magic: int
    state: LegState
    attempts: int
    ticket: int | None
    fill_price: float | None
    fill_volume: float | None
    retcode: int | None
    detail: str
    intended_at: float
    sent_at: float | None
    done_at: float | None
    market_sent_at: float | None
    latency_ms: float
    slippage_points: float
    slippage_usd: float
    retries: int
    reported: bool


@dataclass(frozen=True, slots=True)
class Telemetry:
    """What a final outcome carries besides its retcode: the numbers risk and the order log want."""

    latency_ms: float = 0.0
    slippage_points: float = 0.0
    slippage_usd: float = 0.0
    retries: int = 0


class Journal:
    """``<state_dir>/executor.sqlite``; one connection, used from the executor's thread only."""

    def __init__(self, path: Path, sync: SyncMode = "normal") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={sync.upper()}")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self.quiet = QuietCheckpoint(self._db)  # the runner checkpoints the WAL between bars (shared/wal.py)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ plans

    def add_plan(
        self, plan: OrderPlan, now: float, *, leaving: str | None = None, market_ts: float = 0.0,
    ) -> tuple[list[OrderLeg], list[str]]:
        """Write a plan and its legs as ``intended`` in one transaction; the leg named ``leaving`` (its first
        request leaves right after this commit) is written ``sending`` at attempt 1, as ``mark_sending``
        would, sent at ``now`` and market time ``market_ts``.

        Returns (the legs written, why the others were refused). A plan id seen before refuses the
        whole plan; a leg id seen before (under another plan) refuses that leg alone.
        """
        written: list[OrderLeg] = []
        refused: list[str] = []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            try:
                self._db.execute("INSERT INTO plans (plan_id, body, received_at) VALUES (?, ?, ?)",
                                 (plan.plan_id, plan.model_dump_json(), now))
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                return [], [f"plan {plan.plan_id} was received before"]
            for seq, leg in enumerate(plan.legs, start=1):
                try:
                    sending = leg.leg_id == leaving
                    self._db.execute(
                        "INSERT INTO legs (leg_id, plan_id, seq, symbol, side, volume, magic, state, intended_at, "
                        "attempts, sent_at, market_sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (leg.leg_id, plan.plan_id, seq, plan.symbol, plan.side, leg.volume, plan.magic,
                         "sending" if sending else "intended", now, 1 if sending else 0, now if sending else None,
                         market_ts if sending else None))
                    written.append(leg)
                except sqlite3.IntegrityError:
                    refused.append(f"leg {leg.leg_id} was received before")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return written, refused

    def plan(self, plan_id: str) -> OrderPlan:
        row = self._db.execute("SELECT body FROM plans WHERE plan_id = ?", (plan_id,)).fetchone()
        if row is None:
            raise KeyError(f"no plan {plan_id!r} in the journal")
        return OrderPlan.model_validate_json(row[0])

    # ------------------------------------------------------------------ legs

    def leg(self, leg_id: str) -> LegRecord | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM legs WHERE leg_id = ?", (leg_id,)).fetchone()
        return None if row is None else _record(row)

    def legs(self, *states: LegState) -> list[LegRecord]:
        """Legs in any of ``states`` (all legs when none is given), oldest first."""
        where = f"WHERE state IN ({', '.join('?' * len(states))})" if states else ""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM legs {where} ORDER BY intended_at, plan_id, seq",
                                states).fetchall()
        return [_record(row) for row in rows]

    def unreported(self) -> list[LegRecord]:
        """Final legs whose report never reached risk."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM legs WHERE state IN ('filled', 'rejected') "
                                "AND reported = 0 ORDER BY done_at, plan_id, seq").fetchall()
        return [_record(row) for row in rows]

    def mark_sending(self, leg_id: str, *, attempt: int, market_ts: float, now: float) -> None:
        self._update(leg_id, "state = 'sending', attempts = ?, sent_at = ?, market_sent_at = ?",
                     (attempt, now, market_ts))

    def mark_intended(self, leg_id: str, *, retcode: int | None, detail: str) -> None:
        """The last attempt certainly did nothing at the broker; another may follow."""
        self._update(leg_id, "state = 'intended', retcode = ?, detail = ?", (retcode, detail))

    def mark_unknown(self, leg_id: str, *, retcode: int | None, detail: str, now: float) -> None:
        self._update(leg_id, "state = 'unknown', retcode = ?, detail = ?, done_at = ?", (retcode, detail, now))

    def mark_filled(
        self, leg_id: str, *, ticket: int, price: float | None, volume: float, retcode: int | None, detail: str,
        telemetry: Telemetry, now: float,
    ) -> None:
        self._update(
            leg_id,
            "state = 'filled', ticket = ?, fill_price = ?, fill_volume = ?, retcode = ?, detail = ?, done_at = ?, "
            "latency_ms = ?, slippage_points = ?, slippage_usd = ?, retries = ?, reported = 0",
            (ticket, price, volume, retcode, detail, now, telemetry.latency_ms, telemetry.slippage_points,
             telemetry.slippage_usd, telemetry.retries))

    def mark_rejected(
        self, leg_id: str, *, retcode: int | None, detail: str, telemetry: Telemetry, now: float,
    ) -> None:
        self._update(
            leg_id,
            "state = 'rejected', retcode = ?, detail = ?, done_at = ?, latency_ms = ?, slippage_points = 0, "
            "slippage_usd = 0, retries = ?, reported = 0",
            (retcode, detail, now, telemetry.latency_ms, telemetry.retries))

    def mark_reported(self, leg_id: str) -> None:
        self._update(leg_id, "reported = 1", ())

    def _update(self, leg_id: str, assignments: str, values: tuple[object, ...]) -> None:
        cursor = self._db.execute(f"UPDATE legs SET {assignments} WHERE leg_id = ?", (*values, leg_id))
        if cursor.rowcount != 1:
            raise KeyError(f"no leg {leg_id!r} in the journal")

    # ------------------------------------------------------------------ positions

    def known_tickets(self) -> set[int]:
        """Tickets the journal accounts for: filled legs and adopted positions."""
        rows = self._db.execute("SELECT ticket FROM legs WHERE ticket IS NOT NULL "
                                "UNION SELECT ticket FROM adopted").fetchall()
        return {int(row[0]) for row in rows}

    def adopt(self, position: PositionData, reason: str, now: float) -> bool:
        """Record a position no leg explains; False if it was adopted before."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO adopted (ticket, symbol, side, volume, price_open, magic, comment, reason, "
            "adopted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (position.ticket, position.symbol, position.side, position.volume, position.price_open, position.magic,
             position.comment, reason, now))
        return cursor.rowcount == 1

    def adopted_tickets(self) -> set[int]:
        return {int(row[0]) for row in self._db.execute("SELECT ticket FROM adopted").fetchall()}


def _record(row: tuple[object, ...]) -> LegRecord:
    values = list(row)
    values[-1] = bool(values[-1])
    return LegRecord(*values)  # type: ignore[arg-type]
