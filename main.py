"""Start the whole system under supervisord (what `make run` does), or talk to a running one.

    python main.py                 all six services, simulated broker by default
    python main.py --headless      everything except Telegram (VPS mode)
    python main.py --engine-only   Telegram only sends notifications, accepts no commands
                                   ([deploy] gateway_here = false: all but the gateway, which runs next to MT5)
    python main.py ctl status      supervisorctl on the running system (also: stop, restart NAME ...)
    python main.py backtest ...    the same cores on history in one process (`main.py backtest --help`)

Every config file is validated before anything starts: a bad value prints one line naming the file,
the key, the value and what is allowed, and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from secrets import token_urlsafe

from services.gateway_mt5.runner import GATEWAY_AUTOSTART_VARIABLE, check_backend
from shared.config import (
    CONFIG_EXIT_STATUS,
    ConfigError,
    LoadedConfig,
    curve_keys,
    inert_key_notices,
    load_config,
)
from shared.secrets import Secrets, load_secrets

ROOT = Path(__file__).resolve().parent
SUPERVISOR_CONF = ROOT / "deploy" / "supervisord.conf"
SERVICES = ("gateway_mt5", "strategy_xau", "strategy_btc", "risk", "executor", "telegram")
OWNER_ONLY = 0o700  # run/ (ipc sockets, supervisord's socket and password) and state/ (the journals)


def local_services(config: LoadedConfig) -> tuple[str, ...]:
    """The services main.py starts on this machine: all six, or all but the gateway when it runs next to MT5."""
    return tuple(s for s in SERVICES if s != "gateway_mt5" or config.system.deploy.gateway_here)


def owner_only_directory(key: str, path: Path) -> None:
    """Create ``path`` readable by its owner only, or take other users' access away if it exists: the ipc
    sockets in run/ have no authentication of their own, so this directory is their boundary."""
    try:
        path.mkdir(mode=OWNER_ONLY, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o077:
            path.chmod(OWNER_ONLY)
    except OSError as exc:
        raise ConfigError(f"paths.{key} = {str(path)!r}: cannot make it a directory only its owner can open "
                          f"({exc.strerror}); run as the user that owns it, or choose another path") from exc


def _environment(config: LoadedConfig, credentials: Secrets, headless: bool, engine_only: bool, *,
                 control_only: bool = False) -> dict[str, str]:
    """Validate the rest (the config itself is loaded and checked), then build the variables
    deploy/supervisord.conf expands. ``control_only`` (for ``main.py ctl``): neither the backend nor the keys
    are checked, so that a running system can always be stopped, also while a key is being replaced."""
    services = local_services(config)
    if not control_only:
        if "gateway_mt5" in services:  # the broker is reached (and its secrets needed) only where it runs
            check_backend(config, credentials)
        for service in services:  # every secret key of the services of this machine (no-op with CURVE off)
            curve_keys(config, service)
    paths = config.system.paths
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    owner_only_directory("run_dir", paths.run_dir)
    owner_only_directory("state_dir", paths.state_dir)
    return {
        "PORTFOLIO_SUPERVISOR_PASSWORD": supervisor_password(paths.run_dir),
        "PORTFOLIO_CONFIG": str(config.path),
        "PORTFOLIO_LOGS": str(paths.logs_dir),
        "PORTFOLIO_RUN": str(paths.run_dir),
        "PORTFOLIO_PYTHON": sys.executable,
        GATEWAY_AUTOSTART_VARIABLE: "true" if "gateway_mt5" in services else "false",
        "PORTFOLIO_TELEGRAM_AUTOSTART": "false" if headless else "true",
        "PORTFOLIO_TELEGRAM_MODE": "notify_only" if engine_only else "full",
        "PORTFOLIO_BACKEND": config.system.broker.backend,
        "PORTFOLIO_STATE": str(paths.state_dir),
    }


def fresh_simulated_account(state_dir: Path) -> None:
    """Each start of the simulated broker is a new account replaying from the start of the data, so the
    risk day and the executor journal of the previous run must not carry over (risk would wait for a
    day it already saw; the executor would look for positions the new account never had). The last
    run's state is kept in state/previous/ for reading."""
    files = [p for p in state_dir.iterdir() if p.is_file()]
    if not files:
        return
    previous = state_dir / "previous"
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir()
    for path in files:
        path.rename(previous / path.name)
    print(f"Simulated broker: a fresh account; the last run's state is in {previous}.")


def supervisor_password(run_dir: Path) -> str:
    """The control socket's password: made once, kept in run/supervisor.secret readable by the owner only.

    It is a local credential between main.py, supervisord and supervisorctl, not one of the five
    secrets; the socket is already mode 0700, so this is a second lock, not the only one."""
    path = run_dir / "supervisor.secret"
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(token_urlsafe(24))
    return path.read_text().strip()


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def main(argv: list[str] | None = None) -> int:  # returns only on error or a backtest: it execs supervisord
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["backtest"]:
        from backtest.cli import main as backtest  # noqa: PLC0415  (only the backtest needs its imports)

        return backtest(arguments[1:])
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    default_config = Path(os.environ.get("PORTFOLIO_CONFIG", ROOT / "configs" / "system.toml"))
    parser.add_argument("--config", type=Path, default=default_config)
    parser.add_argument("--headless", action="store_true", help="start everything except Telegram")
    parser.add_argument("--engine-only", action="store_true", help="Telegram sends notifications only")
    parser.add_argument("command", nargs="*", help="'ctl ARGS...' passes ARGS to supervisorctl")
    args = parser.parse_args(argv)
    headless = args.headless
    try:
        credentials = load_secrets()
        no_bot = credentials.BOT_TOKEN is None or credentials.ADMIN_ID is None
        config = load_config(args.config)
        env = _environment(config, credentials, headless or no_bot, args.engine_only,
                           control_only=args.command[:1] == ["ctl"])
    except (ConfigError, ValueError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return CONFIG_EXIT_STATUS
    if no_bot and not headless and not args.command:
        print("BOT_TOKEN or ADMIN_ID is not set: starting headless (no Telegram).")
        headless = True
    os.environ.update(env)
    if args.command:
        if args.command[0] != "ctl":
            parser.error(f"unknown command {args.command[0]!r}; use 'ctl ARGS...'")
        ctl = [_bin("supervisorctl"), "-c", str(SUPERVISOR_CONF), *args.command[1:]]
        os.execv(ctl[0], ctl)
    for notice in inert_key_notices(config):  # the keys the files set that do nothing
        print(notice)
    gateway_here = config.system.deploy.gateway_here
    if env["PORTFOLIO_BACKEND"] == "sim" and gateway_here:
        fresh_simulated_account(Path(env["PORTFOLIO_STATE"]))
    starting = [s for s in local_services(config) if s != "telegram" or not headless]
    print(f"Starting {', '.join(starting)} under supervisord"
          f"{'' if gateway_here else ' (the gateway runs on another machine: [deploy] gateway_here = false)'}.")
    print(f"Logs: {env['PORTFOLIO_LOGS']}/<service>.log (one per service), "
          f"{env['PORTFOLIO_LOGS']}/portfolio_engine_health.log (health line).")
    print("Stop with Ctrl-C (or `make stop` from another terminal).")
    sys.stdout.flush()
    supervisord = [_bin("supervisord"), "-n", "-c", str(SUPERVISOR_CONF)]
    os.execv(supervisord[0], supervisord)


if __name__ == "__main__":
    sys.exit(main())
