"""Build wire records from values the simulator already guarantees, without re-validating them.

The replay emits one ``Bar`` per M1 bar; pydantic validation (or ``model_construct``, which is slower
still) would cost more than the replay itself. The simulator's bars come from files that
``history.load_m1`` has checked, so their values are known valid. ``construct`` does what
``model_construct`` does for a complete set of fields; a unit test pins that the result equals the
validated model, so a pydantic upgrade that breaks the shortcut fails loudly.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__
_FIELDS: dict[type[BaseModel], set[str]] = {}


def construct(cls: type[M], values: dict[str, Any]) -> M:
    """An instance of ``cls`` holding ``values``, which must name every field in declaration order."""
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = set(cls.model_fields)
        _FIELDS[cls] = fields
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", fields)
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model
