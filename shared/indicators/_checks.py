"""Input checks shared by the batch functions: one clear error naming what is wrong."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Int8Array = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]


def check_period(name: str, value: int, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum``; otherwise raise a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_multiple(name: str, value: float) -> float:
    """Return ``value`` as float if it is finite and >= 0 (ATR multiples, buffers); else raise."""
    result = float(value)
    if not np.isfinite(result) or result < 0.0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return result


def as_series(name: str, values: npt.ArrayLike, *, allow_nan: bool = False) -> FloatArray:
    """``values`` as a 1-D float64 array; non-finite values raise unless ``allow_nan``.

    ``allow_nan`` is for inputs that carry warm-up NaNs themselves (ATR, oscillators): a NaN there
    means "not known yet" and the caller treats it so. Infinities are refused either way.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    bad = np.isinf(array) if allow_nan else ~np.isfinite(array)
    if bad.any():
        index = int(np.argmax(bad))
        raise ValueError(f"{name} must be finite; index {index} holds {array[index]!r}")
    return array


def same_length(**arrays: FloatArray) -> int:
    """The common length of ``arrays``; raise naming the lengths when they differ."""
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs must have the same length, got {lengths}")
    return next(iter(lengths.values()))
