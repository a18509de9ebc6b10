"""A real Apache Kafka broker for the test session, run by ``infra/kafka/kafka.sh``.

Tests talk to a genuine single-node KRaft broker (never a fake) so that protocol,
transaction and consumer-group behaviour is the one production sees. This module only
picks free ports and drives the project's own script, so developers and CI start the
broker exactly the same way.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.ports import free_ports

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO_ROOT / "infra" / "kafka" / "kafka.sh"

#: Env var naming an already running cluster; when set, nothing is started or stopped.
BOOTSTRAP_ENV = "MODELBUS_KAFKA_BOOTSTRAP"

# The first run downloads the jars with Maven, so allow far more than the health timeout.
_FETCH_TIMEOUT_S = 900.0
_START_TIMEOUT_S = 180.0
_STOP_TIMEOUT_S = 90.0
_START_ATTEMPTS = 3
SASL_USERNAME = "modelbus-tests"


class KafkaBrokerError(RuntimeError):
    """Raised when kafka.sh cannot fetch, start or stop the broker."""


def _run(
    args: list[str], timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run kafka.sh with ``args`` (and ``env`` added); output is captured so failures can
    quote it."""
    try:
        return subprocess.run(
            ["bash", str(KAFKA_SH), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=REPO_ROOT,
            env=os.environ | (env or {}),
        )
    except subprocess.TimeoutExpired as exc:
        raise KafkaBrokerError(f"kafka.sh {args[0]} timed out after {timeout:.0f}s") from exc


def _failure(what: str, proc: subprocess.CompletedProcess[str]) -> KafkaBrokerError:
    """Build an error quoting the tail of kafka.sh's output (it includes the broker log)."""
    tail = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-60:])
    return KafkaBrokerError(f"kafka.sh {what} failed (exit {proc.returncode}):\n{tail}")


@dataclass(frozen=True)
class KafkaBroker:
    """Handle on a running broker: where to connect, and how to stop it.

    ``data_dir`` is ``None`` for an external cluster given by ``MODELBUS_KAFKA_BOOTSTRAP``.
    ``start_seconds`` is the time from invoking ``kafka.sh start`` until the broker was
    healthy (jar fetch excluded), kept so slow starts show up in test reports.
    """

    bootstrap: str
    data_dir: Path | None
    start_seconds: float
    sasl_bootstrap: str | None = None
    """A second listener (SASL_PLAINTEXT, SCRAM-SHA-256) for clients that authenticate."""
    sasl_username: str = SASL_USERNAME
    sasl_password: str = ""

    @property
    def external(self) -> bool:
        """True when the broker is someone else's cluster (we must not stop it)."""
        return self.data_dir is None

    @property
    def log_file(self) -> Path | None:
        """The broker's log, to read when a test fails for a broker-side reason."""
        return None if self.data_dir is None else self.data_dir / "broker.log"

    @classmethod
    def start(cls, data_dir: Path) -> KafkaBroker:
        """Start a fresh broker on free ports with storage in ``data_dir``.

        Honours ``MODELBUS_KAFKA_BOOTSTRAP``: then nothing is started. The broker is also
        tied to this process (``--owner-pid``), so a crashed test run does not leak a JVM.
        """
        external = os.environ.get(BOOTSTRAP_ENV, "").strip()
        if external:
            return cls(bootstrap=external, data_dir=None, start_seconds=0.0)

        fetched = _run(["fetch"], _FETCH_TIMEOUT_S)
        if fetched.returncode != 0:
            raise _failure("fetch", fetched)

        data_dir = data_dir.resolve()
        last: subprocess.CompletedProcess[str] | None = None
        # A fresh password per broker: nothing to keep secret in the repository.
        sasl_password = secrets.token_urlsafe(24)
        for _ in range(_START_ATTEMPTS):
            port, controller_port, sasl_port = free_ports(3)
            started_at = time.monotonic()
            proc = _run(
                [
                    "start",
                    "--port",
                    str(port),
                    "--controller-port",
                    str(controller_port),
                    "--sasl-port",
                    str(sasl_port),
                    "--sasl-user",
                    SASL_USERNAME,
                    "--data-dir",
                    str(data_dir),
                    "--owner-pid",
                    str(os.getpid()),
                ],
                _START_TIMEOUT_S,
                # The password goes by environment, not on a command line others can read.
                env={"MODELBUS_KAFKA_SASL_PASSWORD": sasl_password},
            )
            elapsed = time.monotonic() - started_at
            if proc.returncode == 0:
                return cls(
                    bootstrap=f"127.0.0.1:{port}",
                    data_dir=data_dir,
                    start_seconds=elapsed,
                    sasl_bootstrap=f"127.0.0.1:{sasl_port}",
                    sasl_password=sasl_password,
                )
            last = proc
            # Another process may have grabbed a port between our probe and the bind.
            if "Address already in use" not in proc.stderr + proc.stdout:
                break
        assert last is not None
        raise _failure("start", last)

    def stop(self) -> None:
        """Stop the broker we started (SIGTERM, then SIGKILL); no-op for external ones."""
        if self.data_dir is None:
            return
        proc = _run(["stop", "--data-dir", str(self.data_dir)], _STOP_TIMEOUT_S)
        if proc.returncode != 0:
            raise _failure("stop", proc)
