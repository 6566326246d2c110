"""Risk's durable state in SQLite (WAL): what a restart must not forget.

The trading switch; the day (UTC date, start balance, peaks of the day's P&L, the announcement of the new
day still owed); per symbol the regime, the cooldowns and pauses, the signal counter and the bar of the
last plan; our plans and fills (the hourly throttles), the reports seen (a report seen twice), our exit deals of the day
(realised P&L, each counted once), our open positions and the recent execution samples.

Every message the core handles is one transaction (``atomic``): a SIGKILL at any moment leaves either
everything a message changed or nothing of it, so the midnight reset (new day row AND every regime back to
A) can never be half done, and a day is never reset twice. ``[risk] store_sync`` picks the flush of each
commit: ``normal`` (WAL in the OS page cache, survives a SIGKILL; an OS crash may lose the last commits) or
``full`` (fsync at every commit).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shared.config import SyncMode
from shared.messages import Regime
from shared.wal import QuietCheckpoint

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
CREATE TABLE IF NOT EXISTS reports (leg_id TEXT NOT NULL, status TEXT NOT NULL, seen_at REAL NOT NULL,
    PRIMARY KEY (leg_id, status));
CREATE TABLE IF NOT EXISTS plans (plan_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, planned_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS deals (ticket INTEGER PRIMARY KEY, symbol TEXT NOT NULL, day TEXT NOT NULL,
    net REAL NOT NULL);
CREATE TABLE IF NOT EXISTS exec_samples (id INTEGER PRIMARY KEY AUTOINCREMENT, symbol TEXT NOT NULL,
    latency_ms REAL NOT NULL, slippage_points REAL NOT NULL, failed INTEGER NOT NULL);
"""
# Columns added after the first version: ALTER TABLE adds them to an older file (existing day rows count as
# announced, so an upgrade does not greet the owner with a day that began before it).
_ADDED_COLUMNS = {
    "day": {"peak_account_pnl": "REAL NOT NULL DEFAULT 0", "peak_ours_pnl": "REAL NOT NULL DEFAULT 0",
            "announced": "INTEGER NOT NULL DEFAULT 1", "previous_day": "TEXT",
            "previous_pnl": "REAL NOT NULL DEFAULT 0", "previous_return": "REAL NOT NULL DEFAULT 0"},
    "books": {"latency_cooldown_until": "REAL NOT NULL DEFAULT 0", "latency_breaker_until": "REAL NOT NULL DEFAULT 0",
              "exec_paused_until": "REAL NOT NULL DEFAULT 0", "ewma_slippage": "REAL NOT NULL DEFAULT 0",
              "exec_pause_reason": "TEXT NOT NULL DEFAULT ''"},
}
KEPT_S = 2 * 3600.0  # fills and plans: the throttles look back one hour; keep a little more for inspection
REPORTS_KEPT_S = 7 * 86_400.0  # a repeated report comes soon after the first (the executor's restart)


@dataclass(frozen=True, slots=True)
class DayAnchors:
    """The trading day: its UTC date, the balance it started with, the peaks of its P&L on both measures
    (account currency, >= 0: the day starts at 0) and what the new-day announcement must say."""

    day: str
    start_balance: float | None
    peak_equity: float | None = None
    peak_account_pnl: float = 0.0
    peak_ours_pnl: float = 0.0
    announced: bool = True
    previous_day: str | None = None
    previous_pnl: float = 0.0
    previous_return: float = 0.0


@dataclass(slots=True)
class SymbolBook:
    """What risk keeps per symbol between messages (and restarts); all times are market time."""

    regime: Regime = "A"
    cooldown_until: float = 0.0  # after a fill
    last_plan_bar_time: int = -1
    signals_today: int = 0
    latency_cooldown_until: float = 0.0  # after a report slower than latency_rtt_ms_limit
    latency_breaker_until: float = 0.0  # after a report slower than rtt_cb_ms
    exec_paused_until: float = 0.0  # the execution-quality monitor's pause
    ewma_slippage: float = 0.0  # adverse slippage in points, exponentially weighted
    exec_pause_reason: str = ""  # why the monitor paused the symbol


_BOOK_COLUMNS = ("regime", "cooldown_until", "last_plan_bar_time", "signals_today", "latency_cooldown_until",
                 "latency_breaker_until", "exec_paused_until", "ewma_slippage", "exec_pause_reason")
_DAY_COLUMNS = ("day", "start_balance", "peak_equity", "peak_account_pnl", "peak_ours_pnl", "announced",
                "previous_day", "previous_pnl", "previous_return")


class RiskStore:
    """The SQLite file ``<state_dir>/risk.sqlite``; one connection, used from the risk thread only."""

    def __init__(self, path: Path, *, sync: SyncMode | Literal["off"] = "normal") -> None:
        """``sync`` is ``[risk] store_sync`` (see the module docstring), or ``"off"`` for replays and tests of
        the logic: never synced, so a power cut may lose the last transactions, but the file stays consistent."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={sync.upper()}")
        self._db.executescript(_SCHEMA)
        self.quiet = QuietCheckpoint(self._db)  # the runner checkpoints the WAL between bars (shared/wal.py)
        for table, columns in _ADDED_COLUMNS.items():
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for name, declaration in columns.items():
                if name not in present:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
        self._depth = 0
        # The execution-quality window, read once per symbol and then kept in step with exec_samples (every
        # report used to read the whole window back); dropped on a rollback so it is read again from the file.
        self._windows: dict[str, deque[tuple[int, float, float, bool]]] = {}

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction around everything inside (nested calls join the outer one); rolled back on error."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:  # the body failed, or the COMMIT did (disk full): nothing of it may remain
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._windows.clear()
            raise
        finally:
            self._depth = 0

    # ------------------------------------------------------------------ trading switch

    def load_switch(self) -> tuple[bool, str] | None:
        row = self._db.execute("SELECT enabled, by FROM switch WHERE id = 1").fetchone()
        return None if row is None else (bool(row[0]), str(row[1]))

    def save_switch(self, enabled: bool, by: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO switch (id, enabled, by) VALUES (1, ?, ?)", (int(enabled), by))

    # ------------------------------------------------------------------ day anchors

    def load_day(self) -> DayAnchors | None:
        row = self._db.execute(f"SELECT {', '.join(_DAY_COLUMNS)} FROM day WHERE id = 1").fetchone()
        if row is None:
            return None
        day, start, peak_equity, peak_account, peak_ours, announced, previous_day, previous_pnl, previous_ret = row
        return DayAnchors(str(day), start, peak_equity, peak_account, peak_ours, bool(announced), previous_day,
                          previous_pnl, previous_ret)

    def save_day(self, anchors: DayAnchors) -> None:
        values = (anchors.day, anchors.start_balance, anchors.peak_equity, anchors.peak_account_pnl,
                  anchors.peak_ours_pnl, int(anchors.announced), anchors.previous_day, anchors.previous_pnl,
                  anchors.previous_return)
        self._db.execute(f"INSERT OR REPLACE INTO day (id, {', '.join(_DAY_COLUMNS)}) "
                         f"VALUES (1, {', '.join('?' * len(values))})", values)

    # ------------------------------------------------------------------ per-symbol books

    def load_books(self) -> dict[str, SymbolBook]:
        rows = self._db.execute(f"SELECT symbol, {', '.join(_BOOK_COLUMNS)} FROM books").fetchall()
        books: dict[str, SymbolBook] = {}
        for symbol, regime, *rest in rows:
            if regime not in ("A", "B", "C"):
                raise ValueError(f"{self.path}: books.regime for {symbol} is {regime!r}, not A, B or C")
            books[symbol] = SymbolBook(regime, *rest)
        return books

    def save_book(self, symbol: str, book: SymbolBook) -> None:
        values = tuple(getattr(book, column) for column in _BOOK_COLUMNS)
        self._db.execute(f"INSERT OR REPLACE INTO books (symbol, {', '.join(_BOOK_COLUMNS)}) "
                         f"VALUES (?, {', '.join('?' * len(values))})", (symbol, *values))

    # ------------------------------------------------------------------ plans, fills and open positions

    def record_plan(self, plan_id: str, symbol: str, at: float) -> None:
        with self.atomic():
            self._db.execute("DELETE FROM plans WHERE planned_at < ?", (at - KEPT_S,))
            self._db.execute("INSERT OR REPLACE INTO plans (plan_id, symbol, planned_at) VALUES (?, ?, ?)",
                             (plan_id, symbol, at))

    def plans_since(self, symbol: str, since: float) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM plans WHERE symbol = ? AND planned_at >= ?",
                               (symbol, since)).fetchone()
        return int(row[0])

    def first_report(self, leg_id: str, status: str, at: float) -> bool:
        """True the first time a leg is reported with this status (the executor may repeat a report after its
        own restart; an 'unknown' leg may later be reported 'filled', which is news)."""
        with self.atomic():
            if self._db.execute("SELECT 1 FROM reports WHERE leg_id = ? AND status = ?", (leg_id, status)).fetchone():
                return False
            self._db.execute("DELETE FROM reports WHERE seen_at < ?", (at - REPORTS_KEPT_S,))
            self._db.execute("INSERT INTO reports (leg_id, status, seen_at) VALUES (?, ?, ?)", (leg_id, status, at))
        return True

    def record_fill(self, leg_id: str, symbol: str, ticket: int | None, at: float) -> bool:
        """Count a filled leg once; False if this leg was counted before (a repeated report)."""
        with self.atomic():
            if self._db.execute("SELECT 1 FROM fills WHERE leg_id = ?", (leg_id,)).fetchone():
                return False
            self._db.execute("DELETE FROM fills WHERE filled_at < ?", (at - KEPT_S,))
            self._db.execute("INSERT INTO fills (leg_id, symbol, filled_at) VALUES (?, ?, ?)", (leg_id, symbol, at))
            if ticket is not None:  # a reconciliation may have listed this position already
                self._db.execute("DELETE FROM positions WHERE symbol = ? AND ticket = ?", (symbol, ticket))
            self._db.execute("INSERT OR REPLACE INTO positions (key, symbol, ticket, opened_at) VALUES (?, ?, ?, ?)",
                             (leg_id, symbol, ticket, at))
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
        with self.atomic():
            cursor = self._db.execute("DELETE FROM positions WHERE symbol = ? AND ticket = ?", (symbol, ticket))
            if cursor.rowcount == 0:
                cursor = self._db.execute(
                    "DELETE FROM positions WHERE key = (SELECT key FROM positions WHERE symbol = ? "
                    "ORDER BY opened_at, key LIMIT 1)", (symbol,))
        return cursor.rowcount > 0

    def replace_positions(self, symbol: str, tickets: dict[int, float]) -> None:
        """Make the broker's list (ticket -> open time) the truth for ``symbol``."""
        with self.atomic():
            known = {row[0] for row in self._db.execute(
                "SELECT ticket FROM positions WHERE symbol = ? AND ticket IS NOT NULL", (symbol,))}
            self._db.execute("DELETE FROM positions WHERE symbol = ? AND (ticket IS NULL OR ticket NOT IN "
                             f"({','.join('?' * len(tickets))}))", (symbol, *tickets))
            for ticket, opened_at in tickets.items():
                if ticket not in known:
                    self._db.execute("INSERT OR REPLACE INTO positions (key, symbol, ticket, opened_at) "
                                     "VALUES (?, ?, ?, ?)", (f"ticket:{ticket}", symbol, ticket, opened_at))

    # ------------------------------------------------------------------ our exit deals (realised P&L)

    def record_deal(self, ticket: int, symbol: str, day: str, net: float) -> bool:
        """Count an exit deal of ours once; False if this ticket was counted before."""
        with self.atomic():
            if self._db.execute("SELECT 1 FROM deals WHERE ticket = ?", (ticket,)).fetchone():
                return False
            self._db.execute("INSERT INTO deals (ticket, symbol, day, net) VALUES (?, ?, ?, ?)",
                             (ticket, symbol, day, net))
        return True

    def realised(self, day: str) -> float:
        """Sum of our counted exit deals of ``day`` (account currency)."""
        row = self._db.execute("SELECT COALESCE(SUM(net), 0) FROM deals WHERE day = ?", (day,)).fetchone()
        return float(row[0])

    def forget_deals_before(self, day: str) -> None:
        """Drop deals of days before ``day`` except the previous few (ISO dates sort as text)."""
        self._db.execute("DELETE FROM deals WHERE day < date(?, '-7 days')", (day,))

    # ------------------------------------------------------------------ execution samples

    def add_sample(self, symbol: str, latency_ms: float, slippage_points: float, failed: bool, keep: int) -> None:
        """Append one execution sample and keep only the newest ``keep`` of the symbol."""
        window = self._window(symbol)
        with self.atomic():
            cursor = self._db.execute("INSERT INTO exec_samples (symbol, latency_ms, slippage_points, failed) "
                                      "VALUES (?, ?, ?, ?)", (symbol, latency_ms, slippage_points, int(failed)))
            window.append((int(cursor.lastrowid or 0), latency_ms, slippage_points, failed))
            if len(window) > keep:
                while len(window) > keep:
                    oldest = window.popleft()[0]
                self._db.execute("DELETE FROM exec_samples WHERE symbol = ? AND id <= ?", (symbol, oldest))

    def samples(self, symbol: str) -> list[tuple[float, float, bool]]:
        """(latency ms, adverse slippage points, failed) of the symbol's window, oldest first."""
        return [(latency, slippage, failed) for _, latency, slippage, failed in self._window(symbol)]

    def _window(self, symbol: str) -> deque[tuple[int, float, float, bool]]:
        window = self._windows.get(symbol)
        if window is None:
            rows = self._db.execute("SELECT id, latency_ms, slippage_points, failed FROM exec_samples "
                                    "WHERE symbol = ? ORDER BY id", (symbol,)).fetchall()
            window = deque((int(i), float(latency), float(slippage), bool(failed))
                           for i, latency, slippage, failed in rows)
            self._windows[symbol] = window
        return window

    def clear_samples(self, symbol: str) -> None:
        self._db.execute("DELETE FROM exec_samples WHERE symbol = ?", (symbol,))
        self._windows[symbol] = deque()
