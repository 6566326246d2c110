import sys

from services.strategy_xau.runner import serve
from shared.service import run_service

sys.exit(run_service("strategy_xau", serve))
