import sys

from services.gateway_mt5.runner import precheck, serve
from shared.service import run_service

sys.exit(precheck(sys.argv[1:]) or run_service("gateway_mt5", serve))
