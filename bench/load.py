"""HTTP load against the peer: wrk with a Lua script, or an httpx fallback without wrk."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.report import progress
from shared.latency import latency_summary

_RESULT_MARKER = "BENCH_RESULT "
_LUA_DONE = r"""
function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass
class LoadRun:
    """One load run: what was sent, what failed, and the server's CPU meanwhile."""

    generator: str
    connections: int
    threads: int
    seconds: float
    requests: int
    status_errors: int
    socket_errors: int
    latency_p50_ms: float
    latency_p99_ms: float
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    machine_cpu_seconds: float = 0.0
    generator_cpu_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        per_second = self.requests / self.seconds if self.seconds else 0.0
        return {
            "generator": self.generator,
            "connections": self.connections,
            "threads": self.threads,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "per_second": round(per_second, 1),
            "status_errors": self.status_errors,
            "socket_errors": self.socket_errors,
            "ok": self.requests > 0 and self.status_errors == 0 and self.socket_errors == 0,
            "latency_p50_ms": round(self.latency_p50_ms, 2),
            "latency_p99_ms": round(self.latency_p99_ms, 2),
            "cpu_seconds": self.cpu_seconds,
            "cores_busy": round(self.cpu_seconds / self.wall_seconds, 2)
            if self.wall_seconds
            else None,
            "per_cpu_second": round(self.requests / self.cpu_seconds, 1)
            if self.cpu_seconds
            else 0.0,
            "load_generator_cpu_seconds": self.generator_cpu_seconds,
            "other_processes_cores_busy": round(
                max(0.0, self.machine_cpu_seconds - self.cpu_seconds - self.generator_cpu_seconds)
                / self.wall_seconds,
                2,
            )
            if self.wall_seconds
            else None,
        }


def wrk_path() -> str | None:
    """wrk, installed from Debian's package when missing and apt-get is usable."""
    found = shutil.which("wrk")
    apt_get = shutil.which("apt-get")
    if found is None and apt_get is not None and os.geteuid() == 0:
        progress("   wrk is missing; apt-get install -y wrk ...")
        subprocess.run(
            [apt_get, "install", "-y", "-q", "wrk"],
            capture_output=True,
            check=False,
            timeout=600,
            env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which("wrk")
    return found


def _lua_script(path: str, bodies: list[bytes]) -> str:
    """A script that POSTs the bodies in turn (each thread starting elsewhere in the list)."""
    entries = ",\n".join(f"[==[{body.decode()}]==]" for body in bodies)
    return (
        f"local bodies = {{\n{entries}\n}}\n"
        "local counter = 0\n"
        'wrk.method = "POST"\n'
        f'wrk.path = "{path}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        "local thread_index = 0\n"
        "function setup(thread)\n"
        "  thread_index = thread_index + 1\n"
        '  thread:set("start", thread_index * 97)\n'
        "end\n"
        "function init(args)\n"
        "  counter = start or 0\n"
        "end\n"
        "function request()\n"
        "  counter = counter % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[counter])\n"
        "end\n" + _LUA_DONE
    )


def run_wrk(
    base_url: str,
    path: str,
    bodies: list[bytes],
    connections: int,
    seconds: float,
    work_dir: Path,
) -> LoadRun:
    executable = wrk_path()
    if executable is None:
        raise RuntimeError("wrk is not installed")
    script = work_dir / "v2-infer.lua"
    script.write_text(_lua_script(path, bodies))
    threads = 1 if connections <= 4 else 2
    completed = subprocess.run(
        [
            executable,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base_url,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 60,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(_RESULT_MARKER)]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr[-800:]}")
    result = orjson.loads(lines[-1].removeprefix(_RESULT_MARKER))
    return LoadRun(
        generator="wrk",
        connections=connections,
        threads=threads,
        seconds=result["duration_us"] / 1e6,
        requests=result["requests"],
        status_errors=result["status"],
        socket_errors=result["connect"] + result["read"] + result["write"] + result["timeout"],
        latency_p50_ms=result["p50_us"] / 1000,
        latency_p99_ms=result["p99_us"] / 1000,
    )


def run_httpx_load(
    base_url: str, path: str, bodies: list[bytes], connections: int, seconds: float
) -> LoadRun:
    """The fallback without wrk: `connections` async clients posting back to back."""
    return asyncio.run(_httpx_load(base_url, path, bodies, connections, seconds))


async def _httpx_load(
    base_url: str, path: str, bodies: list[bytes], connections: int, seconds: float
) -> LoadRun:
    latencies: list[float] = []
    status_errors = 0
    socket_errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10.0) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def loop(offset: int) -> None:
            nonlocal status_errors, socket_errors
            index = offset
            while time.perf_counter() < deadline:
                index = (index + 1) % len(bodies)
                sent = time.perf_counter()
                try:
                    response = await client.post(path, content=bodies[index], headers=headers)
                except httpx.HTTPError:
                    socket_errors += 1
                    continue
                latencies.append((time.perf_counter() - sent) * 1000)
                if not 200 <= response.status_code < 300:
                    status_errors += 1

        await asyncio.gather(*(loop(offset * 97) for offset in range(connections)))
        elapsed = time.perf_counter() - started
    summary = latency_summary(latencies)
    return LoadRun(
        generator="httpx",
        connections=connections,
        threads=1,
        seconds=elapsed,
        requests=len(latencies),
        status_errors=status_errors,
        socket_errors=socket_errors,
        latency_p50_ms=summary["p50_ms"],
        latency_p99_ms=summary["p99_ms"],
    )
