"""Small builders for the backtest tests: M1 files in the shipped layout and a copy of the configs."""

from __future__ import annotations

import csv
import gzip
import shutil
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = {"XAUUSDm": "XAUUSDm_M1_2025-07-09_2025-08-12.csv.gz", "BTCUSDm": "BTCUSDm_M1_2025-07-09_2025-08-12.csv.gz"}
HEADER = "time_utc,open,high,low,close,volume"
Row = tuple[int, float, float, float, float]  # open time (epoch s), open, high, low, close


def stamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def write_m1(path: Path, rows: Iterable[Row], volume: int = 1) -> Path:
    """A plain CSV in the shipped layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER] + [f"{stamp(t)},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{volume}" for t, o, h, lo, c in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def copy_configs(root: Path, edits: dict[str, Sequence[tuple[str, str]]] | None = None) -> Path:
    """configs/ copied under ``root`` with text replacements per file; returns the system.toml path."""
    configs = root / "configs"
    shutil.copytree(ROOT / "configs", configs)
    for name, replacements in (edits or {}).items():
        path = configs / name
        text = path.read_text()
        for old, new in replacements:
            assert old in text, f"{name} has no {old!r}"
            text = text.replace(old, new)
        path.write_text(text)
    return configs / "system.toml"


def shipped_slice(data_dir: Path, until: str) -> Path:
    """The shipped files cut before ``until`` ('YYYY-MM-DD HH:MM:SS'), under their own names."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED.values():
        with gzip.open(ROOT / "data" / name, "rt") as source:
            lines = [line for line in source if line.startswith("time") or line[:19] < until]
        with gzip.open(data_dir / name, "wt") as target:
            target.writelines(lines)
    return data_dir


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))
