"""Benchmarks only: where a bar's order spends its time, from a stamp at every send and receive on its path.

With ``PORTFOLIO_BENCH_DIR`` set (``bench/bench_pipeline.py`` sets it; never set in production) each service
appends one line to ``<dir>/stamps-<service>.txt`` for every message on the bar -> order path it encodes
or decodes::

    send Bar XAU1752080400 81234.567890        (kind, type, bar tag, time.perf_counter())

``perf_counter`` is CLOCK_MONOTONIC on Linux, one clock for every process of the machine, so stamps of
different services compare directly. The tag names the bar a message descends from (``bar_tag``: the
prefix of plan ids and leg ids), so the bench follows one bar from its publication by the gateway
(encode) to its signal, its plan and its order_send decoded by the gateway, hop by hop. A send is stamped
before the message is serialised and a receive after it is validated, so a service's "work" between its
receive and its send excludes its codec, and each hop carries both ends' codec (msgpack and pydantic) as
well as the transport. Cost when on: about 3 µs a line (one line-buffered write); when off, one ``None``
test per encode and decode (``shared/codec.py``). A stamp that cannot be written (a full disk) stops the
stamping, never the service.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import TextIO

from shared import codec
from shared.messages import Bar, Message, OrderPlan, OrderSendRequest, Signal, bar_tag

log = logging.getLogger(__name__)

BENCH_DIR_VARIABLE = "PORTFOLIO_BENCH_DIR"
FILE_PATTERN = "stamps-{service}.txt"
LEG_ID = re.compile(r"^([A-Za-z0-9]{1,3}\d+)[bs]-\d+$")  # "XAU1752080400b-1": bar tag, side, leg number


def tag_of(message: Message) -> str | None:
    """The bar tag of a message on the bar -> order path ("XAU1752080400"); None for any other message."""
    if isinstance(message, Bar):
        return bar_tag(message.symbol, message.time) if message.timeframe == "M1" else None
    if isinstance(message, Signal):
        return bar_tag(message.symbol, message.bar_time)
    if isinstance(message, OrderPlan):
        return message.plan_id[:-1]  # plan id = bar tag + side letter (services/risk/core.py plan_id_for)
    if isinstance(message, OrderSendRequest):  # an entry's comment is its leg id; a close has another comment
        leg = LEG_ID.match(message.request.comment)
        return leg.group(1) if leg else None
    return None


def bar_time_of(tag: str) -> int:
    """The bar's open time in a tag ("XAU1752080400" -> 1752080400): its last ten digits, since the symbol's
    prefix may end in a digit ("US3" of US30) and a bar time of this era has ten (2001 to 2286)."""
    return int(tag[-10:])


class StampFile:
    """Writes the stamps of one process (``codec.observe`` calls ``stamp`` for every message)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._out: TextIO = path.open("a", buffering=1)  # one write per line

    def stamp(self, kind: str, message: Message) -> None:
        at = time.perf_counter()  # first: the time of the send or the receive, not of this bookkeeping
        tag = tag_of(message)
        if tag is None:
            return
        try:
            self._out.write(f"{kind} {type(message).__name__} {tag} {at:.6f}\n")
        except OSError as exc:  # the bench loses its figures; the service must not lose a message
            log.warning("stamps: cannot write %s (%s); stamping stops", self.path, exc)
            codec.observe(None)

    def close(self) -> None:
        self._out.close()


def install_from_environment(service: str) -> StampFile | None:
    """Start stamping this process's messages if the bench asked for it; None (and nothing done) otherwise."""
    directory = os.environ.get(BENCH_DIR_VARIABLE, "")
    if not directory:
        return None
    stamps = StampFile(Path(directory) / FILE_PATTERN.format(service=service))
    codec.observe(stamps.stamp)
    return stamps
