"""All classic indicators of one symbol and timeframe, updated together from each closed bar.

A strategy holds one ``IndicatorSet`` per timeframe (M1, M5, M15), warms it from history with
``warm_up`` and then calls ``update`` on every closed bar; ``snapshot()`` gives an immutable copy of
the current values to decide on (and to log or test against).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy.typing as npt

from shared.indicators._checks import as_series, check_multiple, check_period, same_length
from shared.indicators.batch import clean_volume
from shared.indicators.incremental import (
    AdxState,
    AtrState,
    EmaState,
    MacdState,
    RsiState,
)
from shared.indicators.windowed import BollingerState, ZVolumeState

_INF = math.inf


@dataclass(frozen=True, slots=True)
class IndicatorConfig:
    """Periods of the classic indicators; the defaults are the ones both strategies use."""

    ema_short: int = 9
    ema_mid: int = 21
    ema_long: int = 50
    ema_very_long: int = 200
    atr_period: int = 14
    rsi_period: int = 14
    adx_period: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    bb_period: int = 20
    bb_nbdev: float = 2.0
    zvolume_lookback: int = 80

    def __post_init__(self) -> None:
        for field in fields(self):
            if field.name != "bb_nbdev":
                check_period(field.name, getattr(self, field.name))
        check_multiple("bb_nbdev", self.bb_nbdev)
        emas = (self.ema_short, self.ema_mid, self.ema_long, self.ema_very_long)
        if not emas[0] < emas[1] < emas[2] < emas[3]:
            raise ValueError(
                f"EMA periods must grow: ema_short < ema_mid < ema_long < ema_very_long, got {emas}; "
                "a swapped pair is the usual cause"
            )
        if self.macd_fast >= self.macd_slow:
            raise ValueError(
                f"macd_fast must be < macd_slow, got {self.macd_fast} and {self.macd_slow}; "
                "swap them or lower macd_fast"
            )

    @property
    def warmup_bars(self) -> int:
        """Bars needed before every indicator has a value (``IndicatorSet.ready``)."""
        lookbacks = (
            self.ema_short - 1,
            self.ema_mid - 1,
            self.ema_long - 1,
            self.ema_very_long - 1,
            self.atr_period,
            self.rsi_period,
            2 * self.adx_period - 1,
            self.macd_slow + self.macd_signal - 2,
            self.bb_period - 1,
            self.zvolume_lookback - 1,
        )
        return max(lookbacks) + 1


@dataclass(frozen=True, slots=True)
class IndicatorSnapshot:
    """The indicator values after bar number ``bars``; NaN where an indicator is still warming up."""

    bars: int
    ready: bool
    ema_short: float
    ema_mid: float
    ema_long: float
    ema_very_long: float
    atr: float
    rsi: float
    adx: float
    plus_di: float
    minus_di: float
    macd: float
    macd_signal: float
    macd_hist: float
    bb_upper: float
    bb_middle: float
    bb_lower: float
    bb_width: float
    zvolume: float


class IndicatorSet:
    """EMA x4, ATR, RSI, ADX/+DI/-DI, MACD, Bollinger and Z-volume, updated from one OHLCV bar.

    The states are exposed read-only by name (``ema_short``, ``atr``, ...) for their ``value``;
    calling their ``update`` directly would put them out of step with the rest.
    """

    __slots__ = (
        "_adx", "_atr", "_bars", "_bollinger", "_config", "_ema_long", "_ema_mid", "_ema_short",
        "_ema_very_long", "_macd", "_rsi", "_warmup", "_zvolume",
    )  # fmt: skip

    def __init__(self, config: IndicatorConfig | None = None) -> None:
        cfg = self._config = config if config is not None else IndicatorConfig()
        self._ema_short = EmaState(cfg.ema_short)
        self._ema_mid = EmaState(cfg.ema_mid)
        self._ema_long = EmaState(cfg.ema_long)
        self._ema_very_long = EmaState(cfg.ema_very_long)
        self._atr = AtrState(cfg.atr_period)
        self._rsi = RsiState(cfg.rsi_period)
        self._adx = AdxState(cfg.adx_period)
        self._macd = MacdState(cfg.macd_fast, cfg.macd_slow, cfg.macd_signal)
        self._bollinger = BollingerState(cfg.bb_period, cfg.bb_nbdev)
        self._zvolume = ZVolumeState(cfg.zvolume_lookback)
        self._warmup = cfg.warmup_bars
        self._bars = 0

    def update(self, open_: float, high: float, low: float, close: float, volume: float) -> None:
        """Add one closed bar. Prices must be finite, positive and consistent (low <= open, close
        <= high) and volume not negative, else ValueError and nothing is updated. Volume may be
        missing (NaN counts as 0)."""
        if not (0.0 < low <= close <= high < _INF and low <= open_ <= high) or volume < 0.0:
            raise ValueError(
                f"bad bar after {self._bars} bars: open={open_!r} high={high!r} low={low!r} "
                f"close={close!r} volume={volume!r}; need finite prices with 0 < low <= open, "
                "close <= high, and volume >= 0 or NaN"
            )
        self._ema_short.update(close)
        self._ema_mid.update(close)
        self._ema_long.update(close)
        self._ema_very_long.update(close)
        self._atr.update(high, low, close)
        self._rsi.update(close)
        self._adx.update(high, low, close)
        self._macd.update(close)
        self._bollinger.update(close)
        self._zvolume.update(volume)
        self._bars += 1

    def warm_up(
        self,
        open_: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
    ) -> None:
        """Feed history, oldest bar first (e.g. the bars fetched at startup)."""
        columns = [
            as_series(name, values)
            for name, values in (("open", open_), ("high", high), ("low", low), ("close", close))
        ]
        vol = clean_volume(volume)
        same_length(open=columns[0], high=columns[1], low=columns[2], close=columns[3], volume=vol)
        for o, h, lo, c, v in zip(*(c.tolist() for c in columns), vol.tolist(), strict=True):
            self.update(o, h, lo, c, v)

    def snapshot(self) -> IndicatorSnapshot:
        """An immutable copy of the current values."""
        adx, plus_di, minus_di = self._adx.value
        macd, signal, hist = self._macd.value
        upper, middle, lower, width = self._bollinger.value
        return IndicatorSnapshot(
            bars=self._bars,
            ready=self.ready,
            ema_short=self._ema_short.value,
            ema_mid=self._ema_mid.value,
            ema_long=self._ema_long.value,
            ema_very_long=self._ema_very_long.value,
            atr=self._atr.value,
            rsi=self._rsi.value,
            adx=adx,
            plus_di=plus_di,
            minus_di=minus_di,
            macd=macd,
            macd_signal=signal,
            macd_hist=hist,
            bb_upper=upper,
            bb_middle=middle,
            bb_lower=lower,
            bb_width=width,
            zvolume=self._zvolume.value,
        )

    @property
    def config(self) -> IndicatorConfig:
        """The periods this set was built with."""
        return self._config

    @property
    def bars(self) -> int:
        """Bars added so far."""
        return self._bars

    @property
    def ready(self) -> bool:
        """True once every indicator has a value (after ``config.warmup_bars`` bars)."""
        return self._bars >= self._warmup

    @property
    def ema_short(self) -> EmaState:
        """The short EMA (default 9)."""
        return self._ema_short

    @property
    def ema_mid(self) -> EmaState:
        """The mid EMA (default 21)."""
        return self._ema_mid

    @property
    def ema_long(self) -> EmaState:
        """The long EMA (default 50)."""
        return self._ema_long

    @property
    def ema_very_long(self) -> EmaState:
        """The very long EMA (default 200)."""
        return self._ema_very_long

    @property
    def atr(self) -> AtrState:
        """Wilder's ATR."""
        return self._atr

    @property
    def rsi(self) -> RsiState:
        """Wilder's RSI."""
        return self._rsi

    @property
    def adx(self) -> AdxState:
        """ADX with +DI/-DI."""
        return self._adx

    @property
    def macd(self) -> MacdState:
        """MACD line, signal and histogram."""
        return self._macd

    @property
    def bollinger(self) -> BollingerState:
        """Bollinger bands and width."""
        return self._bollinger

    @property
    def zvolume(self) -> ZVolumeState:
        """Z-score of volume."""
        return self._zvolume
