"""A single-instance lock: two gateways never drive one terminal, nor one trading account.

An exclusive, non-blocking lock on a file in paths.run_dir, held for the life of the gateway (the
operating system drops it when the process dies, however it dies, so a crash leaves no stale lock).
One lock is keyed by the terminal (the terminal64.exe path, or the mt5linux bridge's host:port), one by
the account; the login is hashed into the file name, so no secret is written to disk in clear.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path


class LockHeld(Exception):  # noqa: N818 (a state)
    """Another live process holds the lock."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def terminal_lock_name(backend: str, path: str, host: str, port: int) -> str:
    """The lock file name of one terminal."""
    where = f"{host}:{port}" if backend == "mt5linux" else (os.path.normcase(path) or "default")
    return f"gateway-terminal-{backend}-{_digest(where)}.lock"


def account_lock_name(login: int, server: str) -> str:
    """The lock file name of one trading account (hashed: the login is a secret)."""
    return f"gateway-account-{_digest(f'{login}@{server}')}.lock"


class InstanceLock:
    """An exclusive lock on ``path``; ``acquire`` raises LockHeld naming the holder's pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise LockHeld at once (never waits)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _lock(fd)
        except OSError:
            try:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            except OSError:  # Windows: the holder's locked byte cannot be read
                holder = "?"
            os.close(fd)
            raise LockHeld(f"{self.path} is held by process {holder}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases it). The file stays: deleting it would race."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None


def gateway_locks(
    run_dir: Path, *, backend: str, path: str, host: str, port: int, login: int, server: str,
) -> list[InstanceLock]:
    """Take the terminal's lock, then the account's; LockHeld saying which one is taken (none kept then)."""
    locks = [InstanceLock(run_dir / terminal_lock_name(backend, path, host, port)),
             InstanceLock(run_dir / account_lock_name(login, server))]
    for index, lock in enumerate(locks):
        try:
            lock.acquire()
        except LockHeld as exc:
            for held in locks[:index]:
                held.release()
            what = "terminal" if index == 0 else "trading account"
            raise LockHeld(f"another gateway already drives this {what}: {exc}") from None
    return locks


if sys.platform == "win32":  # the mt5 backend runs on Windows
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
