"""ZeroMQ CURVE for links that leave the machine: encryption, and only known clients get in.

The default is ipc or loopback and needs none of this (config validation refuses any other address). To
run the gateway on the Windows machine next to MT5 and the rest elsewhere, its tcp endpoints carry CURVE:

- every process has a key pair in two files made by ``zmq.auth.create_certificates`` (``NAME.key`` public,
  ``NAME.key_secret`` secret), their paths from config;
- the server side runs an authenticator thread (ZAP) that admits only the public keys found in the
  allowed-clients directory; a client without an admitted key completes no handshake and gets nothing;
- the authenticator names each admitted key: the ZAP User-Id is the certificate's file name (``executor``
  for ``executor.key``), which a ROUTER reads from each frame (``peer_user_id``). So "only the executor
  may mutate broker state" rests on the executor's key, not on a routing id any peer can claim.
"""

from __future__ import annotations

from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

CURVE_DOMAIN = "*"


class CurveError(ValueError):
    """A key file that is missing or unreadable, named with its path."""


def load_keys(secret_file: Path) -> tuple[bytes, bytes]:
    """(public, secret) from a ``NAME.key_secret`` certificate file."""
    try:
        public, secret = zmq.auth.load_certificate(secret_file)
    except (OSError, ValueError) as exc:
        raise CurveError(f"{secret_file}: not a readable CURVE secret key file ({exc})") from None
    if secret is None:
        raise CurveError(f"{secret_file}: holds no secret key (use the NAME.key_secret file)")
    return public, secret


def load_public_key(public_file: Path) -> bytes:
    try:
        public, _ = zmq.auth.load_certificate(public_file)
    except (OSError, ValueError) as exc:
        raise CurveError(f"{public_file}: not a readable CURVE public key file ({exc})") from None
    return public


class NamedKeyAuthenticator(ThreadAuthenticator):
    """Admits the public keys of a directory and reports each as the name of its certificate file."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], allowed_clients_dir: Path) -> None:
        super().__init__(context)
        self.names: dict[bytes, str] = {}
        for path in sorted(allowed_clients_dir.glob("*.key")):
            public = load_public_key(path)
            self.names[public] = path.stem
        if not self.names:
            raise CurveError(f"{allowed_clients_dir}: no client public key (*.key) to admit")

    def start(self) -> None:
        super().start()
        self.configure_curve_callback(CURVE_DOMAIN, credentials_provider=self)

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP's question for each handshake: is this client key (z85) admitted?"""
        del domain
        return key in self.names  # load_certificate gives z85 keys too

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The User-Id ZAP gives an admitted client: the name of its key file."""
        return self.names.get(z85.encode(client_public_key), "")


def make_server(socket: zmq.Socket[bytes], secret_file: Path) -> None:
    """Make a socket (before bind) a CURVE server with its own key pair."""
    public, secret = load_keys(secret_file)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True


def make_client(socket: zmq.Socket[bytes], secret_file: Path, server_public_file: Path) -> None:
    """Make a socket (before connect) a CURVE client of the server whose public key is given."""
    public, secret = load_keys(secret_file)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_serverkey = load_public_key(server_public_file)


def peer_user_id(frame: zmq.Frame) -> str:
    """The ZAP User-Id of the peer that sent a frame (the name of its admitted key), '' without CURVE."""
    try:
        user = frame.get("User-Id")
    except zmq.ZMQError:
        return ""
    return user if isinstance(user, str) else ""
