"""Chaos: the whole system under the real supervisord while a seeded schedule SIGKILLs its services.

The simulated broker replays at high speed with faults injected (requotes, order_send answering None
when the order filled and when it did not, timeouts, IPC disconnect windows, stale-feed windows) and
keeps its trade server in state/sim_broker.sqlite across gateway restarts, as a real broker would. Every
few seconds one service, drawn from a seeded shuffle holding each of the six at least KILLS_EACH times,
gets SIGKILL; halfway through, the trading switch goes off for a while. Afterwards (chaos_checks.py):
legs 1:1 with the broker's entry deals, no entry while the market was closed, the feed stale or risk said
no, risk's regimes and day anchors unchanged by each restart, every service back and working again.

    make soak                                  # CHAOS_SECONDS=1800
    CHAOS_SECONDS=90 CHAOS_SEED=7 .venv/bin/pytest -q -s tests/system/test_chaos.py
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import zmq

from services.executor.reconcile import RECONCILED_MARKER
from services.gateway_mt5.runner import SIM_STATE_FILE, validate_backend_config
from services.gateway_mt5.sim.config import SimConfig
from services.gateway_mt5.sim.persist import read_deals, read_state
from shared import topics
from shared.bus import Requester, Subscriber
from shared.config import load_config
from shared.messages import Bar, ExecutionReport, RiskState, SetTrading
from shared.strategy.runner import LIVE_MARKER
from tests.fakes.telegram_api import FakeTelegramServer
from tests.support import wait_for
from tests.system.chaos_checks import Findings, check_legs, check_market, check_risk_timeline, read_rows
from tests.system.test_supervised_system import ROOT, SERVICES, TOKEN, RunningSystem, system_toml

pytestmark = pytest.mark.system

SEED = int(os.environ.get("CHAOS_SEED", "7"))
SECONDS = float(os.environ.get("CHAOS_SECONDS", "100"))
KILLS_EACH = 5
SPEED = 600.0
RESUME_LIMIT_S = 15.0
STRICTNESS = {"A": 0, "B": 1, "C": 2}
START = 1_752_472_800  # [sim] start of configs/system.toml: Monday 2025-07-14 06:00 UTC


def faults_toml(seed: int, market_s: float) -> str:
    """Seeded order_send faults, and a disconnect or a stale window every few market hours of the run."""
    rng = random.Random(seed)
    disconnects: list[str] = []
    stale: list[str] = []
    t = START + 2 * 3600
    while t < START + market_s:
        when = t + rng.randrange(0, 3600, 60)
        if len(disconnects) <= len(stale):
            disconnects.append(f"{{ start = {_utc(when)}, end = {_utc(when + rng.choice((120, 180, 300)))} }}")
        else:
            symbol = rng.choice(('"XAUUSDm"', '"BTCUSDm"', None))
            name = f"symbol = {symbol}, " if symbol else ""
            stale.append(f"{{ {name}start = {_utc(when)}, end = {_utc(when + rng.choice((1800, 2400)))} }}")
        t += 3 * 3600
    return "\n".join([
        "[sim.faults]", f"seed = {seed}", "requote = 0.08", "timeout = 0.04", "none_filled = 0.08",
        "none_not_filled = 0.08", f"disconnects = [{', '.join(disconnects)}]", f"stale = [{', '.join(stale)}]", "",
    ])


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))


@dataclass
class Observer:
    """What the test hears while it kills: risk's states, fills, and when each publisher spoke last."""

    risk: Subscriber
    market: Subscriber
    states: list[RiskState] = field(default_factory=list)
    fills: int = 0
    fill_walls: list[float] = field(default_factory=list)
    last_bar_wall: float = 0.0
    last_state_wall: float = 0.0
    btc_ok_wall: float = 0.0

    def drain(self) -> None:
        while (got := self.risk.receive()) is not None:
            if isinstance(got.message, RiskState):
                self.states.append(got.message)
                self.last_state_wall = time.monotonic()
                btc = got.message.symbols.get("BTCUSDm")
                if btc is not None and btc.data_ok:
                    self.btc_ok_wall = self.last_state_wall
            elif isinstance(got.message, ExecutionReport) and got.message.status == "filled":
                self.fills += 1
                self.fill_walls.append(time.monotonic())
        while (bar := self.market.receive()) is not None:
            if isinstance(bar.message, Bar):
                self.last_bar_wall = time.monotonic()


@dataclass
class Kill:
    service: str
    pid: int
    at: float
    states_before: int
    anchors: tuple[str, float | None, dict[str, str]] | None = None
    log_mark: int = 0  # see _log_mark
    back_s: float | None = None
    working_s: float | None = None
    bar_after: float | None = None


def start(root: Path) -> RunningSystem:
    telegram = FakeTelegramServer(token=TOKEN).start()
    configs = root / "configs"
    shutil.copytree(ROOT / "configs", configs)
    text = system_toml(root, telegram.base_url).replace("speed = 120.0", f"speed = {SPEED}")
    text = text.replace("state_interval_s = 1.0", "state_interval_s = 0.1")  # 60 market s at 600x
    (configs / "system.toml").write_text(text + "\n" + faults_toml(SEED, (SECONDS + 120) * SPEED))
    env = {**os.environ, "BOT_TOKEN": TOKEN, "ADMIN_ID": "4242", "PORTFOLIO_ENV_FILE": str(root / "absent.env")}
    console = (root / "main.console").open("wb")
    process = subprocess.Popen([sys.executable, "main.py", "--config", str(configs / "system.toml")], cwd=ROOT,
                               env=env, stdout=console, stderr=subprocess.STDOUT, start_new_session=True)
    return RunningSystem(root, configs / "system.toml", telegram, env, process)


def running(system: RunningSystem) -> dict[str, int] | None:
    try:
        pids = system.pids()
    except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
        return None
    return pids if set(pids) == set(SERVICES) else None


def risk_anchors(state_dir: Path) -> tuple[str, float | None, dict[str, str]] | None:
    path = state_dir / "risk.sqlite"
    if not path.exists():
        return None
    day = read_rows(path, "SELECT day, start_balance FROM day")
    books = dict(read_rows(path, "SELECT symbol, regime FROM books"))
    return (day[0][0], day[0][1], books) if day else None


def switch(requester: Requester, observer: Observer, enabled: bool, deadline_s: float = 20.0) -> None:
    """The owner's Start/Stop, as Telegram sends it (market time from risk's last state)."""
    market_now = observer.states[-1].ts if observer.states else 0.0
    wait_for(f"risk to take switch={enabled}",
             lambda: requester.request(SetTrading(ts=market_now, enabled=enabled, by="chaos test"), 2.0),
             deadline_s)


def test_chaos(tmp_path: Path) -> None:  # noqa: PLR0915 - one scenario, read top to bottom
    root = tmp_path
    system = start(root)
    state_dir = root / "state"
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    run = root / "run"
    observer = Observer(Subscriber(ctx, [f"ipc://{run / 'risk_pub'}"], [topics.RISK_STATE, topics.RISK_EXECUTION]),
                        Subscriber(ctx, [f"ipc://{run / 'gateway_pub'}"], ["bar."]))
    owner = Requester(ctx, f"ipc://{run / 'risk_rep'}", "telegram")
    rng = random.Random(SEED)
    schedule = [s for s in SERVICES for _ in range(max(KILLS_EACH, int(SECONDS / 20)))]
    rng.shuffle(schedule)
    pause = SECONDS / len(schedule)
    kills: list[Kill] = []
    switch_off: tuple[float, float] | None = None
    try:
        wait_for("all six services RUNNING", lambda: running(system), 60)
        wait_for("a first fill", lambda: _fill_after(observer, 0), 120)
        began = time.monotonic()
        for index, service in enumerate(schedule):
            if index == len(schedule) // 2:
                switch(owner, observer, False)
                off_at = time.monotonic()
            if index == len(schedule) // 2 + 2:
                switch(owner, observer, True)
                switch_off = (off_at, time.monotonic())
            pids = wait_for("all six services RUNNING", lambda: running(system), 60)
            observer.drain()
            anchors = risk_anchors(state_dir) if service == "risk" else None
            mark = _log_mark(system, service)
            os.kill(pids[service], signal.SIGKILL)
            kill = Kill(service, pids[service], time.monotonic(), len(observer.states), anchors, mark)
            kills.append(kill)
            next_at = kill.at + pause
            while time.monotonic() < next_at or kill.working_s is None:
                observer.drain()
                now = time.monotonic()
                pid = (running(system) or {}).get(service)
                if kill.back_s is None and pid is not None and pid != kill.pid:
                    kill.back_s = now - kill.at
                if kill.back_s is not None and kill.working_s is None and _working(service, kill, observer, system):
                    kill.working_s = now - kill.at
                if now - kill.at > 60:
                    break
                time.sleep(0.05)
        chaos_s = time.monotonic() - began
        wait_for("all six services RUNNING", lambda: running(system), 60)
        fills_at_end = observer.fills
        wait_for("a fill after the last kill", lambda: _fill_after(observer, fills_at_end), 120)
        wait_for("no leg left open", lambda: _no_open_legs(state_dir), 60)
    finally:
        system.ctl("shutdown")
        try:
            system.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(system.process.pid, signal.SIGKILL)
        system.telegram.stop()
        observer.risk.close()
        observer.market.close()
        owner.close()
        ctx.destroy(linger=0)

    config = load_config(system.config)
    sim = validate_backend_config(config)
    assert isinstance(sim, SimConfig)
    deals = read_deals(state_dir / SIM_STATE_FILE)
    server = read_state(state_dir / SIM_STATE_FILE)
    assert server is not None
    findings = Findings()
    check_legs(state_dir / config.system.executor.journal_file, deals, findings)
    check_market(sim, config.system.gateway.stale_after_s, deals, findings)
    checked = check_risk_timeline(observer.states, state_dir / config.system.executor.journal_file, findings)
    anchors_compared, tightened = _check_restarts(kills, observer, findings)
    if switch_off is not None:
        off_states = [s for s in observer.states if not s.trading_enabled]
        if not off_states:
            findings.violations.append("the switch went off but risk never said so")

    per_service = Counter(k.service for k in kills)
    regimes: Counter[str] = Counter(state.regime for heard in observer.states for state in heard.symbols.values())
    worst_back = max(k.back_s or 0.0 for k in kills)
    worst_working = max(k.working_s or 0.0 for k in kills)
    slowest = {s: max(k.working_s or 0.0 for k in kills if k.service == s) for s in SERVICES}
    to_fill = sorted(_next_fill(observer, k) for k in kills)
    report = "\n".join([
        f"chaos: seed {SEED}, {chaos_s:.0f} s of kills at replay speed {SPEED:g}x "
        f"(market {server['now'] - START:.0f} s from the start)",
        "kills: " + ", ".join(f"{s} {per_service[s]}" for s in SERVICES) + f" (total {len(kills)})",
        f"restarts seen: {sum(1 for k in kills if k.back_s is not None)}; back within {worst_back:.1f} s, "
        f"working again within {worst_working:.1f} s ("
        + ", ".join(f"{s} {slowest[s]:.1f}" for s in SERVICES) + ")",
        f"first fill after a kill: median {to_fill[len(to_fill) // 2]:.1f} s, worst {to_fill[-1]:.1f} s "
        "(includes the switch-off period)",
        f"orders: {findings.entries} entry deals, {findings.exits} exit deals; legs filled {findings.legs_filled}, "
        f"rejected {findings.legs_rejected}; fills heard {observer.fills}",
        f"faults injected: {dict(sorted(server['faults_injected'].items()))}, {len(sim.faults.disconnects)} "
        f"disconnect and {len(sim.faults.stale)} stale windows",
        f"risk: {len(observer.states)} states heard, {checked} filled plans checked against them, "
        f"{anchors_compared} restarts compared regime and day anchors ({tightened} found a regime tightened by "
        "the market meanwhile, none relaxed)",
        "regimes in those states (per symbol and state): "
        + ", ".join(f"{regime} {regimes[regime]}" for regime in "ABC"),
        f"violations: {len(findings.violations)}",
        *findings.violations,
    ])
    print("\n" + report)
    (root / "chaos_report.txt").write_text(report + "\n")
    assert findings.violations == []
    assert min(per_service[s] for s in SERVICES) >= KILLS_EACH
    assert all(k.back_s is not None and k.working_s is not None for k in kills)
    assert worst_working <= RESUME_LIMIT_S
    assert findings.legs_filled > 0


def _working(service: str, kill: Kill, observer: Observer, system: RunningSystem) -> bool:
    """The restarted process does its job again, whatever the regime or the switch says:

    - gateway_mt5: bars flow again, and after one of them risk says bitcoin's data is ok;
    - risk: it publishes its state;
    - a strategy: it logs LIVE_MARKER (warmed up from the gateway's history, taking live data; a live bar
      may be hours away while its market is closed);
    - executor: it logs RECONCILED_MARKER (journal reconciled with the broker, plans taken);
    - telegram: it asks the (fake) Bot API for updates again."""
    back = kill.at + (kill.back_s or 0.0)
    if service == "gateway_mt5":
        if kill.bar_after is None and observer.last_bar_wall > back:
            kill.bar_after = observer.last_bar_wall
        return kill.bar_after is not None and observer.btc_ok_wall > kill.bar_after
    if service == "risk":
        return observer.last_state_wall > back
    if service == "telegram":
        return any(r.method == "getUpdates" for r in system.telegram.requests_log()[kill.log_mark:])
    marker = LIVE_MARKER if service.startswith("strategy_") else RECONCILED_MARKER
    path = system.logs / f"{service}.log"
    if not path.exists():
        return False
    with path.open("rb") as log:  # only what was written after the kill (all of it if the log rotated since)
        log.seek(kill.log_mark if path.stat().st_size >= kill.log_mark else 0)
        return marker.encode() in log.read()


def _log_mark(system: RunningSystem, service: str) -> int:
    """Where the restarted process's first sign of work will be: the count of Bot API requests so far, or the
    size of the service's log (its next lines are the new process's)."""
    if service == "telegram":
        return len(system.telegram.requests_log())
    path = system.logs / f"{service}.log"
    return path.stat().st_size if path.exists() else 0


def _next_fill(observer: Observer, kill: Kill) -> float:
    """Seconds from a kill to the next fill heard (inf if none)."""
    return next((t - kill.at for t in observer.fill_walls if t > kill.at), float("inf"))


def _fill_after(observer: Observer, before: int) -> bool | None:
    observer.drain()
    return True if observer.fills > before else None


def _no_open_legs(state_dir: Path) -> bool | None:
    path = state_dir / "executor.sqlite"
    rows = read_rows(path, "SELECT COUNT(*) FROM legs WHERE state IN ('intended', 'sending', 'unknown')")
    return True if rows[0][0] == 0 else None


def _check_restarts(kills: list[Kill], observer: Observer, findings: Findings) -> tuple[int, int]:
    """After each risk restart, its first state carries the day anchor stored before the kill, and no regime
    less strict than the stored one: a restart never forgets a B or a C. A stricter one is no fault: the
    market runs on while risk is down (about 600 market seconds a second here), and bitcoin's tight limits
    can be crossed meanwhile. Returns (restarts compared, of which a regime had tightened)."""
    compared = tightened = 0
    for kill in kills:
        if kill.service != "risk" or kill.anchors is None or kill.back_s is None:
            continue
        day, start_balance, regimes = kill.anchors
        heard = observer.states[kill.states_before:]
        first = heard[0] if heard else None
        if first is None:
            findings.violations.append(f"risk killed at +{kill.at:.0f}: no state heard after its restart")
            continue
        if time.strftime("%Y-%m-%d", time.gmtime(first.ts)) != day:
            continue  # the market crossed 00:00 UTC while risk was down: a new day, nothing to compare
        compared += 1
        now = {symbol: state.regime for symbol, state in first.symbols.items() if symbol in regimes}
        relaxed = [s for s, regime in now.items() if STRICTNESS[regime] < STRICTNESS[regimes[s]]]
        if first.day_start_balance != start_balance or relaxed or set(now) != set(regimes):
            findings.violations.append(f"risk restart: before {day} {start_balance} {regimes}, after "
                                       f"{first.day_start_balance} {now}")
        elif now != regimes:
            tightened += 1
    return compared, tightened
