"""Loading M1 history: both layouts, and refusals that name the file, the line and the problem."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.gateway_mt5.sim.history import HistoryError, load_m1
from tests.unit.sim.helpers import BTC_FILE, T0, XAU_FILE, stamp

HEADER = "time_utc,open,high,low,close,volume"
MT5_HEADER = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"


def test_shipped_files_load_whole() -> None:
    gold, btc = load_m1(XAU_FILE), load_m1(BTC_FILE)
    assert (len(gold), len(btc)) == (32_520, 48_471)
    assert gold.time[0] == btc.time[0] == 1_752_080_400  # 2025-07-09 17:00 UTC
    assert gold.open[0] == 3311.906 and gold.tick_volume.sum() == 0 and gold.spread is None
    assert btc.close[0] == 109_384.73 and btc.tick_volume[0] == 10  # 10.03735 BTC traded, rounded
    assert (np.diff(gold.time) > 0).all() and (np.diff(btc.time) == 60).all()


def test_mt5_export_layout(tmp_path: Path) -> None:
    text = "\n".join([
        MT5_HEADER,
        "2025.07.09\t17:00:00\t3311.906\t3312.043\t3311.305\t3311.305\t57\t0\t160",
        "2025.07.09\t17:01:00\t3311.344\t3311.871\t3311.344\t3311.441\t43\t0\t180",
    ])
    for name, data in (("utf8.csv", text.encode()), ("utf16.csv", text.encode("utf-16"))):
        path = tmp_path / name
        path.write_bytes(data)
        history = load_m1(path)
        assert history.time.tolist() == [1_752_080_400, 1_752_080_460]
        assert history.close.tolist() == [3311.305, 3311.441]
        assert history.tick_volume.tolist() == [57, 43]
        assert history.spread is not None and history.spread.tolist() == [160, 180]


def test_gzip_is_detected_by_content(tmp_path: Path) -> None:
    path = tmp_path / "bars.dat"
    path.write_bytes(gzip.compress(f"{HEADER}\n{stamp(T0)},1.5,2,1,1.5,\n".encode()))
    assert load_m1(path).open.tolist() == [1.5]


GOOD = f"{stamp(T0)},10,11,9,10,"
NEXT = f"{stamp(T0 + 60)},10,11,9,10,"


@pytest.mark.parametrize(
    ("lines", "line", "problem"),
    [
        ([GOOD, f"{stamp(T0 + 60)},nan,11,9,10,"], 3, "open 'nan' is not a positive finite price"),
        ([GOOD, f"{stamp(T0 + 60)},10,,9,10,"], 3, "could not convert"),
        ([GOOD, GOOD], 3, "duplicate bar"),
        ([NEXT, GOOD], 3, "not sorted"),
        ([GOOD, f"{stamp(T0 + 60)},10,9,11,10,"], 3, "high 9.0 < low 11.0"),
        ([f"{stamp(T0)},12,11,9,10,"], 2, "outside [low 9.0, high 11.0]"),
        ([f"{stamp(T0 + 30)},10,11,9,10,"], 2, "not on a whole minute"),
        ([GOOD, "2025-07-15T10:01:00,10,11,9,10,"], 3, "is not 'YYYY-MM-DD HH:MM:SS'"),
        ([GOOD, f"{stamp(T0 + 60)},10,11,9"], 3, "expected 6 comma-separated fields"),
        ([GOOD, f"{stamp(T0 + 60)},10,11,9,10,-3"], 3, "volume '-3' is not a finite non-negative number"),
        ([f"{stamp(T0)},0,11,0,10,"], 2, "open '0' is not a positive finite price"),
    ],
)
def test_bad_rows_are_refused_naming_file_and_line(
    tmp_path: Path, lines: list[str], line: int, problem: str,
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    with pytest.raises(HistoryError) as caught:
        load_m1(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: line {line}: ")
    assert problem in message


@pytest.mark.parametrize(
    ("content", "problem"),
    [("", "line 1: empty file"), ("date,price\n", "line 1: unknown header"), (HEADER + "\n", "no bars")],
)
def test_bad_files_are_refused(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(HistoryError, match=problem) as caught:
        load_m1(path)
    assert str(path) in str(caught.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="cannot read") as caught:
        load_m1(tmp_path / "nope.csv")
    assert "nope.csv" in str(caught.value)


def test_mt5_layout_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([MT5_HEADER, "2025.07.09\t17:00:00\t1\t2\t1\t1\t5\t0\t100",
                               "2025.07.09\t16:59:00\t1\t2\t1\t1\t5\t0\t100"]))
    with pytest.raises(HistoryError, match=rf"^{path}: line 3: bars not sorted"):
        load_m1(path)


bars = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=90),  # minutes after the previous bar
        st.integers(min_value=1, max_value=10**7),  # low, in ticks
        st.integers(min_value=0, max_value=10**4),  # high - low
        st.floats(min_value=0, max_value=1),  # open within the range
        st.floats(min_value=0, max_value=1),  # close within the range
        st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),  # volume
    ),
    min_size=1, max_size=40,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=bars)
def test_round_trip_of_valid_files(
    tmp_path: Path, rows: list[tuple[int, int, int, float, float, float | None]],
) -> None:
    t = T0
    lines, expected = [HEADER], []
    for gap, low, span, o, c, volume in rows:
        t += 60 * gap
        lo, hi = low / 1000, (low + span) / 1000
        op, cl = round(lo + o * (hi - lo), 3), round(lo + c * (hi - lo), 3)
        lines.append(f"{stamp(t)},{op},{hi},{lo},{cl},{'' if volume is None else volume}")
        expected.append((t, op, hi, lo, cl, 0 if volume is None else int(np.floor(volume + 0.5))))
    path = tmp_path / "ok.csv"
    path.write_text("\n".join(lines) + "\n")
    history = load_m1(path)
    got = list(zip(history.time.tolist(), history.open.tolist(), history.high.tolist(), history.low.tolist(),
                   history.close.tolist(), history.tick_volume.tolist(), strict=True))
    assert got == expected
