"""QuietCheckpoint: the WAL reaches the database file only after a quiet moment, at most every ``every_s``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from shared.wal import QuietCheckpoint


def wal_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (x TEXT)")
    return db


def write(db: sqlite3.Connection, rows: int = 20) -> None:
    db.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * rows)


def test_the_checkpoint_waits_for_quiet_and_then_copies_the_wal_into_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    db = wal_db(path)
    quiet = QuietCheckpoint(db, idle_s=0.02, every_s=1.0)
    before = path.stat().st_size
    write(db)
    quiet.busy(10.0)
    assert not quiet.poll(10.01)  # 10 ms after the last message: another of the same bar may follow
    assert path.stat().st_size == before
    assert quiet.poll(10.03)
    assert path.stat().st_size > before
    assert not quiet.poll(10.5)  # nothing happened since


def test_at_most_one_checkpoint_every_every_s(tmp_path: Path) -> None:
    db = wal_db(tmp_path / "t.sqlite")
    quiet = QuietCheckpoint(db, idle_s=0.02, every_s=1.0)
    quiet.busy(0.0)
    assert quiet.poll(0.1)
    write(db)
    quiet.busy(0.2)
    assert not quiet.poll(0.5)  # quiet, but the last checkpoint is 0.4 s old
    assert quiet.poll(1.1)
    assert quiet.count == 2
    assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 20
