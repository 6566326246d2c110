"""``python -m services.risk``: the risk process (supervisord runs it)."""

import sys

from services.risk.runner import serve
from shared.service import run_service

sys.exit(run_service("risk", serve))
