"""PUB/SUB topic names. ZeroMQ filters by prefix, so 'bar.XAUUSDm' subscribes to all its timeframes."""

from __future__ import annotations

ACCOUNT = "account"
DEAL = "deal"
HEARTBEAT = "heartbeat"

RISK_STATE = "risk.state"          # RiskState, at a fixed cadence
RISK_REGIME = "risk.regime"        # RegimeChanged
RISK_EXECUTION = "risk.exec"       # ExecutionReport, forwarded by risk for observers
RISK_REJECTED = "risk.rejected"    # SignalRejected
RISK_DAY = "risk.day"              # DayStarted
RISK_LOCK = "risk.lock"            # TradingLocked
RISK_ALL = "risk."


def bar(symbol: str, timeframe: str = "") -> str:
    """'bar.XAUUSDm.M1', or the prefix 'bar.XAUUSDm' for every timeframe of the symbol."""
    return f"bar.{symbol}.{timeframe}" if timeframe else f"bar.{symbol}"


def tick(symbol: str) -> str:
    return f"tick.{symbol}"
