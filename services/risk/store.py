"""Risk's durable state in SQLite (WAL): what a restart must not forget.

The trading switch, the day anchors (UTC day, start balance, peak equity), per symbol the regime,
cooldown, signal counter and the bar of the last plan, our fills (for the per-hour throttle and to
ignore a report seen twice) and our open positions. Every change is written at once, in its own
transaction with ``synchronous=FULL``: a SIGKILL or a power cut loses nothing that was acknowledged.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from shared.messages import Regime

_SCHEMA = """
CREATE TABLE IF NOT EXISTS switch (id INTEGER PRIMARY KEY CHECK (id = 1), enabled INTEGER NOT NULL,
    by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS day (id INTEGER PRIMARY KEY CHECK (id = 1), day TEXT NOT NULL,
    start_balance REAL, peak_equity REAL);
CREATE TABLE IF NOT EXISTS books (symbol TEXT PRIMARY KEY, regime TEXT NOT NULL,
    cooldown_until REAL NOT NULL, last_plan_bar_time INTEGER NOT NULL, signals_today INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fills (leg_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, filled_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS positions (key TEXT PRIMARY KEY, symbol TEXT NOT NULL, ticket INTEGER,
    opened_at REAL NOT NULL);
"""
FILLS_KEPT_S = 2 * 3600.0  # the throttle looks back one hour; keep a little more for inspection


@dataclass(frozen=True, slots=True)
class DayAnchors:
    """The trading day: its UTC date, the balance it started with and the highest equity seen."""

    day: str
    start_balance: float | None
    peak_equity: float | None


@dataclass(slots=True)
class SymbolBook:
    """What risk keeps per symbol between messages (and restarts)."""

    regime: Regime = "A"
    cooldown_until: float = 0.0
    last_plan_bar_time: int = -1
    signals_today: int = 0


class RiskStore:
    """The SQLite file ``<state_dir>/risk.sqlite``; one connection, used from the risk thread only."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ trading switch

    def load_switch(self) -> tuple[bool, str] | None:
        row = self._db.execute("SELECT enabled, by FROM switch WHERE id = 1").fetchone()
        return None if row is None else (bool(row[0]), str(row[1]))

    def save_switch(self, enabled: bool, by: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO switch (id, enabled, by) VALUES (1, ?, ?)",
                         (int(enabled), by))

    # ------------------------------------------------------------------ day anchors

    def load_day(self) -> DayAnchors | None:
        row = self._db.execute("SELECT day, start_balance, peak_equity FROM day WHERE id = 1").fetchone()
        return None if row is None else DayAnchors(str(row[0]), row[1], row[2])

    def save_day(self, anchors: DayAnchors) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO day (id, day, start_balance, peak_equity) VALUES (1, ?, ?, ?)",
            (anchors.day, anchors.start_balance, anchors.peak_equity),
        )

    # ------------------------------------------------------------------ per-symbol books

    def load_books(self) -> dict[str, SymbolBook]:
        rows = self._db.execute(
            "SELECT symbol, regime, cooldown_until, last_plan_bar_time, signals_today FROM books"
        ).fetchall()
        books: dict[str, SymbolBook] = {}
        for symbol, regime, cooldown_until, last_bar, signals in rows:
            if regime not in ("A", "B", "C"):
                raise ValueError(f"{self.path}: books.regime for {symbol} is {regime!r}, not A, B or C")
            books[symbol] = SymbolBook(regime, cooldown_until, last_bar, signals)
        return books

    def save_book(self, symbol: str, book: SymbolBook) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO books (symbol, regime, cooldown_until, last_plan_bar_time, signals_today)"
            " VALUES (?, ?, ?, ?, ?)",
            (symbol, book.regime, book.cooldown_until, book.last_plan_bar_time, book.signals_today),
        )

    # ------------------------------------------------------------------ fills and open positions

    def record_fill(self, leg_id: str, symbol: str, ticket: int | None, at: float) -> bool:
        """Count a filled leg once; False if this leg was counted before (a repeated report)."""
        with self._db:
            self._db.execute("BEGIN")
            if self._db.execute("SELECT 1 FROM fills WHERE leg_id = ?", (leg_id,)).fetchone():
                return False
            self._db.execute("DELETE FROM fills WHERE filled_at < ?", (at - FILLS_KEPT_S,))
            self._db.execute("INSERT INTO fills (leg_id, symbol, filled_at) VALUES (?, ?, ?)",
                             (leg_id, symbol, at))
            if ticket is not None:  # a reconciliation may have listed this position already
                self._db.execute("DELETE FROM positions WHERE symbol = ? AND ticket = ?", (symbol, ticket))
            self._db.execute("INSERT OR REPLACE INTO positions (key, symbol, ticket, opened_at) "
                             "VALUES (?, ?, ?, ?)", (leg_id, symbol, ticket, at))
        return True

    def fills_since(self, symbol: str, since: float) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM fills WHERE symbol = ? AND filled_at >= ?",
                               (symbol, since)).fetchone()
        return int(row[0])

    def open_positions(self, symbol: str) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM positions WHERE symbol = ?", (symbol,)).fetchone()
        return int(row[0])

    def close_position(self, symbol: str, ticket: int) -> bool:
        """Forget the position ``ticket``, or else the oldest one of the symbol; False if none was open."""
        with self._db:
            self._db.execute("BEGIN")
            cursor = self._db.execute("DELETE FROM positions WHERE symbol = ? AND ticket = ?",
                                      (symbol, ticket))
            if cursor.rowcount == 0:
                cursor = self._db.execute(
                    "DELETE FROM positions WHERE key = (SELECT key FROM positions WHERE symbol = ? "
                    "ORDER BY opened_at, key LIMIT 1)", (symbol,))
        return cursor.rowcount > 0

    def replace_positions(self, symbol: str, tickets: dict[int, float]) -> None:
        """Make the broker's list (ticket -> open time) the truth for ``symbol``."""
        with self._db:
            self._db.execute("BEGIN")
            known = {row[0] for row in self._db.execute(
                "SELECT ticket FROM positions WHERE symbol = ? AND ticket IS NOT NULL", (symbol,))}
            self._db.execute("DELETE FROM positions WHERE symbol = ? AND (ticket IS NULL OR ticket NOT IN "
                             f"({','.join('?' * len(tickets))}))", (symbol, *tickets))
            for ticket, opened_at in tickets.items():
                if ticket not in known:
                    self._db.execute("INSERT OR REPLACE INTO positions (key, symbol, ticket, opened_at) "
                                     "VALUES (?, ?, ?, ?)", (f"ticket:{ticket}", symbol, ticket, opened_at))
