"""The one indicator library both strategies use.

Two forms that agree bar for bar (tested to 1e-9 on the shipped gold and bitcoin history):

- batch functions over float64 arrays (``batch``, ``structure``): warm-up and research, NaN while an
  indicator warms up, matching TA-Lib where TA-Lib has the indicator;
- incremental states with an O(1) ``update`` per closed bar (``incremental``, ``structure_live``),
  and ``IndicatorSet``, which keeps all classic indicators of one symbol and timeframe together.
"""

from shared.indicators.batch import (
    AdxSeries,
    BollingerSeries,
    MacdSeries,
    adx,
    atr,
    bollinger,
    ema,
    macd,
    rsi,
    true_range,
    zvolume,
)
from shared.indicators.incremental import (
    AdxState,
    AtrState,
    EmaState,
    MacdState,
    RsiState,
)
from shared.indicators.indicator_set import IndicatorConfig, IndicatorSet, IndicatorSnapshot
from shared.indicators.structure import (
    BITCOIN_ROUND_STEP,
    GOLD_ROUND_STEP,
    SweepSeries,
    ZoneSeries,
    divergences,
    fair_value_gaps,
    liquidity_sweeps,
    macd_divergences,
    near_round_number,
    order_blocks,
    pivots,
    rsi_divergences,
)
from shared.indicators.structure_live import (
    DivergenceDetector,
    FvgDetector,
    OrderBlockDetector,
    Sweep,
    SweepDetector,
    Zone,
    is_near_round_number,
)
from shared.indicators.windowed import BollingerState, ZVolumeState

__all__ = [
    "BITCOIN_ROUND_STEP",
    "GOLD_ROUND_STEP",
    "AdxSeries",
    "AdxState",
    "AtrState",
    "BollingerSeries",
    "BollingerState",
    "DivergenceDetector",
    "EmaState",
    "FvgDetector",
    "IndicatorConfig",
    "IndicatorSet",
    "IndicatorSnapshot",
    "MacdSeries",
    "MacdState",
    "OrderBlockDetector",
    "RsiState",
    "Sweep",
    "SweepDetector",
    "SweepSeries",
    "ZVolumeState",
    "Zone",
    "ZoneSeries",
    "adx",
    "atr",
    "bollinger",
    "divergences",
    "ema",
    "fair_value_gaps",
    "is_near_round_number",
    "liquidity_sweeps",
    "macd",
    "macd_divergences",
    "near_round_number",
    "order_blocks",
    "pivots",
    "rsi",
    "rsi_divergences",
    "true_range",
    "zvolume",
]
