"""Key pairs for the CURVE tests: the services' keys laid out as deploy/curve_keys.py makes them, and an
intruder whose key pair is valid but not admitted."""

from __future__ import annotations

from pathlib import Path

import zmq
import zmq.auth

from shared.curve import CurveKeys, create_keys

NAMES = ("gateway_mt5", "risk", "executor", "telegram")


class Keyring:
    def __init__(self, root: Path) -> None:
        self.root = root / "keys"
        create_keys(self.root, NAMES)
        outside = root / "outside"
        outside.mkdir()
        zmq.auth.create_certificates(outside, "intruder")
        self.intruder_secret = outside / "intruder.key_secret"
        self.public_dir = self.root / "public"

    def keys(self, name: str, servers: dict[str, str] | None = None) -> CurveKeys:
        """``name``'s keys; ``servers`` maps each endpoint it connects to onto the key name of its server."""
        secret = self.intruder_secret if name == "intruder" else self.root / "secret" / f"{name}.key_secret"
        files = {endpoint: self.public_dir / f"{server}.key" for endpoint, server in (servers or {}).items()}
        return CurveKeys.load(name, secret, self.public_dir, files)


def last_endpoint(socket: zmq.Socket[bytes]) -> str:
    """The endpoint a socket bound to ``tcp://127.0.0.1:*`` got."""
    endpoint = socket.getsockopt(zmq.LAST_ENDPOINT)
    assert isinstance(endpoint, bytes)
    return endpoint.decode()
