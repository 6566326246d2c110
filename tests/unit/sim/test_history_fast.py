"""The loader's fast path: the line reader's very columns or None, and no heavy imports in the gateway."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.gateway_mt5.sim.history import HistoryError, _read_text, _slow
from services.gateway_mt5.sim.history_fast import read_columns
from tests.unit.sim.helpers import BTC_FILE, REPO, T0, XAU_FILE

CSV_HEADER = "time_utc,open,high,low,close,volume"
MT5_HEADER = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"

# Ways a field can be written: the plain one first, then forms the line reader may accept or refuse.
PRICE_FORMS = [
    "{}", " {}", "{}0", "+{}", "-{}", "{}e0", "{}_1", "", "nan", "inf", "٣{}", "{}.5",
]
COUNT_FORMS = ["{}", "", " ", "{}.5", "{}.49", "nan", "-{}", "1e{}", "{}x"]
TIME_FORMS = ["plain", "no seconds", "leading space", "T separator", "30 s", "same as before", "day 31", "hour 24"]


def _moment(t: int, form: str, previous: int, mt5: bool) -> str:
    """A bar time written the way ``form`` says (MT5: date and time joined by a tab)."""
    if form == "30 s":
        t += 30
    elif form == "same as before":
        t = previous
    when = datetime.fromtimestamp(t, UTC)
    date = when.strftime("%Y.%m.%d" if mt5 else "%Y-%m-%d")
    clock = when.strftime("%H:%M" if form == "no seconds" else "%H:%M:%S")
    if form == "day 31":
        date = date[:-2] + "31" if when.month in (4, 6, 9, 11) else date
    elif form == "hour 24":
        clock = "24" + clock[2:]
    elif form == "leading space":
        date = " " + date
    return f"{date}{'T' if form == 'T separator' else chr(9) if mt5 else ' '}{clock}"


@st.composite
def history_files(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A header and bars, mostly plain, with some fields written in other forms and some odd lines."""
    mt5 = draw(st.booleans())
    odd = st.integers(0, 29).map(lambda roll: roll == 0)  # one draw in thirty takes another form
    lines = [MT5_HEADER if mt5 else CSV_HEADER]
    t = previous = T0
    for _ in range(draw(st.integers(1, 12))):
        t += 60 * draw(st.integers(1, 3))
        low = draw(st.integers(1, 10**6)) / 1000
        o, h, c = (low + draw(st.integers(0, 500)) / 1000 for _ in range(3))
        h = max(o, h, c)
        prices = [draw(st.sampled_from(PRICE_FORMS)) if draw(odd) else "{}" for _ in range(4)]
        fields = [form.format(round(value, 3)) for form, value in zip(prices, (o, h, low, c), strict=True)]
        counts = [(draw(st.sampled_from(COUNT_FORMS)) if draw(odd) else "{}").format(draw(st.integers(0, 99)))
                  for _ in range(2)]
        time_form = draw(st.sampled_from(TIME_FORMS)) if draw(odd) else "plain"
        stamp = _moment(t, time_form, previous, mt5)
        previous = t
        if mt5:
            line = "\t".join([stamp, *fields, counts[0], "0", counts[1]])
            line = line.replace("\t", " ") if draw(odd) else line  # whitespace-separated export
        else:
            line = ",".join([stamp, *fields, "" if draw(st.booleans()) else counts[0]])
            line = line.rsplit(",", 1)[0] if draw(odd) else line  # no volume field
        lines.append(line + ("\textra" if mt5 else ",9") * draw(odd))
        if draw(odd):
            lines.append(" " if draw(st.booleans()) else "")
    return ("mt5" if mt5 else "csv"), lines


@settings(max_examples=400, deadline=None)
@given(case=history_files())
def test_fast_path_gives_the_line_readers_columns_or_none(case: tuple[str, list[str]]) -> None:
    kind, lines = case
    fast = read_columns(kind, lines)
    try:
        slow = _slow(Path("f.csv"), kind, lines)
    except HistoryError:
        assert fast is None, "the fast path accepted a file the line reader refuses"
        return
    if fast is not None:
        for got, want in zip(fast, slow, strict=True):
            assert got.dtype == want.dtype and got.tolist() == want.tolist()


def test_plain_files_take_the_fast_path() -> None:
    """The shipped files (and a plain MT5 export) never fall back to the line reader, which is slower."""
    for path in (XAU_FILE, BTC_FILE):
        lines = _read_text(path).splitlines()
        columns = read_columns("csv", lines)
        assert columns is not None
        assert [c.tolist() for c in columns] == [c.tolist() for c in _slow(path, "csv", lines)]
    mt5 = [MT5_HEADER, "2025.07.09\t17:00:00\t3311.906\t3312.043\t3311.305\t3311.305\t57\t0\t160",
           "2025.07.09\t17:01:00\t3311.344\t3311.871\t3311.344\t3311.441\t43\t0\t180"]
    columns = read_columns("mt5", mt5)
    assert columns is not None
    assert [c.tolist() for c in columns] == [
        [1_752_080_400, 1_752_080_460], [3311.906, 3311.344], [3312.043, 3311.871], [3311.305, 3311.344],
        [3311.305, 3311.441], [57, 43], [160, 180],
    ]


@pytest.mark.parametrize(
    ("kind", "line"),
    [
        ("csv", "2025-02-29 10:00:00,1,1,1,1,"),  # 2025 is no leap year
        ("csv", "2025-07-15 10:00:60,1,1,1,1,"),
        ("csv", "2025-13-15 10:00:00,1,1,1,1,"),
        ("csv", "0000-07-15 10:00:00,1,1,1,1,"),
        ("csv", "2025-07-15 10:00:00,1,1,1,1,1e300"),
        ("mt5", "2025.06.31\t10:00:00\t1\t1\t1\t1\t5\t0\t1"),
    ],
)
def test_impossible_values_are_left_to_the_line_reader(kind: str, line: str) -> None:
    lines = [MT5_HEADER if kind == "mt5" else CSV_HEADER, line]
    assert read_columns(kind, lines) is None


def test_leap_day_and_year_end_are_read() -> None:
    lines = [CSV_HEADER, "2024-02-29 23:59:00,1,1,1,1,", "2024-12-31 23:59:00,1,1,1,1,"]
    columns = read_columns("csv", lines)
    assert columns is not None
    assert columns[0].tolist() == [1_709_251_140, 1_735_689_540]
    assert np.array_equal(columns[0], _slow(Path("f.csv"), "csv", lines)[0])


def test_the_gateway_imports_no_pandas_and_no_terminal_package() -> None:
    """pandas alone was ~40 MB of the gateway's resident memory; the terminal packages load only for their backend."""
    heavy = ["pandas", "MetaTrader5", "mt5linux", "rpyc"]
    code = f"import sys, services.gateway_mt5.runner; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
