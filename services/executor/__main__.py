import sys

from services.executor.runner import serve
from shared.service import run_service

sys.exit(run_service("executor", serve))
