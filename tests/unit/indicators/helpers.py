"""Comparison helpers shared by the indicator tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def assert_same_warmup(name: str, actual: FloatArray, expected: FloatArray) -> None:
    """Both series are NaN at exactly the same bars (the warm-up), so values start on the same bar."""
    actual_nan, expected_nan = np.isnan(actual), np.isnan(expected)
    if not np.array_equal(actual_nan, expected_nan):
        first = int(np.argmax(actual_nan != expected_nan))
        raise AssertionError(
            f"{name}: NaN pattern differs first at bar {first}: ours={actual[first]!r} reference={expected[first]!r}"
        )


def assert_close(name: str, actual: FloatArray, expected: FloatArray, *, rel: float = 0.0, abs_: float = 0.0) -> None:
    """Same warm-up, then |actual - expected| <= max(rel * |expected|, abs_) on every later bar."""
    assert len(actual) == len(expected), f"{name}: lengths {len(actual)} != {len(expected)}"
    assert_same_warmup(name, actual, expected)
    known = ~np.isnan(expected)
    assert known.any(), f"{name}: no values after the warm-up, the comparison would be empty"
    diff = np.abs(actual[known] - expected[known])
    allowed = np.maximum(rel * np.abs(expected[known]), abs_)
    bad = diff > allowed
    if bad.any():
        i = int(np.flatnonzero(known)[np.argmax(bad)])
        worst = float((diff / np.maximum(np.abs(expected[known]), 1e-300)).max())
        raise AssertionError(
            f"{name}: bar {i} ours={actual[i]!r} reference={expected[i]!r} "
            f"({int(bad.sum())} bars out of tolerance; worst relative difference {worst:.3g})"
        )
