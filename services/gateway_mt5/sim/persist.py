"""What a broker's trade server keeps across a terminal restart, for the simulator: a SQLite file.

A real broker keeps positions, deals, balance and time while the terminal (our gateway) restarts. The
simulator lives inside the gateway process, so without this a gateway SIGKILL would start a new account
from the first bar. ``SimStore`` keeps, in one SQLite file (WAL, synchronous=NORMAL):

- ``server``: one row, the JSON of the replay position (market time, merged-event cursor, each symbol's
  cursor, bars held by a stale window or a disconnect, the next swap rollover), the account (balance,
  open positions with ticket/magic/comment/SL/TP, the ticket counter, exit deals not yet handed to the
  gateway) and the fault RNG state; the closed tickets (for 10036 on a second close) are rebuilt from the
  exit deals, so the row does not grow with every position ever closed;
- ``deals``: every deal, entry and exit, one row each (appended, never rewritten).

Each save is one transaction, so a SIGKILL leaves the previous state or the new one, never a mix.
NORMAL, not FULL: the broker saves after every order_send, before the gateway replies, so that a fill the
executor journals is never lost by a gateway SIGKILL (the chaos test checks legs 1:1 against these deals);
a commit in the OS page cache survives that, and an fsync per order (~0.3 ms, in every order's round trip)
would only add protection against an OS crash, which takes the executor's and risk's files with it. The
replay is deterministic from a saved state (same bars, same SL/TP fills, same tickets, same fault draws),
so bars replayed after the last save are replayed again identically after a restart.

A state saved under another simulator configuration (other data, start, balance, faults) is refused with
an error naming the file: ``make run`` moves state/ to state/previous/ for a new account.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from services.gateway_mt5.sim.config import SimConfig
from shared.wal import QuietCheckpoint

SCHEMA = """
CREATE TABLE IF NOT EXISTS server (id INTEGER PRIMARY KEY CHECK (id = 1), fingerprint TEXT NOT NULL,
                                   state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deals (ticket INTEGER PRIMARY KEY, entry INTEGER NOT NULL, position_id INTEGER NOT NULL,
                                  symbol TEXT NOT NULL, comment TEXT NOT NULL, magic INTEGER NOT NULL,
                                  time REAL NOT NULL, record TEXT NOT NULL);
"""


class SimStateError(ValueError):
    """The saved simulator state cannot be resumed (another configuration, or an unreadable file)."""


def fingerprint(config: SimConfig) -> str:
    """What must not change for a saved state to be resumed: everything but the replay pacing."""
    text = config.model_dump_json(exclude={"speed", "max_bars_per_poll"})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class SimStore:
    """The simulated trade server's durable state (see the module docstring)."""

    def __init__(self, path: Path, config: SimConfig) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fingerprint = fingerprint(config)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self.saved_deals = int(self._db.execute("SELECT COUNT(*) FROM deals").fetchone()[0])
        # The broker checkpoints the WAL in a quiet poll, never inside an order_send (shared/wal.py).
        self.quiet = QuietCheckpoint(self._db)

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None for a new account; SimStateError if it belongs to another config."""
        row = self._db.execute("SELECT fingerprint, state FROM server WHERE id = 1").fetchone()
        if row is None:
            return None
        if row[0] != self._fingerprint:
            raise SimStateError(
                f"{self.path}: saved by a simulator with another [sim] configuration; move the file away "
                "(make run does, into state/previous/) to start a new simulated account"
            )
        state: dict[str, Any] = json.loads(row[1])
        return state

    def save(self, state: dict[str, Any], deals: list[tuple[int, int, int, str, str, int, float, str]]) -> None:
        """Replace the server row and append ``deals`` (ticket, entry, position, symbol, comment, magic, time,
        record JSON), atomically."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT OR REPLACE INTO server (id, fingerprint, state) VALUES (1, ?, ?)",
                       (self._fingerprint, json.dumps(state, separators=(",", ":"))))
            if deals:
                db.executemany("INSERT OR IGNORE INTO deals VALUES (?, ?, ?, ?, ?, ?, ?, ?)", deals)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.saved_deals += len(deals)

    def exits(self) -> list[dict[str, Any]]:
        """Every saved exit deal, oldest ticket first (the history deals() answers from)."""
        rows = self._db.execute("SELECT record FROM deals WHERE entry = 1 ORDER BY ticket").fetchall()
        return [json.loads(row[0]) for row in rows]

    def close(self) -> None:
        """Close the file (the state stays on disk)."""
        self._db.close()


def read_deals(path: Path) -> list[dict[str, Any]]:
    """Every deal saved in a simulator state file, oldest ticket first (for tests and audits)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT record FROM deals ORDER BY ticket").fetchall()
    finally:
        db.close()
    return [json.loads(row[0]) for row in rows]


def read_state(path: Path) -> dict[str, Any] | None:
    """The saved server row of a simulator state file (positions, balance, market time), or None."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT state FROM server WHERE id = 1").fetchone()
    finally:
        db.close()
    return None if row is None else dict(json.loads(row[0]))
