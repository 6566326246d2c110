"""supervisord's XML-RPC interface on its unix socket, for /status, /restart and the service alerts.

Only the unix socket main.py configures (``run_dir/supervisor.sock``, user "portfolio", password in
``run_dir/supervisor.secret``) is ever used: never a TCP port, so the control interface stays local.
The password is read at each call, so a secret created after our start is found, and it never
reaches a log or an exception text of ours.

xmlrpc.client is blocking; every call runs in a worker thread with a socket timeout, so a hung
supervisord costs a timeout, never a frozen event loop.
"""

from __future__ import annotations

import asyncio
import socket
import xmlrpc.client
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport, UnixStreamHTTPConnection

from services.telegram.watch import ProcessInfo

USERNAME = "portfolio"
SOCKET_NAME = "supervisor.sock"
SECRET_NAME = "supervisor.secret"


class SupervisorError(Exception):
    """supervisord could not be asked or refused; the text is safe to show the owner."""


class _TimedUnixConnection(UnixStreamHTTPConnection):  # type: ignore[misc]
    """supervisor's unix-socket HTTP connection, with a timeout on connect and on every read."""

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socketfile)


class _TimedTransport(SupervisorTransport):  # type: ignore[misc]
    def __init__(self, password: str, socket_path: Path, timeout_s: float) -> None:
        super().__init__(USERNAME, password, f"unix://{socket_path}")

        def get_connection() -> _TimedUnixConnection:
            connection = _TimedUnixConnection("localhost", timeout=timeout_s)
            connection.socketfile = str(socket_path)
            return connection

        self._get_connection = get_connection


class SupervisorClient:
    """Reads process states and restarts one program, through the local control socket."""

    def __init__(self, run_dir: Path, timeout_s: float = 10.0) -> None:
        self.socket_path = run_dir / SOCKET_NAME
        self.secret_path = run_dir / SECRET_NAME
        self.timeout_s = timeout_s

    async def processes(self) -> list[ProcessInfo]:
        """Every program supervisord runs, in its order."""
        infos = await asyncio.to_thread(self._call, "getAllProcessInfo")
        return [ProcessInfo.from_xmlrpc(info) for info in infos]

    async def restart(self, name: str) -> tuple[ProcessInfo, ProcessInfo]:
        """Stop ``name`` if it runs, start it (supervisorctl restart); its state before and after."""
        return await asyncio.to_thread(self._restart, name)

    def _restart(self, name: str) -> tuple[ProcessInfo, ProcessInfo]:
        before = ProcessInfo.from_xmlrpc(self._call("getProcessInfo", name))
        try:
            self._call("stopProcess", name, True)
        except SupervisorError as exc:
            if "NOT_RUNNING" not in str(exc):
                raise
        try:
            self._call("startProcess", name, True)
        except SupervisorError as exc:
            if "ALREADY_STARTED" not in str(exc):  # autorestart was quicker than us: it runs, fine
                raise
        return before, ProcessInfo.from_xmlrpc(self._call("getProcessInfo", name))

    def _call(self, method: str, *args: object) -> Any:
        if not self.socket_path.exists():
            raise SupervisorError(f"no control socket at {self.socket_path} (not running under supervisord?)")
        try:
            password = self.secret_path.read_text().strip()
        except OSError as exc:
            raise SupervisorError(f"cannot read {self.secret_path.name}: {exc.strerror}") from None
        proxy = xmlrpc.client.ServerProxy("http://127.0.0.1",
                                          transport=_TimedTransport(password, self.socket_path, self.timeout_s))
        try:
            return getattr(proxy.supervisor, method)(*args)
        except xmlrpc.client.Fault as fault:
            raise SupervisorError(f"supervisord refused {method}: {fault.faultString}") from None
        except xmlrpc.client.ProtocolError as exc:
            raise SupervisorError(f"supervisord answered HTTP {exc.errcode} {exc.errmsg}") from None
        except (OSError, TimeoutError) as exc:
            raise SupervisorError(f"supervisord not reachable: {type(exc).__name__}: {exc}") from None
