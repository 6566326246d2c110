"""Execution reports into a symbol's book: the fill counts and cooldown, the latency pauses, the monitor.

Three things come out of each report, all in market time and all configured per symbol ([execution]):

- the latency breaker: one leg slower than ``rtt_cb_ms`` pauses new orders for ``exec_breaker_sec``;
- the cooldown after high latency: one leg slower than ``latency_rtt_ms_limit`` pauses them for
  ``cooldown_after_latency_s`` (0 for either limit turns it off);
- the monitor: over the last ``exec_window`` reports (once ``exec_min_samples`` are in), a p95 latency above
  ``exec_max_p95_latency_ms``, a p95 adverse slippage above ``exec_max_p95_slippage_points``, an EWMA of the
  adverse slippage above ``exec_max_ewma_slippage_points`` or a share of rejected/unknown legs above
  ``exec_max_reject_rate`` pauses the symbol for ``exec_breaker_sec``. A pause starts a fresh window, so the
  same old samples cannot pause the symbol again the moment the pause ends.

Slippage counts only when it hurt (points worse than asked, from filled legs); a better fill is 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from services.risk.store import RiskStore, SymbolBook
from shared.messages import ExecutionReport
from shared.symbol_config import ExecutionTable, SymbolConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExecSample:
    """One report as the monitor sees it."""

    latency_ms: float
    slippage_points: float  # adverse only, >= 0
    failed: bool  # rejected or unknown

    @classmethod
    def of(cls, report: ExecutionReport) -> ExecSample:
        filled = report.status == "filled"
        return cls(report.latency_ms, max(0.0, report.slippage_points) if filled else 0.0, not filled)


def p95(values: Sequence[float]) -> float:
    """The 95th percentile by nearest rank (the largest value for fewer than 20 samples)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def next_ewma(previous: float, value: float, alpha: float) -> float:
    return alpha * value + (1.0 - alpha) * previous


def quality_problem(samples: Sequence[ExecSample], ewma_slippage: float, cfg: ExecutionTable) -> str | None:
    """Why the window's execution is too poor to go on trading, or None."""
    if len(samples) < cfg.exec_min_samples:
        return None
    latency = p95([s.latency_ms for s in samples])
    if latency > cfg.exec_max_p95_latency_ms:
        return f"p95 latency {latency:.0f} ms > {cfg.exec_max_p95_latency_ms:g} ms"
    filled = [s.slippage_points for s in samples if not s.failed]
    slippage = p95(filled)
    if filled and slippage > cfg.exec_max_p95_slippage_points:
        return f"p95 slippage {slippage:g} points > {cfg.exec_max_p95_slippage_points:g}"
    if ewma_slippage > cfg.exec_max_ewma_slippage_points:
        return f"slippage EWMA {ewma_slippage:.1f} points > {cfg.exec_max_ewma_slippage_points:g}"
    rate = sum(s.failed for s in samples) / len(samples)
    if rate > cfg.exec_max_reject_rate:
        return f"reject rate {rate:.0%} > {cfg.exec_max_reject_rate:.0%} over {len(samples)} legs"
    return None


def latency_pauses(sample: ExecSample, cfg: ExecutionTable) -> tuple[float, float]:
    """(breaker seconds, cooldown seconds) one leg's latency calls for; 0 where it calls for none."""
    breaker = cfg.exec_breaker_sec if cfg.rtt_cb_ms and sample.latency_ms >= cfg.rtt_cb_ms else 0.0
    cooldown = (float(cfg.cooldown_after_latency_s)
                if cfg.latency_rtt_ms_limit and sample.latency_ms >= cfg.latency_rtt_ms_limit else 0.0)
    return breaker, cooldown


def take_report(report: ExecutionReport, book: SymbolBook, config: SymbolConfig, store: RiskStore, at: float) -> None:
    """Everything one report changes, at market time ``at``, once per (leg, status): a fill counts (open
    positions, the hourly throttle) and starts the cooldown; every report feeds the latency pauses and the
    monitor's window; a filled one the slippage EWMA."""
    if not store.first_report(report.leg_id, report.status, at):
        log.warning("execution report %s %s seen before; not counted twice", report.leg_id, report.status)
        return
    execution = config.execution
    if report.status == "filled":
        store.record_fill(report.leg_id, report.symbol, report.ticket, at)
        book.cooldown_until = max(book.cooldown_until, at + config.limits.cooldown_seconds)
    sample = ExecSample.of(report)
    breaker, cooldown = latency_pauses(sample, execution)
    if breaker:
        book.latency_breaker_until = max(book.latency_breaker_until, at + breaker)
    if cooldown:
        book.latency_cooldown_until = max(book.latency_cooldown_until, at + cooldown)
    if breaker or cooldown:
        log.warning("%s leg %s took %.0f ms: latency pause", report.symbol, report.leg_id, sample.latency_ms)
    if not sample.failed:
        book.ewma_slippage = next_ewma(book.ewma_slippage, sample.slippage_points, execution.exec_ewma_alpha)
    store.add_sample(report.symbol, sample.latency_ms, sample.slippage_points, sample.failed,
                     keep=execution.exec_window)
    problem = quality_problem([ExecSample(*row) for row in store.samples(report.symbol)], book.ewma_slippage,
                              execution)
    if problem is not None:
        book.exec_paused_until = max(book.exec_paused_until, at + execution.exec_breaker_sec)
        book.exec_pause_reason = problem
        book.ewma_slippage = 0.0
        store.clear_samples(report.symbol)
        log.warning("%s paused for %gs by the execution-quality monitor: %s", report.symbol,
                    execution.exec_breaker_sec, problem)
    store.save_book(report.symbol, book)
