"""When a SQLite WAL is checkpointed: in a quiet moment, not on a commit in an order's path.

With ``synchronous=NORMAL`` a commit only appends to the WAL; the sync happens at a checkpoint, when SQLite
copies the WAL into the database file and syncs both (about 2 ms on the development disk). Left to itself,
SQLite checkpoints inside whichever commit takes the WAL past 1,000 pages, so every few seconds one signal,
plan or order paid for it: that was most of the pipeline's p99. The executor, risk and the simulator's
state file each call ``busy()`` when they handle something and ``poll()`` often; the checkpoint then runs
once the process has been quiet for ``idle_s`` (the messages a bar causes come within milliseconds of each
other, so this lands between bars) and at most every ``every_s``. The automatic checkpoint stays as the
backstop for a process that is never quiet.
"""

from __future__ import annotations

import sqlite3

IDLE_S = 0.02
EVERY_S = 1.0


class QuietCheckpoint:
    """Checkpoints one connection's WAL (PASSIVE: never waits for a reader) when its process is quiet."""

    def __init__(self, db: sqlite3.Connection, *, idle_s: float = IDLE_S, every_s: float = EVERY_S) -> None:
        self._db = db
        self.idle_s, self.every_s = idle_s, every_s
        self._busy_at = 0.0
        self._done_at = float("-inf")
        self._pending = False
        self.count = 0

    def busy(self, now: float) -> None:
        """Something was handled (and maybe committed) at ``now``, a monotonic time in seconds."""
        self._busy_at, self._pending = now, True

    def poll(self, now: float) -> bool:
        """Checkpoint if anything happened since the last one, the process has been quiet for ``idle_s``
        and the last one is ``every_s`` old; True if it did."""
        if not self._pending or now - self._busy_at < self.idle_s or now - self._done_at < self.every_s:
            return False
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self._pending, self._done_at = False, now
        self.count += 1
        return True
