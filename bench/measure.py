"""Measuring helpers for the benchmarks: percentiles and CPU time of processes."""

from __future__ import annotations

import os
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children, from /proc."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / CLOCK_TICKS


def tree_pids(pid: int) -> list[int]:
    """The process and all its live descendants."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        try:
            with open(f"/proc/{current}/task/{current}/children") as handle:
                found.extend(int(child) for child in handle.read().split())
        except OSError:
            pass
        index += 1
    return found


@dataclass
class CpuMeter:
    """CPU seconds a set of process trees spent between start() and stop()."""

    pids: list[int]
    _start: float = 0.0

    def _now(self) -> float:
        total = 0.0
        for root in self.pids:
            for pid in tree_pids(root):
                try:
                    total += cpu_seconds(pid)
                except OSError:
                    continue
        return total

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> float:
        return self._now() - self._start
