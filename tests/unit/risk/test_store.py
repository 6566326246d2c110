"""The SQLite store: one transaction per message, counted-once records, and files of the first version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.risk.store import DayAnchors, RiskStore, SymbolBook

FIRST_VERSION_SCHEMA = """
CREATE TABLE switch (id INTEGER PRIMARY KEY CHECK (id = 1), enabled INTEGER NOT NULL, by TEXT NOT NULL);
CREATE TABLE day (id INTEGER PRIMARY KEY CHECK (id = 1), day TEXT NOT NULL, start_balance REAL, peak_equity REAL);
CREATE TABLE books (symbol TEXT PRIMARY KEY, regime TEXT NOT NULL, cooldown_until REAL NOT NULL,
    last_plan_bar_time INTEGER NOT NULL, signals_today INTEGER NOT NULL);
CREATE TABLE fills (leg_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, filled_at REAL NOT NULL);
CREATE TABLE positions (key TEXT PRIMARY KEY, symbol TEXT NOT NULL, ticket INTEGER, opened_at REAL NOT NULL);
INSERT INTO switch VALUES (1, 0, 'owner');
INSERT INTO day VALUES (1, '2025-07-09', 4000.0, 4100.0);
INSERT INTO books VALUES ('XAUUSDm', 'C', 123.0, 456, 7);
"""


def test_a_file_of_the_first_version_opens_with_its_state(tmp_path: Path) -> None:
    path = tmp_path / "risk.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(FIRST_VERSION_SCHEMA)
    store = RiskStore(path)
    assert store.load_switch() == (False, "owner")
    assert store.load_day() == DayAnchors("2025-07-09", 4000.0, 4100.0, announced=True)  # no late greeting
    assert store.load_books() == {"XAUUSDm": SymbolBook("C", 123.0, 456, 7)}
    store.save_book("XAUUSDm", SymbolBook("B", exec_pause_reason="why"))
    store.close()
    assert RiskStore(path).load_books()["XAUUSDm"] == SymbolBook("B", exec_pause_reason="why")


def test_a_transaction_keeps_all_or_nothing(tmp_path: Path) -> None:
    store = RiskStore(tmp_path / "risk.sqlite")
    store.save_book("XAUUSDm", SymbolBook("C"))
    with pytest.raises(RuntimeError), store.atomic():
        store.save_day(DayAnchors("2025-07-10", 4000.0))
        with store.atomic():  # a nested one joins the outer transaction
            store.save_book("XAUUSDm", SymbolBook("A"))
        raise RuntimeError("killed half-way")
    assert store.load_day() is None and store.load_books()["XAUUSDm"].regime == "C"
    with store.atomic():
        store.save_day(DayAnchors("2025-07-10", 4000.0))
        store.save_book("XAUUSDm", SymbolBook("A"))
    reopened = RiskStore(tmp_path / "risk.sqlite")
    assert reopened.load_day() == DayAnchors("2025-07-10", 4000.0)
    assert reopened.load_books()["XAUUSDm"].regime == "A"


def test_deals_reports_and_samples_are_counted_once_and_kept_bounded(tmp_path: Path) -> None:
    store = RiskStore(tmp_path / "risk.sqlite")
    assert store.record_deal(11, "XAUUSDm", "2025-07-09", -5.0)
    assert not store.record_deal(11, "XAUUSDm", "2025-07-09", -5.0)
    store.record_deal(12, "BTCUSDm", "2025-07-09", 2.5)
    store.record_deal(13, "BTCUSDm", "2025-07-01", 100.0)
    assert store.realised("2025-07-09") == -2.5
    store.forget_deals_before("2025-07-09")  # a week is kept
    assert store.realised("2025-07-01") == 0.0 and store.realised("2025-07-09") == -2.5
    assert store.first_report("L-1", "unknown", 1.0) and store.first_report("L-1", "filled", 2.0)
    assert not store.first_report("L-1", "filled", 3.0)
    for n in range(7):
        store.add_sample("XAUUSDm", float(n), 0.0, False, keep=5)
    store.add_sample("BTCUSDm", 1.0, 2.0, True, keep=5)
    assert [latency for latency, _, _ in store.samples("XAUUSDm")] == [2.0, 3.0, 4.0, 5.0, 6.0]
    store.clear_samples("XAUUSDm")
    assert store.samples("XAUUSDm") == [] and store.samples("BTCUSDm") == [(1.0, 2.0, True)]


def test_the_execution_window_kept_in_memory_matches_the_file(tmp_path: Path) -> None:
    """The window is read once and then kept in step with exec_samples: a reopened store (a restart) reads
    the same window, a smaller ``keep`` trims it, and a rolled-back transaction leaves nothing of its sample."""
    path = tmp_path / "risk.sqlite"
    store = RiskStore(path)
    for n in range(8):
        store.add_sample("XAUUSDm", float(n), float(n) / 2, n % 3 == 0, keep=6)
    expected = [(float(n), float(n) / 2, n % 3 == 0) for n in range(2, 8)]
    assert store.samples("XAUUSDm") == expected
    with pytest.raises(RuntimeError), store.atomic():
        store.add_sample("XAUUSDm", 99.0, 0.0, False, keep=6)
        raise RuntimeError("the message failed halfway")
    assert store.samples("XAUUSDm") == expected
    store.close()
    reopened = RiskStore(path)
    assert reopened.samples("XAUUSDm") == expected
    reopened.add_sample("XAUUSDm", 8.0, 4.0, False, keep=3)
    assert reopened.samples("XAUUSDm") == [(6.0, 3.0, True), (7.0, 3.5, False), (8.0, 4.0, False)]
    reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM exec_samples WHERE symbol = 'XAUUSDm'").fetchone() == (3,)
