"""Measuring helpers for the benchmarks: CPU time of processes, Prometheus text, clocks."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)")


def cpu_seconds(pid: int, *, reaped_children: bool = True) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc.

    With `reaped_children`, the time of children it has waited for is included, so a
    descendant that exits during a measurement is not lost from its tree's total.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    ticks = utime + stime + (cutime + cstime if reaped_children else 0)
    return ticks / CLOCK_TICKS


def tree_pids(pid: int) -> list[int]:
    """The process and all its live descendants (children of every thread)."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            tasks = []
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            found.extend(int(child) for child in children if int(child) not in found)
        index += 1
    return found


@dataclass
class CpuMeter:
    """CPU seconds a set of processes (with their descendants, by default) spent
    between start() and stop().

    The bench measures its own process with `descendants=False`: the services it
    starts are its children and are measured separately.
    """

    pids: list[int]
    descendants: bool = True
    _start: float = field(default=0.0, init=False)

    def _now(self) -> float:
        total = 0.0
        for root in self.pids:
            members = tree_pids(root) if self.descendants else [root]
            for pid in members:
                try:
                    total += cpu_seconds(pid, reaped_children=self.descendants)
                except OSError:
                    continue  # exited between listing and reading
        return total

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> float:
        """CPU seconds since start(), rounded to the clock tick."""
        return round(self._now() - self._start, 3)


def parse_prometheus(text: str) -> dict[str, float]:
    """Samples of a Prometheus text exposition, keyed by name with labels as written.

    >>> parse_prometheus('# HELP x y\\nx_total 3\\nh_bucket{le="1"} 2\\n')
    {'x_total': 3.0, 'h_bucket{le="1"}': 2.0}
    """
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            samples[match.group(1)] = float(match.group(2))
        except ValueError:
            continue
    return samples


def sum_samples(scrapes: list[dict[str, float]], name: str) -> float:
    """A sample's total over several processes' scrapes (absent counts as 0)."""
    return sum(scrape.get(name, 0.0) for scrape in scrapes)


def histogram_counts(scrapes: list[dict[str, float]], name: str) -> dict[str, int]:
    """Per-bucket (not cumulative) counts of a histogram summed over scrapes, `le` -> count."""
    cumulative: dict[str, float] = {}
    pattern = re.compile(rf'^{re.escape(name)}_bucket\{{le="([^"]+)"\}}$')
    for scrape in scrapes:
        for key, value in scrape.items():
            match = pattern.match(key)
            if match is not None:
                cumulative[match.group(1)] = cumulative.get(match.group(1), 0.0) + value
    ordered = sorted(
        cumulative.items(), key=lambda item: math.inf if item[0] == "+Inf" else float(item[0])
    )
    counts: dict[str, int] = {}
    previous = 0.0
    for le, total in ordered:
        counts[le] = int(total - previous)
        previous = total
    return counts


def subtract(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """Counter deltas between two scrapes of the same process."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


@dataclass
class MachineCpuMeter:
    """CPU seconds every process on the machine spent between start() and stop() (from
    /proc/stat, steal time included): what the measured processes did not use went to
    something else, e.g. another engineer's test run."""

    _start: float = field(default=0.0, init=False)

    @staticmethod
    def _busy() -> float:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu "):
                user, nice, system, _idle, _iowait, irq, softirq, steal = (
                    int(value) for value in line.split()[1:9]
                )
                return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS
        raise RuntimeError("no cpu line in /proc/stat")

    def start(self) -> None:
        self._start = self._busy()

    def stop(self) -> float:
        return round(self._busy() - self._start, 3)


def cpu_breakdown(
    cpu: dict[str, float], *, seconds: float, messages: int, machine: float | None = None
) -> dict[str, Any]:
    """Where the CPU went: cores each part kept busy, its CPU microseconds per message, and
    (given the machine's total) the cores other processes took meanwhile."""
    breakdown: dict[str, Any] = {
        "cores_busy": {name: round(value / seconds, 2) for name, value in cpu.items()},
        "cores_busy_total": round(sum(cpu.values()) / seconds, 2),
        "cpu_us_per_message": {
            name: round(value / messages * 1e6, 1) for name, value in cpu.items()
        },
    }
    if machine is not None:
        breakdown["machine_cores_busy"] = round(machine / seconds, 2)
        breakdown["other_processes_cores_busy"] = round(
            max(0.0, machine - sum(cpu.values())) / seconds, 2
        )
    return breakdown


def scrape_prometheus(base_url: str) -> dict[str, float]:
    """A service's /metrics, parsed."""
    response = httpx.get(base_url + "/metrics", timeout=5.0)
    response.raise_for_status()
    return parse_prometheus(response.text)
