import sys

from services.gateway_mt5.runner import check_gateway, serve
from shared.service import run_service

sys.exit(run_service("gateway_mt5", serve, check=check_gateway))
