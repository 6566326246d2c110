"""The per-call timer the benchmark scripts share (imported as ``timing`` from a script in bench/)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt


def timed(step: Callable[[int], object], indices: range | list[int]) -> npt.NDArray[np.float64]:
    """Run ``step(i)`` for each index; the wall time of each call in microseconds."""
    clock = time.perf_counter_ns
    out = np.empty(len(indices), dtype=np.float64)
    for k, i in enumerate(indices):
        start = clock()
        step(i)
        out[k] = clock() - start
    return out / 1000.0
