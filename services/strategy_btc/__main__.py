import sys

from services.strategy_btc.runner import serve
from shared.service import run_service

sys.exit(run_service("strategy_btc", serve))
