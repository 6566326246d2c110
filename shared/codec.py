"""The wire codec: pydantic message <-> msgpack bytes, with size limits and validation on receipt.

Every received frame goes through ``decode``. It refuses, with a ``DecodeError`` whose ``reason`` is a
short stable label (for drop counters) and whose text says what was wrong, anything that is not a
valid message of this protocol version: oversize frames, bytes that are not msgpack, a top level that
is not a map, unknown types, other versions, extra or missing fields, wrong types, NaN/inf, impossible
prices, and values of the wrong type (validation is strict: "1.5" is not a price). The service counts
and logs the drop and goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
from pydantic import TypeAdapter, ValidationError

from shared.messages import PROTOCOL_VERSION, AnyMessage, Message

MAX_FRAME_BYTES = 4 * 1024 * 1024
_ADAPTER: TypeAdapter[AnyMessage] = TypeAdapter(AnyMessage)
Observer = Callable[[str, Message], None]
_observer: Observer | None = None  # benchmarks only (shared/stamps.py): told of each message sent and received


def observe(observer: Observer | None) -> None:
    """Call ``observer("send", message)`` before each encode and ``("recv", message)`` after each decode."""
    global _observer  # noqa: PLW0603  (one per process, set once at start by shared/stamps.py)
    _observer = observer


class DecodeError(ValueError):
    """A frame that is not a valid message; ``reason`` is a short label for counters."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def encode(message: Message) -> bytes:
    """Serialise a message for the wire (msgpack map of its fields)."""
    if _observer is not None:
        _observer("send", message)
    data: bytes = msgpack.packb(message.model_dump(mode="python"), use_bin_type=True)
    if len(data) > MAX_FRAME_BYTES:
        raise ValueError(f"{message.__class__.__name__} is {len(data)} bytes, over {MAX_FRAME_BYTES}")
    return data


def decode(frame: bytes) -> AnyMessage:
    """Parse and validate one frame; raise DecodeError on anything that is not a valid message."""
    if len(frame) > MAX_FRAME_BYTES:
        raise DecodeError("oversize", f"{len(frame)} bytes, limit {MAX_FRAME_BYTES}")
    try:
        obj: Any = msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            use_list=False,  # arrays as tuples, which is what the models hold (and strict mode requires)
        )
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise DecodeError("not_msgpack", f"{type(exc).__name__}: {exc}") from None
    if not isinstance(obj, dict):
        raise DecodeError("not_a_map", f"top level is {type(obj).__name__}")
    version = obj.get("v")
    if version != PROTOCOL_VERSION:
        raise DecodeError("bad_version", f"version {version!r}, this service speaks {PROTOCOL_VERSION}")
    try:
        # Strict: no coercion. A string where a number belongs is a wrong type, not a number to parse (lax
        # parsing turned "999...9" into an int too big to re-encode, which crashed the forwarding service).
        message = _ADAPTER.validate_python(obj, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first.get("type") == "union_tag_invalid" or first.get("type") == "union_tag_not_found":
            raise DecodeError("unknown_type", f"type {obj.get('type')!r}") from None
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise DecodeError("invalid", f"{obj.get('type')!r} {where}: {first.get('msg')}") from None
    if _observer is not None:
        _observer("recv", message)
    return message
