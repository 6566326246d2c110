"""One replayed symbol: its M1 columns, per-bar spreads, M5/M15 history, schedule and replay cursor."""

from __future__ import annotations

from array import array
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from services.gateway_mt5.aggregate import BarArrays, aggregate, bar_id
from services.gateway_mt5.hours import MarketSchedule
from services.gateway_mt5.sim.config import SymbolConfig
from services.gateway_mt5.sim.history import HistoryError, M1History
from services.gateway_mt5.sim.ledger import PATH_OFFSETS
from services.gateway_mt5.sim.trusted import construct
from shared.messages import TIMEFRAME_MINUTES, Bar, SymbolSpec, Tick, Timeframe

CLOSE_OFFSET = PATH_OFFSETS[-1]


def _spreads(config: SymbolConfig, history: M1History) -> np.ndarray:
    spread = config.spread
    count = len(history)
    if spread.mode == "fixed":
        return np.full(count, spread.points, dtype=np.int64)
    if spread.mode == "random":
        rng = np.random.default_rng(spread.seed)
        return rng.integers(spread.min_points, spread.max_points + 1, size=count, dtype=np.int64)
    if history.spread is None:
        raise HistoryError(
            f"{history.source}: line 1: spread mode 'data' needs an MT5 export with a <SPREAD> column; "
            "use mode 'fixed' or 'random' for this file"
        )
    return history.spread.astype(np.int64)


def int_column(values: npt.NDArray[Any]) -> array[int]:
    """A numpy column as a stdlib int64 ``array`` for the replay loop: indexing it costs about what a list's
    does, unlike numpy's scalar access, at 8 bytes an element where a list of large Python ints costs about 36
    (with ``float_column``: a month of both symbols takes about 20 MB less of the gateway's memory)."""
    return array("q", values.astype(np.int64).tobytes())


def float_column(values: npt.NDArray[Any]) -> array[float]:
    """A numpy column as a stdlib float64 ``array`` for the replay loop (see ``int_column``)."""
    return array("d", values.astype(np.float64).tobytes())


class Feed:
    """Market data of one symbol as the replay loop needs it (stdlib arrays) and history needs it (numpy)."""

    def __init__(self, index: int, name: str, config: SymbolConfig, history: M1History) -> None:
        spec = config.spec
        self.index = index
        self.name = name
        self.config = config
        self.digits = spec.digits
        self.point = spec.point
        self.schedule = MarketSchedule(config.hours)
        self.m1 = BarArrays(
            time=history.time,
            open=np.round(history.open, spec.digits),
            high=np.round(history.high, spec.digits),
            low=np.round(history.low, spec.digits),
            close=np.round(history.close, spec.digits),
            tick_volume=history.tick_volume,
            spread=_spreads(config, history),
        )
        self._check_hours(history)
        self.higher = {tf: aggregate(self.m1, TIMEFRAME_MINUTES[tf]) for tf in ("M5", "M15")}
        self.t = int_column(self.m1.time)
        self.o = float_column(self.m1.open)
        self.h = float_column(self.m1.high)
        self.lo = float_column(self.m1.low)
        self.c = float_column(self.m1.close)
        self.v = int_column(self.m1.tick_volume)
        self.s = int_column(self.m1.spread)
        self.cursor = -1
        """Index of the last replayed bar; the current quote is its close."""
        self.delivered_msc = -1
        self.held: list[Bar] = []
        """Bars closed during a stale-feed window, released when it ends."""

    def _check_hours(self, history: M1History) -> None:
        if self.schedule.always_open:
            return
        for row, t in enumerate(self.m1.time.tolist()):
            if not self.schedule.is_open(t):
                when = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M (%a)")
                raise HistoryError(
                    f"{history.source}: bar {row + 1} at {when} UTC falls while the configured market hours "
                    f"of {self.name} say closed: fix [sim.symbols.{self.name}.hours] or the data"
                )

    def position_at(self, t: float) -> int:
        """Index of the last bar closed at market time ``t`` (-1 if none)."""
        return int(np.searchsorted(self.m1.time + 60, t, side="right")) - 1

    def quote(self) -> tuple[float, float]:
        """(bid, ask) now: the close of the last replayed bar and its spread; (0, 0) before any bar."""
        i = self.cursor
        if i < 0:
            return 0.0, 0.0
        bid = self.c[i]
        return bid, round(bid + self.s[i] * self.point, self.digits)

    def spread_points(self) -> int:
        """The current spread in points (the configured one before the first bar)."""
        return self.s[self.cursor] if self.cursor >= 0 else self.s[0]

    def tick(self) -> Tick | None:
        """The current quote as a Tick (the close tick of the last replayed bar)."""
        i = self.cursor
        if i < 0:
            return None
        bid, ask = self.quote()
        msc = (self.t[i] + CLOSE_OFFSET) * 1000
        return construct(Tick, {
            "v": 1, "id": f"{self.name}-tick-{msc}", "ts": msc / 1000, "type": "tick", "symbol": self.name,
            "time_msc": msc, "bid": bid, "ask": ask,
        })

    def symbol_spec(self) -> SymbolSpec:
        """symbol_info() of this symbol with the current spread."""
        spec = self.config.spec
        return SymbolSpec(
            name=self.name, digits=spec.digits, point=spec.point, trade_tick_size=spec.trade_tick_size,
            trade_tick_value=spec.trade_tick_value, trade_contract_size=spec.trade_contract_size,
            volume_min=spec.volume_min, volume_max=spec.volume_max, volume_step=spec.volume_step,
            trade_stops_level=spec.trade_stops_level, trade_freeze_level=spec.trade_freeze_level,
            trade_mode=spec.trade_mode, filling_mode=spec.filling_mode, spread=self.spread_points(),
        )

    def history(self, timeframe: Timeframe, count: int, visible: float) -> list[Bar]:
        """The last ``count`` bars of ``timeframe`` closed at or before ``visible``, oldest first."""
        arrays = self.m1 if timeframe == "M1" else self.higher[timeframe]
        size = TIMEFRAME_MINUTES[timeframe] * 60
        end = int(np.searchsorted(arrays.time, visible - size, side="right"))
        start = max(0, end - count)
        name = self.name
        columns = zip(
            arrays.time[start:end].tolist(), arrays.open[start:end].tolist(), arrays.high[start:end].tolist(),
            arrays.low[start:end].tolist(), arrays.close[start:end].tolist(),
            arrays.tick_volume[start:end].tolist(), arrays.spread[start:end].tolist(), strict=True,
        )
        return [
            construct(Bar, {
                "v": 1, "id": bar_id(name, timeframe, t), "ts": float(t + size), "type": "bar",
                "symbol": name, "timeframe": timeframe, "time": t, "open": o, "high": h, "low": lo, "close": c,
                "tick_volume": v, "spread": s,
            })
            for t, o, h, lo, c, v, s in columns
        ]
