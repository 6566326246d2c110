"""Configuration files: TOML validated by pydantic, and one clear line for anything wrong.

``configs/system.toml`` holds what the whole system shares (paths, socket endpoints, the broker backend
and the simulator, cadences); ``configs/xau.toml`` and ``configs/btc.toml`` hold every parameter of a
symbol. An unknown key or a bad value raises ``ConfigError`` naming the file, the key, the value and
what is allowed; runners turn it into one line on stderr and exit status 2 before opening any socket.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from shared.curve import CurveError, CurveKeys, admitted_clients, load_public_key, secures
from shared.symbol_config import SymbolConfig, inert_keys_set

CONFIG_EXIT_STATUS = 2
T = TypeVar("T", bound=BaseModel)


class ConfigError(Exception):
    """A configuration problem, already phrased for the operator in one line."""


KEY_ERROR = "config_key"  # a rule spanning tables, reported on the key it names (see format_validation_error)


def key_error(key: str, value: object, problem: str) -> PydanticCustomError:
    """A validation error about ``key`` raised from a model validator, worded like any other key's."""
    return PydanticCustomError(KEY_ERROR, "{problem}", {"key": key, "value": value, "problem": problem})


class Section(BaseModel):
    """Base of every config table: unknown keys are errors, values are checked, nothing is mutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Paths(Section):
    logs_dir: Path = Field(Path("Logs"), description="directory of the per-service log files")
    run_dir: Path = Field(Path("run"), description="ipc sockets, supervisord socket and pid file")
    state_dir: Path = Field(Path("state"), description="SQLite state of risk and executor")
    data_dir: Path = Field(Path("data"), description="market history for the simulated broker")


def _is_local(endpoint: str) -> bool:
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    host = endpoint[len("tcp://") :].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Endpoints(Section):
    """ZeroMQ endpoints. ``{run_dir}`` expands to paths.run_dir. ipc, or tcp on loopback unless [curve] is on."""

    gateway_pub: str = "ipc://{run_dir}/gateway_pub"
    gateway_rep: str = "ipc://{run_dir}/gateway_rep"
    risk_in: str = "ipc://{run_dir}/risk_in"
    risk_pub: str = "ipc://{run_dir}/risk_pub"
    risk_rep: str = "ipc://{run_dir}/risk_rep"
    executor_in: str = "ipc://{run_dir}/executor_in"
    executor_rep: str = "ipc://{run_dir}/executor_rep"

    @field_validator("*")
    @classmethod
    def _ipc_or_tcp(cls, value: str) -> str:
        if not value.startswith(("ipc://", "inproc://")) and not (value.startswith("tcp://") and ":" in value[6:]):
            raise ValueError("must be ipc://PATH or tcp://HOST:PORT")
        return value


# Which service binds each endpoint (see docs/ARCHITECTURE.md): a client of it trusts that service's key.
BOUND_BY: dict[str, str] = {
    "gateway_pub": "gateway_mt5", "gateway_rep": "gateway_mt5",
    "risk_in": "risk", "risk_pub": "risk", "risk_rep": "risk",
    "executor_in": "executor", "executor_rep": "executor",
}


class CurveSection(Section):
    """ZeroMQ CURVE on every tcp endpoint (docs/SECURITY.md). Key files are named by service."""

    enabled: bool = Field(False, description="true: every tcp endpoint is encrypted and admits only the keys "
                          "of public_keys_dir (needed for an address off loopback); false: plain")
    public_keys_dir: Path = Field(Path("keys/public"), description="NAME.key of every service (the clients "
                                  "admitted, each known by its file name, and the servers trusted)")
    secret_keys_dir: Path = Field(Path("keys/secret"), description="NAME.key_secret of each service that "
                                  "runs on this machine (owner-only)")


class DeploySection(Section):
    """What `python main.py` starts on this machine (docs/SECURITY.md: the gateway next to MT5 on Windows)."""

    gateway_here: bool = Field(True, description="true: main.py starts the gateway with the five others; false: "
                               "the gateway runs on another machine (then gateway_pub, gateway_rep and risk_in "
                               "must be tcp) and main.py starts the five others")


# The endpoints a gateway on another machine binds or connects to: they cannot be ipc on this one.
REMOTE_GATEWAY_ENDPOINTS = ("gateway_pub", "gateway_rep", "risk_in")


class BrokerSection(Section):
    backend: Literal["sim", "mt5", "mt5linux"] = Field("sim", description="sim | mt5 | mt5linux")


class Mt5Section(Section):
    mt5_path: str = Field("", description="terminal64.exe path; empty lets the package find it")
    mt5_portable: bool = False
    mt5_timeout_ms: int = Field(60_000, ge=1000, le=600_000)
    host: str = Field("127.0.0.1", description="mt5linux bridge host (loopback only: it runs any code)")
    port: int = Field(18812, ge=1, le=65535)
    init_grace_s: float = Field(30.0, gt=0, le=600, description="initialize() is abandoned after "
                                "mt5_timeout_ms plus this (a hung terminal cannot hang the gateway)")
    call_timeout_s: float = Field(15.0, gt=0, le=600, description="hard deadline of every other terminal call")
    reconnect_min_s: float = Field(0.5, gt=0, le=60, description="first pause before reconnecting; doubles")
    reconnect_max_s: float = Field(30.0, gt=0, le=3600, description="longest pause between reconnect attempts")
    close_grace_s: float = Field(5.0, ge=0, le=120, description="a symbol's last bar before its market "
                                 "closes is published this long after the close")
    hours: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="market hours per symbol for mt5/mt5linux (MT5 has no such call), "
        "checked by the gateway; default: XAUUSDm gold's Exness hours, BTCUSDm always open"
    )


class GatewaySection(Section):
    poll_interval_s: float = Field(0.02, gt=0, le=5)
    heartbeat_interval_s: float = Field(1.0, gt=0, le=60)
    account_interval_s: float = Field(1.0, gt=0, le=60)
    stale_after_s: float = Field(120.0, gt=0, description="market seconds without a tick before 'stale'")
    lockstep_quiet_s: float = Field(0.0, ge=0, le=10, description="sim only: replay in lockstep, publishing each "
                                    "half of the next bar time after this long without a request (parity "
                                    "tests; see services/gateway_mt5/lockstep.py); 0 = off")
    lockstep_callers: tuple[str, ...] = Field(("strategy_xau", "strategy_btc", "risk", "executor"),
                                              description="lockstep: who must have asked before the first step")


SyncMode = Literal["normal", "full"]
"""How a SQLite state file (WAL) is flushed at each commit; docs/RELIABILITY.md says what each protects against.

- ``normal``: the commit reaches the WAL in the OS page cache and is fsynced at checkpoints. It survives a
  SIGKILL or any crash of the process; an OS crash or power cut may lose the last commits (the file stays
  consistent), which the executor's start-up reconciliation with the broker and risk's polling of the
  gateway cover.
- ``full``: every commit is fsynced before it returns (about 0.3 ms each on the development disk); it
  survives an OS crash or power cut as well.
"""
_SYNC_HELP = ("normal: survives a SIGKILL of the process, an OS crash or power cut may lose the last commits; "
              "full: fsync at every commit, survives those too (docs/RELIABILITY.md)")


class RiskSection(Section):
    store_sync: SyncMode = Field("normal", description="risk.sqlite flush at each commit: " + _SYNC_HELP)
    health_interval_s: float = Field(5.0, gt=0, le=300, description="cadence of the health log line")
    state_interval_s: float = Field(1.0, gt=0, le=60, description="cadence of the RiskState broadcast")
    signal_max_age_s: float = Field(90.0, gt=0, description="market seconds after which a signal is stale")


class ExecutorSection(Section):
    request_timeout_s: float = Field(5.0, gt=0, le=120)
    status_interval_s: float = Field(1.0, gt=0, le=60)
    max_retries: int = Field(3, ge=0, le=20, description="resends of one order after retryable retcodes")
    retry_window_s: float = Field(3.0, gt=0, le=120, description="no resend later than this after the first send")
    retry_backoff_s: float = Field(0.1, ge=0, le=10, description="pause before a resend on 10021/10024/10028/10031")
    verify_retry_s: float = Field(1.0, gt=0, le=60, description="pause between checks while the gateway is silent")
    journal_file: str = Field("executor.sqlite", min_length=1, description="the journal, inside paths.state_dir")
    journal_sync: SyncMode = Field("normal", description="the journal's flush at each commit: " + _SYNC_HELP)


class TelegramSection(Section):
    api_base_url: str = Field("https://api.telegram.org/bot", description="Bot API base URL (tests: a fake)")
    request_timeout_s: float = Field(10.0, gt=0, le=120)
    command_timeout_s: float = Field(30.0, gt=0, le=300, description="wait for the executor's answer to "
                                     "/tek_prof, /stop_ls and close all (it sends orders)")
    confirm_timeout_s: float = Field(60.0, gt=0, le=3600, description="how long a confirmation button works")
    per_chat_interval_s: float = Field(1.0, ge=0, le=60, description="pause between two messages to one "
                                       "chat (Telegram: about 1 a second)")
    outbox_size: int = Field(1000, ge=10, le=100_000, description="message parts kept while Telegram "
                             "is unreachable; the oldest go first")
    supervisor_poll_s: float = Field(2.0, ge=0, le=300, description="cadence of the supervisord state "
                                     "check behind service alerts; 0 = off")
    service_alert_interval_s: float = Field(60.0, ge=0, le=3600, description="at most one alert per "
                                            "service per interval; more are summed up")
    max_protection_usd: float = Field(10_000.0, gt=0, description="largest USD distance /tek_prof and "
                                      "/stop_ls accept (a bigger one is a typo)")


class StrategySection(Section):
    warmup_bars: int = Field(300, ge=10, le=5000, description="bars per timeframe asked at start")
    request_timeout_s: float = Field(5.0, gt=0, le=120)


class SystemConfig(Section):
    """configs/system.toml."""

    paths: Paths = Paths()
    endpoints: Endpoints = Endpoints()
    curve: CurveSection = CurveSection()
    deploy: DeploySection = DeploySection()
    symbols: dict[str, str] = Field(
        default_factory=lambda: {"XAUUSDm": "xau.toml", "BTCUSDm": "btc.toml"},
        description="symbol name -> its config file, relative to this file",
    )
    broker: BrokerSection = BrokerSection()
    sim: dict[str, Any] = Field(default_factory=dict, description="the simulated broker (gateway)")
    mt5: Mt5Section = Mt5Section()
    gateway: GatewaySection = GatewaySection()
    strategy: StrategySection = StrategySection()
    risk: RiskSection = RiskSection()
    executor: ExecutorSection = ExecutorSection()
    telegram: TelegramSection = TelegramSection()

    @model_validator(mode="after")
    def _off_loopback_needs_curve(self) -> SystemConfig:
        if self.curve.enabled:
            return self
        for name, value in self.endpoints.model_dump().items():
            if not _is_local(value.replace("{run_dir}", "run")):
                raise key_error(f"endpoints.{name}", value, "an address off loopback is allowed only with "
                                "CURVE: set [curve] enabled = true and put the keys in place (docs/SECURITY.md), "
                                "or use ipc://PATH or tcp://127.0.0.1:PORT")
        return self

    @model_validator(mode="after")
    def _remote_gateway_needs_tcp(self) -> SystemConfig:
        if self.deploy.gateway_here:
            return self
        for name in REMOTE_GATEWAY_ENDPOINTS:
            value = getattr(self.endpoints, name)
            if not value.startswith("tcp://"):
                raise key_error(f"endpoints.{name}", value, "with [deploy] gateway_here = false the gateway on "
                                "the other machine binds or reaches it: use tcp://ADDRESS:PORT (docs/SECURITY.md)")
        return self

    def endpoint(self, name: str) -> str:
        """An endpoint with ``{run_dir}`` expanded."""
        raw: str = getattr(self.endpoints, name)
        return raw.replace("{run_dir}", str(self.paths.run_dir))


class LoadedConfig(BaseModel):
    """The system config with its symbol configs, paths made absolute."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    system: SystemConfig
    symbols: dict[str, SymbolConfig]


def _describe_allowed(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """What the key accepts, from the field's description and constraints."""
    current: type[BaseModel] | None = model
    field = None
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            break
        field = current.model_fields[part]
        annotation = field.annotation
        current = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if field is None:
        return ""
    bits = [_constraint_text(m) for m in field.metadata]
    if field.description:
        bits.insert(0, field.description)
    if field.default is not None and not isinstance(field.default, BaseModel):
        bits.append(f"default {field.default!r}")
    return "; ".join(bits)


_CONSTRAINT_SYMBOLS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "min_length": "length >=",
                       "max_length": "length <=", "pattern": "matching"}


def _constraint_text(constraint: object) -> str:
    """'> 0' for Gt(gt=0), 'length <= 31' for MaxLen(31), and so on."""
    for attribute, symbol in _CONSTRAINT_SYMBOLS.items():
        value = getattr(constraint, attribute, None)
        if value is not None:
            return f"{symbol} {value}"
    return str(constraint)


def format_validation_error(path: Path, model: type[BaseModel], exc: ValidationError) -> str:
    """One operator-facing line for the first problem (file, key, value, what is allowed)."""
    err = exc.errors()[0]
    if err.get("type") == KEY_ERROR:
        context = err.get("ctx", {})
        return f"{path}: {context['key']} = {context['value']!r} is invalid: {err.get('msg')}."
    loc = tuple(err.get("loc", ()))
    key = ".".join(str(p) for p in loc) or "(top level)"
    value = err.get("input")
    if err.get("type") == "extra_forbidden":
        parent = loc[:-1]
        known = _known_keys(model, parent)
        return f"{path}: unknown key {key} = {value!r}; allowed keys here: {', '.join(known)}"
    allowed = _describe_allowed(model, loc)
    hint = f" Allowed: {allowed}." if allowed else ""
    return f"{path}: {key} = {value!r} is invalid: {err.get('msg')}.{hint}"


def _known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    current: type[BaseModel] = model
    for part in loc:
        field = current.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        current = annotation
    return sorted(current.model_fields)


def load_toml(path: Path, model: type[T]) -> T:
    """Read and validate one TOML file; ConfigError with one clear line on any problem."""
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return validate_table(path, raw, model)


def validate_table(path: Path, raw: dict[str, Any], model: type[T]) -> T:
    """Validate an already-parsed table (e.g. the [sim] table) with the same error wording."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, model, exc)) from None


def load_config(path: Path) -> LoadedConfig:
    """Load configs/system.toml and every symbol file it names; make relative paths absolute.

    Relative paths in [paths] are taken from the project root: the parent of the config directory.
    """
    path = path.resolve()
    system = load_toml(path, SystemConfig)
    root = path.parent.parent

    def absolute(value: Path) -> Path:
        return value if value.is_absolute() else root / value

    paths = system.paths.model_copy(update={name: absolute(value) for name, value in system.paths.model_dump().items()})
    curve = system.curve.model_copy(update={"public_keys_dir": absolute(system.curve.public_keys_dir),
                                            "secret_keys_dir": absolute(system.curve.secret_keys_dir)})
    system = system.model_copy(update={"paths": paths, "curve": curve})
    if curve.enabled:
        _check_public_keys(path, system)
    symbols: dict[str, SymbolConfig] = {}
    for symbol, filename in system.symbols.items():
        symbol_config = load_toml(path.parent / filename, SymbolConfig)
        if symbol_config.symbol.name != symbol:
            raise ConfigError(
                f"{path.parent / filename}: symbol.name = {symbol_config.symbol.name!r} but system.toml "
                f"lists this file for {symbol!r}; make them the same"
            )
        symbols[symbol] = symbol_config
    return LoadedConfig(path=path, system=system, symbols=symbols)


def inert_key_notices(config: LoadedConfig) -> list[str]:
    """One line per symbol file that spells out keys with no effect in this version (``INERT_KEYS``)."""
    notices = []
    for symbol, symbol_config in config.symbols.items():
        keys = inert_keys_set(symbol_config)
        if keys:
            notices.append(f"Note: {config.path.parent / config.system.symbols[symbol]} sets {len(keys)} keys that "
                           f"have no effect in this version (marked 'no effect yet' there): {', '.join(keys)}")
    return notices


_KEYS_FIX = "Fix: create or copy the keys as docs/SECURITY.md says (deploy/curve_keys.py)"


def _server_key_files(system: SystemConfig) -> dict[str, Path]:
    """tcp endpoint -> the public key file of the service that binds it."""
    return {system.endpoint(name): system.curve.public_keys_dir / f"{BOUND_BY[name]}.key"
            for name in Endpoints.model_fields if secures(system.endpoint(name))}


def _check_public_keys(path: Path, system: SystemConfig) -> None:
    """With CURVE on, what every process of every machine needs: the keys it admits and the servers' keys."""
    directory = system.curve.public_keys_dir
    try:
        admitted_clients(directory)
        for file in _server_key_files(system).values():
            load_public_key(file)
    except CurveError as exc:
        raise ConfigError(f"{path}: curve.public_keys_dir = {str(directory)!r} is invalid: {exc}. "
                          f"{_KEYS_FIX}") from None


def curve_keys(config: LoadedConfig, service: str) -> CurveKeys | None:
    """The CURVE keys of one service process (None while [curve] is off): its key pair from
    ``secret_keys_dir/SERVICE.key_secret``, the clients it admits and the servers it trusts. A missing or
    unreadable file is a ConfigError naming it, raised before any socket opens."""
    system = config.system
    if not system.curve.enabled:
        return None
    directory = system.curve.secret_keys_dir
    try:
        return CurveKeys.load(service, directory / f"{service}.key_secret", system.curve.public_keys_dir,
                              _server_key_files(system))
    except CurveError as exc:
        raise ConfigError(f"{config.path}: curve.secret_keys_dir = {str(directory)!r} is invalid for {service}: "
                          f"{exc}. {_KEYS_FIX}") from None
