"""Service alerts from supervisord's process states: snapshots in, texts for the owner out.

The runner polls supervisord at a cadence and hands every snapshot to ``ServiceWatch.update``. A
service that goes to EXITED, FATAL, BACKOFF or STOPPED is reported, and so is a restart (the same
program RUNNING again with another pid). A crash loop must not become a message flood: each service
gets at most one alert per ``alert_interval_s``; what happens in between is counted and summed up in
one later line ("keeps restarting: 7 restarts in the last 10 min"), so nothing is silent either.

Restarts the owner asked for (/restart) are announced by the command itself; ``expect`` keeps the
watch from reporting them a second time. Pure: no XML-RPC here, time from the injected clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.clock import Clock

BAD_STATES = frozenset({"EXITED", "FATAL", "BACKOFF", "STOPPED"})
RESTART_WINDOW_S = 600.0
LOOP_THRESHOLD = 3  # restarts within RESTART_WINDOW_S that make a crash loop


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One program as supervisord's getAllProcessInfo reports it (the fields we use)."""

    name: str
    state: str  # statename: RUNNING, STARTING, BACKOFF, STOPPING, STOPPED, EXITED, FATAL, UNKNOWN
    pid: int = 0
    description: str = ""
    exitstatus: int = 0
    spawnerr: str = ""

    @classmethod
    def from_xmlrpc(cls, info: dict[str, object]) -> ProcessInfo:
        """From one dict of supervisor.getAllProcessInfo()."""
        def number(key: str) -> int:
            value = info.get(key, 0)
            return value if isinstance(value, int) else 0
        return cls(name=str(info.get("name", "?")), state=str(info.get("statename", "UNKNOWN")),
                   pid=number("pid"), description=str(info.get("description", "")),
                   exitstatus=number("exitstatus"), spawnerr=str(info.get("spawnerr", "")))


@dataclass(slots=True)
class _Tracked:
    info: ProcessInfo
    last_running_pid: int = 0
    restarts: deque[float] = field(default_factory=deque)
    last_alert_at: float | None = None
    held: int = 0  # events since the last alert, not yet told
    expected_until: float = 0.0


def describe_state(info: ProcessInfo) -> str:
    """'FATAL (Exited too quickly)', 'EXITED (exit status 3, Jul 09 05:00 PM)', 'RUNNING (pid 12, uptime 0:01:02)'.

    supervisord's description of a stopped or exited program is the time it stopped.
    """
    detail = info.spawnerr or info.description
    if info.state == "EXITED":
        detail = ", ".join(part for part in (f"exit status {info.exitstatus}", detail) if part)
    elif info.state == "STOPPED" and detail and not info.spawnerr:
        detail = f"since {detail}"
    return f"{info.state} ({detail})" if detail else info.state


class ServiceWatch:
    """Turns successive process snapshots into alerts, throttled per service."""

    def __init__(self, clock: Clock, alert_interval_s: float = 60.0) -> None:
        self.clock = clock
        self.alert_interval_s = alert_interval_s
        self._tracked: dict[str, _Tracked] = {}
        self._unreachable_since: float | None = None
        self._reachable_once = False

    def expect(self, name: str, seconds: float = 60.0) -> None:
        """The owner restarts ``name`` now: its stop and restart within ``seconds`` are no news."""
        tracked = self._tracked.get(name)
        if tracked is not None:
            tracked.expected_until = self.clock.monotonic() + seconds

    def update(self, infos: Sequence[ProcessInfo]) -> list[str]:
        """Alerts for what changed since the last snapshot (and summaries now due)."""
        now = self.clock.monotonic()
        texts: list[str] = []
        if self._unreachable_since is not None:
            texts.append("supervisord answers again; service alerts are back on.")
            self._unreachable_since = None
        first_snapshot = not self._reachable_once
        self._reachable_once = True
        for info in infos:
            tracked = self._tracked.get(info.name)
            if tracked is None:
                tracked = self._tracked[info.name] = _Tracked(info)
                if info.state == "RUNNING":
                    tracked.last_running_pid = info.pid
                if info.state in BAD_STATES - {"STOPPED"}:  # a program never started is not news
                    when = "at start" if first_snapshot else "new program"
                    texts.extend(self._event(tracked, f"Service {info.name} is {describe_state(info)} ({when}).",
                                             now))
                continue
            texts.extend(self._changed(tracked, info, now))
        for tracked in self._tracked.values():
            texts.extend(self._summary_due(tracked, now))
        return texts

    def unreachable(self, reason: str) -> list[str]:
        """supervisord did not answer: say so once (service alerts are blind until it answers)."""
        if self._unreachable_since is not None:
            return []
        self._unreachable_since = self.clock.monotonic()
        return [f"Cannot read service states from supervisord ({reason}); service alerts are off until "
                "it answers."]

    def _changed(self, tracked: _Tracked, info: ProcessInfo, now: float) -> list[str]:
        previous = tracked.info
        tracked.info = info
        expected = now < tracked.expected_until
        if info.state == "RUNNING" and info.pid and info.pid != tracked.last_running_pid:
            restarted = tracked.last_running_pid != 0
            old_pid, tracked.last_running_pid = tracked.last_running_pid, info.pid
            if restarted and not expected:
                tracked.restarts.append(now)
                return self._event(tracked, f"Service {info.name} restarted (pid {old_pid} -> {info.pid}).", now)
            return []
        if info.state != previous.state and info.state in BAD_STATES:
            if expected and info.state == "STOPPED":
                return []
            return self._event(tracked, f"Service {info.name} is {describe_state(info)} (was {previous.state}).",
                               now)
        return []

    def _event(self, tracked: _Tracked, text: str, now: float) -> list[str]:
        while tracked.restarts and now - tracked.restarts[0] > RESTART_WINDOW_S:
            tracked.restarts.popleft()
        if tracked.last_alert_at is not None and now - tracked.last_alert_at < self.alert_interval_s:
            tracked.held += 1
            return []
        tracked.last_alert_at = now
        tracked.held = 0
        return [text]

    def _summary_due(self, tracked: _Tracked, now: float) -> list[str]:
        if not tracked.held or tracked.last_alert_at is None or now - tracked.last_alert_at < self.alert_interval_s:
            return []
        while tracked.restarts and now - tracked.restarts[0] > RESTART_WINDOW_S:
            tracked.restarts.popleft()
        name, held = tracked.info.name, tracked.held
        tracked.last_alert_at, tracked.held = now, 0
        restarts = len(tracked.restarts)
        head = (f"Service {name} keeps restarting: {restarts} restarts in the last {RESTART_WINDOW_S / 60:.0f} min"
                if restarts >= LOOP_THRESHOLD else f"Service {name}: {held} more state change(s)")
        return [f"{head}; now {describe_state(tracked.info)}."]
