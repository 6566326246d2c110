import sys

from services.telegram.runner import add_arguments, serve
from shared.service import run_service

sys.exit(run_service("telegram", serve, add_arguments=add_arguments))
