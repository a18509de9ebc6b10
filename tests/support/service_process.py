"""A service as a real process that a crash test starts, SIGKILLs and starts again."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devtools.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Incarnation:
    """One run of the process, from spawn to kill, with what was seen of it."""

    number: int
    log: Path
    spawned_at: float
    ready_after: float | None = None
    progress_after: float | None = None
    records_read: int = 0
    """The progress counter when last asked (just before the process was killed)."""


@dataclass(kw_only=True)
class ServiceProcess:
    """Runs a service's worker (`code`, run with `python -c`) with `MODELBUS_*` settings, one
    incarnation at a time; `progress` finds its progress counter in /metrics."""

    name: str
    code: str
    health_port_setting: str
    progress: re.Pattern[str]
    settings: dict[str, str]
    workdir: Path
    incarnations: list[Incarnation] = field(default_factory=list)
    _process: asyncio.subprocess.Process | None = None
    _health: str = ""
    _http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=5))

    async def start(self, *, timeout: float = 40.0) -> Incarnation:
        """Spawn the process and wait until it answers ready."""
        assert self._process is None, "the previous process is still running"
        port = free_port()
        self._health = f"http://127.0.0.1:{port}"
        incarnation = Incarnation(
            number=len(self.incarnations) + 1,
            log=self.workdir / f"{self.name}-{len(self.incarnations) + 1}.log",
            spawned_at=time.monotonic(),
        )
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("MODELBUS_")}
        env = inherited | {
            f"MODELBUS_{name.upper()}": value
            for name, value in (self.settings | {self.health_port_setting: str(port)}).items()
        }
        with incarnation.log.open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                self.code,
                cwd=self.workdir,
                env=env | {"PYTHONPATH": str(REPO_ROOT)},
                stdout=log,
                stderr=log,
            )
        self.incarnations.append(incarnation)
        await self._until(self._ready, timeout, f"incarnation {incarnation.number} to be ready")
        incarnation.ready_after = time.monotonic() - incarnation.spawned_at
        return incarnation

    async def wait_for_progress(self, *, timeout: float = 40.0) -> int:
        """Wait until this incarnation has made progress (its counter is above zero)."""
        incarnation = self.incarnations[-1]
        read = await self._until(
            self.records_read, timeout, f"incarnation {incarnation.number} to make progress"
        )
        incarnation.progress_after = time.monotonic() - incarnation.spawned_at
        return int(read)

    async def records_read(self) -> int:
        """The running process's progress counter (from its metrics)."""
        try:
            response = await self._http.get(f"{self._health}/metrics")
        except httpx.HTTPError:
            return 0
        found = self.progress.search(response.text)
        read = int(found.group(1)) if found else 0
        self.incarnations[-1].records_read = read
        return read

    async def kill(self) -> None:
        """SIGKILL now: no batch finished, no offsets committed, no group left, no cleanup."""
        process = self._require_running()
        await self.records_read()
        process.send_signal(signal.SIGKILL)
        await self._reap(process)

    async def _reap(self, process: asyncio.subprocess.Process) -> None:
        returncode = await process.wait()
        self._process = None
        assert returncode == -signal.SIGKILL, f"the process exited {returncode} before the kill"

    async def stop(self, *, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the orderly stop."""
        process = self._require_running()
        await self.records_read()
        process.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(process.wait(), timeout)
        self._process = None
        return returncode

    async def ensure_gone(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._process = None
        await self._http.aclose()

    def _require_running(self) -> asyncio.subprocess.Process:
        process = self._process
        assert process is not None, "no process is running"
        if process.returncode is not None:
            raise AssertionError(
                f"the {self.name} process died on its own (exit {process.returncode}):\n"
                + self.incarnations[-1].log.read_text()[-3000:]
            )
        return process

    async def _ready(self) -> bool:
        self._require_running()
        try:
            return (await self._http.get(f"{self._health}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def _until(self, condition: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := await condition()):
            self._require_running()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
            await asyncio.sleep(0.01)
        return value
