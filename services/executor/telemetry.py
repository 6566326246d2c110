"""Execution telemetry: slippage in points and in account currency, and Logs/order_execution.log.

Risk's execution-quality monitor and latency cooldown read the numbers from the ExecutionReports;
operators read the order log, one line per order (each leg's outcome, each close, each SL/TP modify),
``key=value`` so that a line greps and parses without a schema. The file has its own logger and handler
(``executor.orders``, not propagated), so it holds nothing but orders.
"""

from __future__ import annotations

import logging
import logging.handlers
import time
from pathlib import Path

from shared.logs import DATE_FORMAT, RedactSecrets
from shared.messages import Side, SymbolSpec

ORDER_LOGGER = "executor.orders"
ORDER_LOG_FILE = "order_execution.log"
order_log = logging.getLogger(ORDER_LOGGER)


def slippage(side: Side, requested: float, fill: float | None, spec: SymbolSpec | None,
             volume: float) -> tuple[float, float]:
    """(points, account currency) by which ``fill`` is worse than ``requested``; negative = better.

    Money: price difference / trade_tick_size * trade_tick_value * volume (MT5's tick value is per lot).
    """
    if fill is None or spec is None or requested <= 0:
        return 0.0, 0.0
    worse = fill - requested if side == "buy" else requested - fill
    points = round(worse / spec.point, 1)
    money = round(worse / spec.trade_tick_size * spec.trade_tick_value * volume, 4)
    return points, money


def order_line(**fields: object) -> str:
    """'kind=open leg=XAU1-1 ... text="10009 TRADE_RETCODE_DONE (request completed)"': one line per order."""
    parts = []
    for key, value in fields.items():
        if value is None:
            text = "-"
        elif isinstance(value, float):
            text = f"{value:.8f}".rstrip("0").rstrip(".") or "0"
        else:
            text = str(value)
        if not text or any(c.isspace() or c in '"=' for c in text):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


def log_order(**fields: object) -> None:
    order_log.info(order_line(**fields))


def setup_order_log(logs_dir: Path, secrets: list[str]) -> logging.Handler:
    """Send ``executor.orders`` to Logs/order_execution.log only (rotated by size, secrets redacted)."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(logs_dir / ORDER_LOG_FILE, maxBytes=20 * 1024 * 1024,
                                                   backupCount=5, encoding="utf-8")
    formatter = logging.Formatter("%(asctime)s.%(msecs)03dZ %(message)s", DATE_FORMAT)
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(RedactSecrets(secrets))
    order_log.addHandler(handler)
    order_log.setLevel(logging.INFO)
    order_log.propagate = False
    return handler
