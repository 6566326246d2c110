"""strategy_xau: the shared strategy runner with gold's configuration and rules."""

from services.strategy_xau.core import XauStrategy
from shared.strategy.runner import strategy_server

serve = strategy_server("strategy_xau", "XAUUSDm", XauStrategy)
