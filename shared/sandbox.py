"""Run a function on hostile bytes in a child process with memory, CPU and time limits.

The child is forked from a forkserver that has already imported the heavy modules, so a
run costs a fork rather than an interpreter start. Results come back as bytes the caller
parses (JSON), never as a pickle: a child that the input subverted must not be able to
hand the parent code to run.
"""

from __future__ import annotations

import gc
import multiprocessing
import resource
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection

Work = Callable[[bytes], bytes]


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use; exceeding any of them ends it."""

    memory_bytes: int = 1024 * 1024 * 1024
    """Address space the child may add to what the forkserver had mapped."""
    cpu_seconds: int = 30
    wall_seconds: float = 60.0
    max_result_bytes: int = 4 * 1024 * 1024


class SandboxFailure(RuntimeError):
    """The child did not return a result: killed by a limit, crashed or answered too much."""


def run_limited(
    work: Work, payload: bytes, limits: SandboxLimits, *, preload: Sequence[str] = ()
) -> bytes:
    """`work(payload)` in a forked child under `limits`; `work` must be a module-level function."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*preload, __name__])
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(work, payload, limits, sender), daemon=True)
    started = time.monotonic()
    child.start()
    sender.close()
    try:
        result = _receive(receiver, child, limits, started)
        child.join(max(limits.wall_seconds - (time.monotonic() - started), 0.0))
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(5.0)
    if result is None or child.exitcode != 0:
        # A child that answered and then crashed (heap corruption found while freeing) is
        # not trusted either.
        raise SandboxFailure(_why_no_result(child.exitcode, limits))
    return result


def _receive(
    receiver: Connection,
    child: multiprocessing.process.BaseProcess,
    limits: SandboxLimits,
    started: float,
) -> bytes | None:
    remaining = limits.wall_seconds - (time.monotonic() - started)
    if not receiver.poll(max(remaining, 0.0)):
        child.kill()
        raise SandboxFailure(f"it did not finish within {limits.wall_seconds:g} s")
    try:
        return receiver.recv_bytes(limits.max_result_bytes)
    except EOFError:
        child.join(limits.wall_seconds)
        return None
    except OSError:
        raise SandboxFailure(f"it answered more than {limits.max_result_bytes} bytes") from None


def _why_no_result(exit_code: int | None, limits: SandboxLimits) -> str:
    if exit_code is not None and exit_code < 0:
        number = -exit_code
        if number == signal.SIGXCPU:
            return f"it used more than {limits.cpu_seconds} s of CPU"
        if number == signal.SIGKILL:
            return "it was killed (out of memory or time)"
        return f"it crashed with signal {signal.Signals(number).name}"
    if exit_code == MEMORY_EXIT_CODE:
        return f"it needed more than {limits.memory_bytes} bytes of memory"
    return f"it exited with code {exit_code} without a result"


MEMORY_EXIT_CODE = 75


def _child_main(work: Work, payload: bytes, limits: SandboxLimits, sender: Connection) -> None:
    _apply_limits(limits)
    try:
        result = work(payload)
        gc.collect()  # frees what the work built, where corrupted memory tends to show
    except MemoryError:
        # The parent learns it from the exit code; the result pipe stays empty.
        sender.close()
        raise SystemExit(MEMORY_EXIT_CODE) from None
    sender.send_bytes(result)
    sender.close()


def _apply_limits(limits: SandboxLimits) -> None:
    mapped = _mapped_bytes()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + limits.memory_bytes,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _mapped_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0
