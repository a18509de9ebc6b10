"""Sample where service processes spend their CPU during a measured window (py-spy).

`make bench ARGS=--profile` attaches py-spy to the services of each throughput and
latency run while the clock runs, and writes, per process, the raw folded stacks
(for a flame graph) and a short text summary of the hottest frames.
"""

from __future__ import annotations

import collections
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench.stack import venv_command

SAMPLES_PER_SECOND = 250
STOP_TIMEOUT_SECONDS = 30.0
TOP_FRAMES = 30


def py_spy_path() -> str:
    """The py-spy executable (installed with the dev dependencies)."""
    candidate = venv_command("py-spy")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("py-spy")
    if found is None:
        raise SystemExit("--profile needs py-spy: run `make setup` (it is a dev dependency)")
    return found


@contextmanager
def sampled(
    directory: Path | None, label: str, processes: Sequence[tuple[str, int]]
) -> Iterator[None]:
    """Sample `processes` (name, pid) while the block runs; nothing when `directory` is None."""
    if directory is None:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    executable = py_spy_path()
    recorders: list[tuple[Path, subprocess.Popen[bytes]]] = []
    for name, pid in processes:
        output = directory / f"{label}-{name}.folded"
        command = [
            executable, "record", "--pid", str(pid), "--rate", str(SAMPLES_PER_SECOND),
            "--format", "raw", "--output", str(output), "--nonblocking",
        ]  # fmt: skip
        recorders.append(
            (output, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        )
    try:
        yield
    finally:
        for output, recorder in recorders:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its output on interrupt
            try:
                recorder.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                recorder.kill()
            if output.exists():
                output.with_suffix(".txt").write_text(summarise(output.read_text()))


def folded_stacks(folded: str) -> Iterator[tuple[str, int]]:
    """(stack, samples) of each line of py-spy's folded output (`frame;frame;... count`)."""
    for line in folded.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            yield stack, int(count_text)


def summarise(folded: str, *, top: int = TOP_FRAMES) -> str:
    """The hottest frames by own samples and by samples including callees."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for stack, count in folded_stacks(folded):
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples"]
    for title, counter in (("own time", own), ("including callees", inclusive)):
        lines.append(f"\n-- {title}")
        for frame, count in counter.most_common(top):
            share = 100.0 * count / total if total else 0.0
            lines.append(f"{share:5.1f}%  {frame}")
    return "\n".join(lines) + "\n"
