"""Per-service logging to Logs/<service>.log (and stderr when not under supervisord), secrets redacted.

One file per service, rotated by size. Every handler carries a filter that replaces any registered
secret value with '***' in the final text, whatever logger produced it (httpx and python-telegram-bot
log request URLs that contain the bot token; we also quiet them to WARNING).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path

FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
NOISY_LOGGERS = ("httpx", "httpcore", "telegram", "apscheduler")


class RedactSecrets(logging.Filter):
    """Replaces secret values in the formatted message (and args) of every record."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.redact(record.getMessage())
            record.args = None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True


def setup_logging(service: str, logs_dir: Path, secrets: list[str], level: int = logging.INFO) -> logging.Logger:
    """Configure the root logger for one service process; returns the service's logger."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter(FORMAT, DATE_FORMAT)
    formatter.converter = time.gmtime
    redact = RedactSecrets(secrets)
    file_handler = logging.handlers.RotatingFileHandler(
        logs_dir / f"{service}.log", maxBytes=20 * 1024 * 1024, backupCount=5, encoding="utf-8"
    )
    handlers: list[logging.Handler] = [file_handler]
    # Under supervisord stderr goes to Logs/<service>.console.log: keep that file for what logging
    # cannot catch (a crash before logging starts) instead of a second copy of every line.
    if not os.environ.get("SUPERVISOR_ENABLED"):
        handlers.append(logging.StreamHandler(sys.stderr))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redact)
        root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return logging.getLogger(f"services.{service}")  # not "telegram": that name is the library's logger


def append_line(path: Path, line: str) -> None:
    """Append one line to a plain log file (the health log), creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
