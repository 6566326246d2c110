"""The M1 loader's fast path: a plain file's columns in a few vectorised passes (numpy only, no pandas).

``read_columns`` returns exactly the columns the line-by-line reader of ``history.py`` builds from the same
lines, or None as soon as the file strays from the plain layout; the line reader then runs and either reads
the file or names its first bad line. Plain means: no blank line, every line with the same fields
(``time_utc,open,high,low,close[,volume]``, or MT5's nine tab-separated ones), fixed-width times
(``2025-07-09 17:00:00``; MT5: ``2025.07.09`` and ``17:00:00``) and valid bars.

Numbers: numpy fills a float64 array from ``str`` objects by calling ``float()`` on each, which is what the
line reader does, so the values are the same to the bit and a field ``float()`` refuses raises here too.
Pandas was used before; importing it alone cost the gateway about 40 MB resident and 0.3 s.
"""

from __future__ import annotations

from itertools import repeat

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Columns = tuple[Ints, Floats, Floats, Floats, Floats, Ints, Ints]
"""time (bar open, epoch s), open, high, low, close, tick volume, spread (0 for the shipped layout)."""

_EXACT_COUNT_LIMIT = 2.0**53  # floats above it skip integers: leave such counts to the line reader


def _digits(texts: list[str], layout: str) -> Ints | None:
    """The digits of fixed-width texts, one row per text, or None unless every text matches ``layout``
    ('9' stands for a digit, any other character for itself)."""
    width = len(layout)
    if set(map(len, texts)) != {width}:
        return None
    joined = "".join(texts)
    if not joined.isascii():
        return None
    chars = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(len(texts), width)
    is_digit = np.array([char == "9" for char in layout])
    literal = np.frombuffer(layout.encode("ascii"), dtype=np.uint8)
    if (chars[:, ~is_digit] != literal[~is_digit]).any():
        return None
    digits = chars[:, is_digit].astype(np.int64) - ord("0")
    return digits if ((digits >= 0) & (digits <= 9)).all() else None


def _number(digits: Ints, start: int, count: int) -> Ints:
    """The decimal number written by ``count`` digit columns from ``start``."""
    weights = 10 ** np.arange(count - 1, -1, -1, dtype=np.int64)
    return digits[:, start:start + count] @ weights


def _epoch_seconds(date: Ints, clock: Ints) -> Ints | None:
    """Epoch seconds of (YYYYMMDD, hhmmss) digit rows; None if any date or time does not exist."""
    year, month, day = _number(date, 0, 4), _number(date, 4, 2), _number(date, 6, 2)
    hour, minute, second = _number(clock, 0, 2), _number(clock, 2, 2), _number(clock, 4, 2)
    if ((year < 1) | (month < 1) | (month > 12) | (hour > 23) | (minute > 59) | (second > 59)).any():
        return None
    months = (year - 1970) * 12 + (month - 1)  # months since 1970-01, what datetime64[M] counts
    first = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    month_days = (months + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - first
    if ((day < 1) | (day > month_days)).any():
        return None
    return (first + day - 1) * 86_400 + hour * 3600 + minute * 60 + second


def _prices(texts: list[str]) -> Floats | None:
    try:
        values = np.array(texts, dtype=np.float64)
    except ValueError:
        return None
    return values if (np.isfinite(values) & (values > 0)).all() else None


def _counts(texts: list[str]) -> Ints | None:
    """Volumes or spreads: an empty field is 0, any other a finite non-negative number rounded half up."""
    if not any(texts):  # all empty, like gold's volume in the shipped files
        return np.zeros(len(texts), dtype=np.int64)
    try:
        values = np.array(texts, dtype=np.float64)
    except ValueError:  # some empty among numbers, or not a number: the line reader decides
        return None
    if not (np.isfinite(values) & (values >= 0) & (values < _EXACT_COUNT_LIMIT)).all():
        return None
    return np.floor(values + 0.5).astype(np.int64)


def _valid_bars(t: Ints, o: Floats, h: Floats, lo: Floats, c: Floats) -> bool:
    """The line reader's checks of each bar (``history._problem``), over whole columns."""
    return not (
        (t % 60).any() or (np.diff(t) <= 0).any() or (h < lo).any()
        or (h < np.maximum(o, c)).any() or (lo > np.minimum(o, c)).any()
    )


def read_columns(kind: str, lines: list[str]) -> Columns | None:
    """The columns of a plain file (``lines`` from the header on), or None: see the module docstring."""
    body = lines[1:]
    rows = len(body)
    if rows == 0:
        return None
    sep = "\t" if kind == "mt5" else ","
    width = body[0].count(sep) + 1
    if width != (9 if kind == "mt5" else 6) and not (kind == "csv" and width == 5):
        return None
    if set(map(str.count, body, repeat(sep, rows))) != {width - 1}:
        return None  # a line with other fields, or a blank one
    fields = sep.join(body).split(sep)
    if kind == "mt5":
        date, clock = _digits(fields[0::9], "9999.99.99"), _digits(fields[1::9], "99:99:99")
        prices = [_prices(fields[column::9]) for column in range(2, 6)]
        volume, spread = _counts(fields[6::9]), _counts(fields[8::9])
    else:
        stamp = _digits(fields[0::width], "9999-99-99 99:99:99")
        date, clock = (None, None) if stamp is None else (stamp[:, :8], stamp[:, 8:])
        prices = [_prices(fields[column::width]) for column in range(1, 5)]
        volume = _counts(fields[5::6]) if width == 6 else np.zeros(rows, dtype=np.int64)
        spread = np.zeros(rows, dtype=np.int64)
    del fields
    if date is None or clock is None or volume is None or spread is None:
        return None
    times = _epoch_seconds(date, clock)
    o, h, lo, c = prices
    if times is None or o is None or h is None or lo is None or c is None or not _valid_bars(times, o, h, lo, c):
        return None
    return times, o, h, lo, c, volume, spread
