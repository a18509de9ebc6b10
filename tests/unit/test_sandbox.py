"""The sandbox's limits hold against work that misbehaves on purpose."""

from __future__ import annotations

import ctypes
import multiprocessing.util
import os
import threading
import time

import pytest

from shared.sandbox import SandboxFailure, SandboxLimits, run_limited

LIMITS = SandboxLimits(memory_bytes=256 * 1024 * 1024, cpu_seconds=2, wall_seconds=20.0)


def echo_pid(payload: bytes) -> bytes:
    return payload + b" from " + str(os.getpid()).encode()


def hoard_memory(_payload: bytes) -> bytes:
    blocks = [bytearray(64 * 1024 * 1024) for _ in range(64)]
    return str(len(blocks)).encode()


def spin(_payload: bytes) -> bytes:
    while True:
        pass


def wait_forever(_payload: bytes) -> bytes:
    threading.Event().wait()  # nobody sets it: only the sandbox's wall limit ends this
    return b""


def crash(_payload: bytes) -> bytes:
    return ctypes.string_at(0)


def answer_too_much(_payload: bytes) -> bytes:
    return bytes(LIMITS.max_result_bytes + 1)


def test_work_runs_in_another_process_and_answers_bytes() -> None:
    answer = run_limited(echo_pid, b"hello", LIMITS)

    assert answer.startswith(b"hello from ")
    assert int(answer.rsplit(b" ", 1)[1]) != os.getpid()


def test_memory_beyond_the_limit_ends_the_run() -> None:
    with pytest.raises(SandboxFailure, match=r"needed more than \d+ bytes of memory"):
        run_limited(hoard_memory, b"", LIMITS)


def test_cpu_beyond_the_limit_ends_the_run() -> None:
    started = time.monotonic()

    with pytest.raises(SandboxFailure, match="more than 2 s of CPU"):
        run_limited(spin, b"", LIMITS)

    assert time.monotonic() - started < LIMITS.wall_seconds


def test_wall_time_beyond_the_limit_kills_the_child() -> None:
    limits = SandboxLimits(wall_seconds=1.0)
    started = time.monotonic()

    with pytest.raises(SandboxFailure, match="did not finish within 1 s"):
        run_limited(wait_forever, b"", limits)

    assert time.monotonic() - started < 10.0


def test_a_crash_is_reported_and_the_caller_survives() -> None:
    with pytest.raises(SandboxFailure, match="crashed with signal SIGSEGV"):
        run_limited(crash, b"", LIMITS)

    assert run_limited(echo_pid, b"still here", LIMITS).startswith(b"still here")


def test_an_oversized_answer_is_refused() -> None:
    with pytest.raises(SandboxFailure, match="answered more than"):
        run_limited(answer_too_much, b"", LIMITS)


def crash_when_collected(_payload: bytes) -> bytes:
    class Corrupt:
        def __del__(self) -> None:
            ctypes.string_at(0)

    cycle: list[object] = [Corrupt()]
    cycle.append(cycle)
    return b"looks fine"


def crash_on_exit(_payload: bytes) -> bytes:
    multiprocessing.util.Finalize(None, ctypes.string_at, args=(0,), exitpriority=0)
    return b"looks fine"


def test_what_the_work_leaves_behind_is_freed_before_it_answers() -> None:
    with pytest.raises(SandboxFailure, match="crashed with signal SIGSEGV"):
        run_limited(crash_when_collected, b"", LIMITS)


def test_a_child_that_crashes_after_answering_is_not_believed() -> None:
    with pytest.raises(SandboxFailure, match="crashed with signal SIGSEGV"):
        run_limited(crash_on_exit, b"", LIMITS)
