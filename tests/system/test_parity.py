"""Parity: the system of processes and the backtest place the same orders on the same history.

The same two-hour slice of the shipped data is replayed twice: by the whole system under the real
supervisord (`python main.py --config ... --headless`, the gateway in lockstep replay mode), and by
the backtest (the same cores on the in-process bus). The orders each placed, taken from the executor's
journal live and from the plans the backtest's executor received (symbol, side, bar time, and per leg
its lots, SL and TP), must be identical.

The test config turns the daily limits off (``enforce_daily_limits = false``) for both runs: risk's
regimes follow the floating P&L of the position list it polls on a wall-clock timer, which a
multi-process replay cannot tie to a bar. Everything else is the shipped configuration. State lives on
tmpfs when there is one, so the journal's fsyncs do not stretch the pipeline's hops.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
import zmq

from backtest.engine import run_backtest
from backtest.inputs import build_setup
from shared import topics
from shared.bus import Subscriber
from shared.messages import GatewayHeartbeat, OrderPlan
from tests.support import wait_for

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
DATA = {"XAUUSDm": "XAUUSDm_M1_2025-07-09_2025-08-12.csv.gz", "BTCUSDm": "BTCUSDm_M1_2025-07-09_2025-08-12.csv.gz"}
START = datetime(2025, 7, 14, 6, 0, tzinfo=UTC)  # Monday: both markets open; four days of history before
END = datetime(2025, 7, 14, 8, 0, tzinfo=UTC)
QUIET_S = 0.05
T = TypeVar("T")
Order = tuple[str, str, int, tuple[tuple[float, float, float], ...]]



def write_slice(data_dir: Path) -> None:
    """The shipped files cut at END, under their own names (so the sim's presets apply)."""
    data_dir.mkdir(parents=True)
    last = END.strftime("%Y-%m-%d %H:%M:%S")
    for name in DATA.values():
        with gzip.open(ROOT / "data" / name, "rt") as source:
            lines = [line for line in source if line[:19] < last or line.startswith("time")]
        with gzip.open(data_dir / name, "wt") as target:
            target.writelines(lines)


def configure(root: Path, state: Path) -> Path:
    configs = root / "configs"
    shutil.copytree(ROOT / "configs", configs)
    text = (configs / "system.toml").read_text()
    for key, default, value in (("logs_dir", "Logs", root / "Logs"), ("run_dir", "run", root / "run"),
                                ("state_dir", "state", state), ("data_dir", "data", root / "data")):
        text = text.replace(f'{key} = "{default}"', f'{key} = "{value}"')
    text = text.replace("poll_interval_s = 0.02", "poll_interval_s = 0.005")
    text = text.replace("stale_after_s = 120.0", f"stale_after_s = 120.0\nlockstep_quiet_s = {QUIET_S}")
    sim = text.index("[sim]")
    text = text[:sim] + f"[sim]\nspeed = 0.0\nmax_bars_per_poll = 1\nstart = {START:%Y-%m-%dT%H:%M:%S}\n"
    (configs / "system.toml").write_text(text)
    for name in ("xau.toml", "btc.toml"):
        path = configs / name
        path.write_text(path.read_text().replace("enforce_daily_limits = true", "enforce_daily_limits = false"))
    return configs / "system.toml"


def journal_orders(journal: Path) -> list[Order]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        bodies = [row[0] for row in db.execute("SELECT body FROM plans")]
    return sorted(order_of(OrderPlan.model_validate(json.loads(body))) for body in bodies)


def order_of(plan: OrderPlan) -> Order:
    bar_time = int(plan.signal_id.rsplit("-", 2)[1])
    return plan.symbol, plan.side, bar_time, tuple((leg.volume, leg.sl, leg.tp) for leg in plan.legs)


@pytest.fixture
def root() -> Iterator[Path]:
    shm = Path("/dev/shm")
    path = Path(tempfile.mkdtemp(prefix="parity-", dir=shm if shm.is_dir() else None))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_live(root: Path, config: Path) -> list[Order]:
    """The system under supervisord until the gateway says the replay ended; the journal's plans."""
    env = {key: value for key, value in os.environ.items() if key not in ("BOT_TOKEN", "ADMIN_ID")}
    env["PORTFOLIO_ENV_FILE"] = str(root / "absent.env")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    market = Subscriber(ctx, [f"ipc://{root / 'run' / 'gateway_pub'}"], [topics.HEARTBEAT], name="parity")
    with (root / "main.console").open("wb") as console:
        process = subprocess.Popen([sys.executable, "main.py", "--config", str(config), "--headless"], cwd=ROOT,
                                   env=env, stdout=console, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def ended() -> bool | None:
            while (received := market.receive()) is not None:
                beat = received.message
                if isinstance(beat, GatewayHeartbeat) and beat.symbols and all(
                        h.reason == "replay_ended" for h in beat.symbols.values()):
                    return True
            return None

        wait_for("the end of the replay", ended, 90)
        journal = next((root / "state").glob("executor.sqlite"))
        settled = wait_for("every leg final", lambda: True if not open_legs(journal) else None, 10)
        assert settled
    finally:
        subprocess.run([sys.executable, "main.py", "--config", str(config), "ctl", "shutdown"], cwd=ROOT, env=env,
                       capture_output=True, timeout=60)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        market.close()
        ctx.destroy(linger=0)
    return journal_orders(root / "state" / "executor.sqlite")


def open_legs(journal: Path) -> int:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM legs WHERE state IN ('intended', 'sending', 'unknown')")
                   .fetchone()[0])


def test_the_system_and_the_backtest_place_the_same_orders(root: Path) -> None:
    write_slice(root / "data")
    config = configure(root, root / "state")
    setup = build_setup(config, list(DATA), root / "data", start=START, balance=1000.0)
    backtest = sorted(order_of(plan) for plan in run_backtest(setup, root / "backtest-state").plans)
    assert len(backtest) >= 10, "the slice must place enough orders to compare"
    live = run_live(root, config)
    assert live == backtest
