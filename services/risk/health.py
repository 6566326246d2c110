"""Data freshness and the operators' health line: what risk tells about the gateway's data.

Freshness is the gateway's word, taken only while the gateway is heard: its latest heartbeat must be
recent on the injected clock (wall time, since a silent gateway moves no market time), connected, and
must say the symbol is ok. The health line is the one the operators already know (``ok_xau``,
``reason_xau``, ..., ``q``) with the regimes and the switch appended.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from shared.messages import GatewayHeartbeat, Regime

HEARD_SERVICES = ("gateway_mt5", "executor", "strategy_xau", "strategy_btc", "telegram")
GATEWAY_SILENT_BEATS = 5  # heartbeats missed (injected clock) before the gateway counts as silent


def health_key(symbol: str) -> str:
    """'xau' / 'btc' for the health line by the symbol's prefix; any other symbol its lower-case name."""
    for prefix in ("xau", "btc"):
        if symbol.lower().startswith(prefix):
            return prefix
    return symbol.lower()


def data_status(beat: GatewayHeartbeat | None, beat_age_s: float, interval_s: float, symbol: str) -> tuple[bool, str]:
    """Whether the symbol's data is fresh enough to trade on, and why not ('ok' when it is)."""
    if beat is None:
        return False, "no_heartbeat"
    if beat_age_s > GATEWAY_SILENT_BEATS * interval_s:
        return False, "gateway_silent"
    if not beat.connected:
        return False, "broker_disconnected"
    health = beat.symbols.get(symbol)
    if health is None:
        return False, "not_in_heartbeat"
    return health.ok, health.reason


def _one_word(text: str) -> str:
    """A reason as one token for the space-separated health line."""
    return re.sub(r"\s+", "_", text.strip()) or "ok"


def heard_ages(heard: Mapping[str, float], now: float) -> dict[str, float | None]:
    """Seconds since each service's latest sign of life (gateway heartbeat, ExecutorStatus, ServiceHeartbeat);
    None for one never heard. Every expected service is listed, then any other that spoke."""
    names = [*HEARD_SERVICES, *sorted(set(heard) - set(HEARD_SERVICES))]
    return {name: (max(0.0, now - heard[name]) if name in heard else None) for name in names}


def format_health_line(wall: float, data: Mapping[str, tuple[bool, str]], queue_len: int | None,
                       regimes: Mapping[str, Regime], trading: bool, *,
                       ages: Mapping[str, float | None] | None = None) -> str:
    """'2025-07-09T17:00:00Z ok_xau=1 ok_btc=1 reason_xau=ok reason_btc=ok q=0 regime_xau=A regime_btc=A
    trading=on age_gateway_mt5=0.4 ... age_telegram=-' (age: seconds since the service was last heard; '-'
    never)."""
    parts = [datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
    parts += [f"ok_{health_key(symbol)}={int(ok)}" for symbol, (ok, _) in data.items()]
    parts += [f"reason_{health_key(symbol)}={_one_word(reason)}" for symbol, (_, reason) in data.items()]
    parts.append(f"q={-1 if queue_len is None else queue_len}")
    parts += [f"regime_{health_key(symbol)}={regime}" for symbol, regime in regimes.items()]
    parts.append(f"trading={'on' if trading else 'off'}")
    parts += [f"age_{name}={'-' if age is None else f'{age:.1f}'}" for name, age in (ages or {}).items()]
    return " ".join(parts)
