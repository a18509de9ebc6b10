"""modelbus services (and peers) run as real processes by the end-to-end tests and the
bench: started with a log file, polled until healthy, stopped in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

MODELBUS = Path(sys.executable).with_name("modelbus")
"""The `modelbus` command of the running interpreter's environment."""
STOP_TIMEOUT_SECONDS = 30.0
FORCE_TIMEOUT_SECONDS = 10.0
POLL_INTERVAL_SECONDS = 0.1
_FOREIGN_ENV_PREFIXES = ("MODELBUS_", "MLSERVER_")


class ServiceFailed(RuntimeError):
    """A service exited or did not become healthy in time; the message quotes its log."""


def clean_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without inherited MODELBUS_/MLSERVER_ settings, plus
    `overrides`: a service sees exactly the settings the bench gives it."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_FOREIGN_ENV_PREFIXES)
    }
    return inherited | dict(overrides)


@dataclass
class ServiceProcess:
    """A started service: its process, log and HTTP base URL for health and metrics."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str
    stop_timeout: float = STOP_TIMEOUT_SECONDS

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_healthy(
        self,
        path: str,
        *,
        timeout: float = 60.0,
        accept: Callable[[httpx.Response], bool] | None = None,
    ) -> httpx.Response:
        """Poll `path` until it answers 200 (and `accept` agrees); fail fast if the process dies."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise ServiceFailed(
                        f"{self.name} exited with {self.process.returncode} before it was "
                        f"healthy; log tail:\n{self.log_tail()}"
                    )
                try:
                    response = client.get(self.base_url + path)
                    if response.status_code == 200 and (accept is None or accept(response)):
                        return response
                    last = f"{response.status_code} {response.text[:300]}"
                except httpx.HTTPError as error:
                    last = repr(error)
                if time.monotonic() > deadline:
                    raise ServiceFailed(
                        f"{self.name} not healthy at {path} after {timeout:.0f} s ({last}); "
                        f"log tail:\n{self.log_tail()}"
                    )
                time.sleep(POLL_INTERVAL_SECONDS)

    def get_json(self, path: str) -> Any:
        response = httpx.get(self.base_url + path, timeout=5.0)
        return response.json()

    def stop(self, timeout: float | None = None) -> int:
        """SIGTERM (a graceful stop); if it hangs, SIGINT (a second signal makes uvicorn-based
        servers quit at once), then SIGKILL to its process group."""
        timeout = self.stop_timeout if timeout is None else timeout
        for signum, wait in ((signal.SIGTERM, timeout), (signal.SIGINT, FORCE_TIMEOUT_SECONDS)):
            if self.process.poll() is not None:
                return self.process.returncode
            self.process.send_signal(signum)
            try:
                return self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        # Its own session (start_new_session), so the group is only its tree.
        os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait(timeout=10)


def start_service(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    base_url: str,
    cwd: Path,
) -> ServiceProcess:
    """Start `argv` in its own session (Ctrl-C in the terminal reaches only the bench,
    which then stops it in order), with stdout and stderr in `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as sink:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return ServiceProcess(name=name, process=process, log_path=log_path, base_url=base_url)
