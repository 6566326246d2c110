"""Helpers every multi-process test shares."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(what: str, fetch: Callable[[], T | None], timeout_s: float = 15.0) -> T:
    """Poll ``fetch`` until it returns something (not None), with a deadline; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fetch()
        if value is not None:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
