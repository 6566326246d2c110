"""What the chaos test checks after the run, from the files the services leave (no running process needed).

- legs: the executor's journal (state/executor.sqlite) against the simulated broker's entry deals
  (state/sim_broker.sqlite, the leg id travels in the MT5 comment): every filled leg is exactly one
  entry deal, a rejected leg none, no entry deal of our magic without a leg (or an adoption), no leg
  left open;
- market hours and stale windows: every entry deal's market time against the symbol's configured hours
  and the injected stale windows (after the gateway's stale_after_s + one bar to notice them);
- risk's own timeline (the RiskState it published, market time): no filled plan made while the states
  risk published just before and just after it both said the symbol's regime was C, the switch off, or
  its data not ok (the plan's market time is in the executor's journal).
"""

from __future__ import annotations

import bisect
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.executor.legs import comment_is
from services.gateway_mt5.hours import MarketSchedule
from services.gateway_mt5.sim.config import SimConfig, epoch
from shared import mt5
from shared.messages import RiskState

MAX_GAP_S = 120.0
"""Market seconds between a plan and the risk states around it for them to say what risk saw."""


@dataclass
class Findings:
    """Counts and the violations found (each a line naming what and where)."""

    legs_filled: int = 0
    legs_rejected: int = 0
    entries: int = 0
    exits: int = 0
    violations: list[str] = field(default_factory=list)


def read_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on a SQLite file, opened read-only."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(db.execute(sql).fetchall())
    finally:
        db.close()


def check_legs(journal: Path, deals: list[dict[str, Any]], findings: Findings) -> None:
    """1:1 between the journal's legs and the broker's entry deals; nothing filled twice, nothing lost."""
    legs = read_rows(journal, "SELECT leg_id, state, ticket, magic FROM legs")
    adopted = {int(row[0]) for row in read_rows(journal, "SELECT ticket FROM adopted")}
    magics = {int(row[3]) for row in legs}
    entries = [d for d in deals if d["entry"] == mt5.DEAL_ENTRY_IN and d["magic"] in magics]
    findings.entries = len(entries)
    findings.exits = sum(1 for d in deals if d["entry"] == mt5.DEAL_ENTRY_OUT)
    claimed: dict[int, str] = {}
    for leg_id, state, ticket, _ in legs:
        matching = [d for d in entries if comment_is(d["comment"], leg_id)]
        if state == "filled":
            findings.legs_filled += 1
            if len(matching) != 1:
                findings.violations.append(f"leg {leg_id} filled in the journal, {len(matching)} entry deals")
            elif ticket != matching[0]["position_id"]:
                findings.violations.append(f"leg {leg_id}: journal ticket {ticket}, broker position "
                                           f"{matching[0]['position_id']}")
        elif state == "rejected":
            findings.legs_rejected += 1
            if matching:
                findings.violations.append(f"leg {leg_id} rejected in the journal, {len(matching)} entry deals")
        else:
            findings.violations.append(f"leg {leg_id} left {state!r} after the run")
        for deal in matching:
            if deal["position_id"] in claimed:
                findings.violations.append(f"position {deal['position_id']} claimed by legs "
                                           f"{claimed[deal['position_id']]} and {leg_id}")
            claimed[deal["position_id"]] = leg_id
    for deal in entries:
        if deal["position_id"] not in claimed and deal["position_id"] not in adopted:
            findings.violations.append(f"entry deal {deal['ticket']} ({deal['comment']!r}) matches no leg")


def check_market(sim: SimConfig, stale_after_s: float, deals: list[dict[str, Any]], findings: Findings) -> None:
    """No entry while the symbol's market was closed or its feed stale (the injected windows)."""
    schedules = {name: MarketSchedule(table.hours) for name, table in sim.symbols.items()}
    windows = [(w.symbol, epoch(w.start) + stale_after_s + 60.0, epoch(w.end)) for w in sim.faults.stale]
    for deal in deals:
        if deal["entry"] != mt5.DEAL_ENTRY_IN:
            continue
        t, symbol = float(deal["time"]), deal["symbol"]
        if not schedules[symbol].is_open(t):
            findings.violations.append(f"entry deal {deal['ticket']} on {symbol} at {t:.0f}: market closed")
        for name, start, end in windows:
            if (name is None or name == symbol) and start <= t < end:
                findings.violations.append(f"entry deal {deal['ticket']} on {symbol} at {t:.0f}: feed stale")


def blocked(state: RiskState, symbol: str) -> str | None:
    """Why risk said no order may open on ``symbol`` in this state, or None."""
    sym = state.symbols.get(symbol)
    if not state.trading_enabled:
        return "switch off"
    if sym is None:
        return None
    if sym.regime == "C":
        return "regime C"
    if not sym.data_ok:
        return f"data not ok ({sym.data_reason})"
    return None


def check_risk_timeline(states: list[RiskState], journal: Path, findings: Findings) -> int:
    """No plan filled that risk made while it said the symbol was blocked: the RiskState risk published
    just before the plan's market time and the one just after (each within MAX_GAP_S) both say blocked.
    Returns how many filled plans had states on both sides to compare with."""
    ordered = sorted(states, key=lambda s: s.ts)
    times = [s.ts for s in ordered]
    checked = 0
    rows = read_rows(journal, "SELECT DISTINCT p.plan_id, p.body FROM legs l JOIN plans p ON l.plan_id = p.plan_id "
                              "WHERE l.state = 'filled'")
    for plan_id, body in rows:
        plan = json.loads(body)
        at, symbol = float(plan["ts"]), plan["symbol"]
        k = bisect.bisect_left(times, at)
        before = ordered[k - 1] if k > 0 else None
        j = bisect.bisect_right(times, at)
        after = ordered[j] if j < len(ordered) else None
        if before is None or after is None or at - before.ts > MAX_GAP_S or after.ts - at > MAX_GAP_S:
            continue  # risk was not heard around it (restarting): nothing to compare with
        checked += 1
        reasons = (blocked(before, symbol), blocked(after, symbol))
        if reasons[0] and reasons[1]:
            findings.violations.append(f"plan {plan_id} on {symbol} at {at:.0f} filled while risk said "
                                       f"{reasons[0]} before it and {reasons[1]} after it")
    return checked
