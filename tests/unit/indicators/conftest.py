"""The shipped M1 history (gold and bitcoin) as float64 arrays, loaded once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

DATA_DIR = Path(__file__).resolve().parents[3] / "data"
FILES = {
    "XAUUSDm": "XAUUSDm_M1_2025-07-09_2025-08-12.csv.gz",
    "BTCUSDm": "BTCUSDm_M1_2025-07-09_2025-08-12.csv.gz",
}
ROWS = {"XAUUSDm": 32_520, "BTCUSDm": 48_471}


@dataclass(frozen=True)
class Bars:
    """One symbol's bars, column by column (volume NaN where the file has none)."""

    symbol: str
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.close)

    def rows(self) -> Iterator[tuple[float, float, float, float, float]]:
        """(open, high, low, close, volume) per bar as Python floats, as a live feed gives them."""
        columns = (self.open, self.high, self.low, self.close, self.volume)
        return zip(*(c.tolist() for c in columns), strict=True)


@cache
def load_bars(symbol: str) -> Bars:
    """Read ``data/<symbol>_M1_...csv.gz`` (header time_utc,open,high,low,close,volume)."""
    frame = pd.read_csv(DATA_DIR / FILES[symbol], dtype={"volume": np.float64})
    columns = {name: frame[name].to_numpy(np.float64) for name in ("open", "high", "low", "close", "volume")}
    return Bars(symbol=symbol, **columns)


@pytest.fixture(params=sorted(FILES), scope="session")
def bars(request: pytest.FixtureRequest) -> Bars:
    """Each shipped symbol in turn."""
    symbol: str = request.param
    return load_bars(symbol)
