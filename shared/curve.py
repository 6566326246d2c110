"""ZeroMQ CURVE for links that leave the machine: encryption, and only known clients get in.

The default is ipc or loopback and needs none of this. With ``[curve] enabled`` (docs/SECURITY.md) every tcp
endpoint carries CURVE, and config validation accepts an address off loopback only then:

- every service has a key pair in two files made by ``zmq.auth.create_certificates`` (``NAME.key`` public,
  ``NAME.key_secret`` secret), NAME being the service (``gateway_mt5``, ``risk``, ``executor``...);
- a process that binds a tcp endpoint runs one authenticator thread (ZAP) per context that admits only the
  public keys of the configured directory; a client without an admitted key completes no handshake and
  gets nothing;
- the authenticator names each admitted key: the ZAP User-Id is the certificate's file name (``executor``
  for ``executor.key``), which a ROUTER reads from each frame (``peer_user_id``). So "only the executor
  may mutate broker state" rests on the executor's key, not on a routing id any peer can claim.

Keys are read once at start (``CurveKeys``, built by ``shared.config.curve_keys``), so a missing file is a
configuration error before any socket opens, never a failure at the first reconnect. The secret key is
never logged: it is left out of ``repr`` and added to the log redaction list by ``run_service``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

CURVE_DOMAIN = "*"
AnySocket = zmq.Socket[Any]  # plain and zmq.asyncio sockets take the same options


class CurveError(ValueError):
    """A key file that is missing or unreadable, named with its path."""


def _load(path: Path, what: str) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise CurveError(f"{path}: missing (the {what} file)")
    try:
        public, secret = zmq.auth.load_certificate(path)
        for key in (public, secret):  # 40 z85 characters for 32 bytes; anything else fails at the first socket
            if key is not None and len(z85.decode(key)) != 32:
                raise ValueError("a key is not 40 z85 characters")
    except (OSError, ValueError, KeyError) as exc:
        raise CurveError(f"{path}: not a readable CURVE {what} file ({exc})") from None
    return public, secret


def load_keys(secret_file: Path) -> tuple[bytes, bytes]:
    """(public, secret) from a ``NAME.key_secret`` certificate file (z85)."""
    public, secret = _load(secret_file, "secret key")
    if secret is None:
        raise CurveError(f"{secret_file}: holds no secret key (use the NAME.key_secret file)")
    return public, secret


def load_public_key(public_file: Path) -> bytes:
    return _load(public_file, "public key")[0]


def admitted_clients(public_keys_dir: Path) -> dict[bytes, str]:
    """Every ``NAME.key`` of a directory: z85 public key -> NAME, the name the caller is known by."""
    if not public_keys_dir.is_dir():
        raise CurveError(f"{public_keys_dir}: no such directory of public keys")
    names = {load_public_key(path): path.stem for path in sorted(public_keys_dir.glob("*.key"))}
    if not names:
        raise CurveError(f"{public_keys_dir}: no client public key (*.key) to admit")
    return names


def secures(endpoint: str) -> bool:
    """CURVE covers tcp only: ipc is guarded by the permissions of run/, inproc never leaves the process."""
    return endpoint.startswith("tcp://")


@dataclass(frozen=True, slots=True)
class CurveKeys:
    """One process's CURVE material, loaded once at start."""

    name: str  # this process's key name (its service): what servers report it as
    public: bytes
    secret: bytes = field(repr=False)
    clients: Mapping[bytes, str]  # admitted client public keys (z85) -> name, for the sockets it binds
    server_keys: Mapping[str, bytes]  # tcp endpoint -> public key of the process that binds it

    @classmethod
    def load(cls, name: str, secret_file: Path, public_keys_dir: Path,
             server_key_files: Mapping[str, Path]) -> CurveKeys:
        public, secret = load_keys(secret_file)
        servers = {endpoint: load_public_key(path) for endpoint, path in server_key_files.items()}
        return cls(name, public, secret, admitted_clients(public_keys_dir), servers)

    def server_key(self, endpoint: str) -> bytes:
        try:
            return self.server_keys[endpoint]
        except KeyError:
            raise CurveError(f"{endpoint}: no server public key is known for this endpoint") from None


class NamedKeyAuthenticator(ThreadAuthenticator):
    """Admits the given public keys and reports each by its name (the file it came from)."""

    def __init__(self, context: zmq.Context[Any], clients: Mapping[bytes, str]) -> None:
        super().__init__(context)
        if not clients:
            raise CurveError("no client public key to admit")
        self.names = dict(clients)

    def start(self) -> None:
        # The callback first: a handshake that reaches the thread before it would otherwise be refused
        # (pyzmq fails closed), so this only saves a legitimate client one reconnect.
        self.configure_curve_callback(CURVE_DOMAIN, credentials_provider=self)
        super().start()

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP's question for each handshake: is this client key (z85) admitted?"""
        del domain
        return key in self.names

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The User-Id ZAP gives an admitted client: the name of its key file."""
        return self.names.get(z85.encode(client_public_key), "")


class _Authenticators:
    """One authenticator per context (each binds the context's ZAP endpoint, inproc://zeromq.zap.01),
    alive while at least one CURVE server socket of that context is open. Its thread holds sockets of the
    context, so a runner's ``ctx.term()`` would hang while it runs: the last server's close stops it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, tuple[NamedKeyAuthenticator, int]] = {}

    def acquire(self, ctx: zmq.Context[Any], clients: Mapping[bytes, str]) -> None:
        with self._lock:
            key = ctx.underlying  # a zmq.asyncio shadow shares the context of its original
            authenticator, users = self._running.get(key, (None, 0))
            if authenticator is None:
                authenticator = NamedKeyAuthenticator(ctx, clients)
                authenticator.start()
            self._running[key] = (authenticator, users + 1)

    def release(self, ctx: zmq.Context[Any]) -> None:
        with self._lock:
            key = ctx.underlying
            authenticator, users = self._running.pop(key)
            if users > 1:
                self._running[key] = (authenticator, users - 1)
            else:
                authenticator.stop()

    def running(self, ctx: zmq.Context[Any]) -> int:
        """How many server sockets of ``ctx`` hold its authenticator (0: none runs)."""
        with self._lock:
            return self._running.get(ctx.underlying, (None, 0))[1]


AUTHENTICATORS = _Authenticators()


def make_server(ctx: zmq.Context[Any], socket: AnySocket, keys: CurveKeys) -> None:
    """Make a socket (before bind) a CURVE server; its context's authenticator runs until ``release_server``.

    The authenticator must run before the bind: libzmq admits every CURVE client when no ZAP handler
    answers, so binding first would open a window for any key."""
    AUTHENTICATORS.acquire(ctx, keys.clients)
    socket.curve_secretkey = keys.secret
    socket.curve_publickey = keys.public
    socket.curve_server = True


def release_server(ctx: zmq.Context[Any]) -> None:
    """After closing a socket made by ``make_server``."""
    AUTHENTICATORS.release(ctx)


def make_client(socket: AnySocket, endpoint: str, keys: CurveKeys) -> None:
    """Make a socket (before it connects to ``endpoint``) a CURVE client of that endpoint's server."""
    socket.curve_secretkey = keys.secret
    socket.curve_publickey = keys.public
    socket.curve_serverkey = keys.server_key(endpoint)


def peer_user_id(frame: zmq.Frame) -> str:
    """The ZAP User-Id of the peer that sent a frame (the name of its admitted key), '' without CURVE."""
    try:
        user = frame.get("User-Id")
    except zmq.ZMQError:
        return ""
    return user if isinstance(user, str) else ""


SERVICES = ("gateway_mt5", "strategy_xau", "strategy_btc", "risk", "executor", "telegram")


def create_keys(keys_root: Path, names: tuple[str, ...] = SERVICES) -> list[str]:
    """Key pairs for ``names``: ``keys_root/public/NAME.key`` and ``keys_root/secret/NAME.key_secret`` (owner-only).

    A name whose secret key exists is kept (its public key is already in use elsewhere). Returns the names
    created. A ``.gitignore`` keeps the directory out of version control."""
    public_dir, secret_dir = keys_root / "public", keys_root / "secret"
    public_dir.mkdir(parents=True, exist_ok=True)
    secret_dir.mkdir(mode=0o700, exist_ok=True)
    secret_dir.chmod(0o700)
    (keys_root / ".gitignore").write_text("*\n")
    created = []
    for name in names:
        if (secret_dir / f"{name}.key_secret").exists():
            continue
        public_file, secret_file = (Path(p) for p in zmq.auth.create_certificates(secret_dir, name))
        secret_file.chmod(0o600)
        public_file.replace(public_dir / public_file.name)
        created.append(name)
    return created
