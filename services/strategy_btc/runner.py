"""strategy_btc: the shared strategy runner with bitcoin's configuration and rules."""

from services.strategy_btc.core import BtcStrategy
from shared.strategy.runner import strategy_server

serve = strategy_server("strategy_btc", "BTCUSDm", BtcStrategy)
