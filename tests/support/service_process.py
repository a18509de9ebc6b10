"""A modelbus service run as a real process, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

MODELBUS = Path(sys.executable).with_name("modelbus")


@dataclass
class ServiceProcess:
    """A started `modelbus ...` command with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(
        cls, name: str, *command: str, env: Mapping[str, str], log_dir: Path
    ) -> ServiceProcess:
        """Start `modelbus <command>` with only the given MODELBUS_* settings."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("MODELBUS_")}
        log_path = log_dir / f"{name}.log"
        with log_path.open("ab") as sink:
            process = subprocess.Popen(
                [str(MODELBUS), *command],
                env=inherited | dict(env),
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return cls(name=name, process=process, log_path=log_path)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_healthy(self, url: str, *, timeout: float = 60.0) -> None:
        """Poll `url` until it answers 200; fail with the log if the process dies first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not healthy at {url}:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(timeout=10)
