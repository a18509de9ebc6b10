"""infra/stack.sh after a crash: `up` restarts what died, whatever its pid file says now.

The stack runs against the session's broker (MODELBUS_KAFKA_BOOTSTRAP), on free ports,
with its state in a temporary directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.kafka_broker import KafkaBroker
from devtools.ports import free_ports

pytestmark = [pytest.mark.kafka]

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK = REPO_ROOT / "infra" / "stack.sh"


class Stack:
    """The script, its environment and what it leaves in its run directory."""

    def __init__(self, env: dict[str, str], run_dir: Path) -> None:
        self.env = env
        self.run_dir = run_dir

    def run(self, command: str, *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(STACK), command],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def pid_file(self, service: str) -> Path:
        return self.run_dir / f"{service}.pid"

    def pid(self, service: str) -> int:
        return int(self.pid_file(service).read_text().splitlines()[0])

    def health(self, port: str, path: str) -> int:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).status_code


@pytest.fixture
def stack(kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path) -> Iterator[Stack]:
    registry, gateway, delivery, inference, feedback = (str(port) for port in free_ports(5))
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MODELBUS_")}
    run_dir = tmp_path / "stack"
    env = inherited | {
        "MODELBUS_RUN_DIR": str(run_dir),
        "MODELBUS_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
        "MODELBUS_TOPIC_PREFIX": topic_prefix,
        "MODELBUS_REGISTRY_PORT": registry,
        "MODELBUS_GATEWAY_PORT": gateway,
        "MODELBUS_DELIVERY_HEALTH_PORT": delivery,
        "MODELBUS_WORKER_PORT": inference,
        "MODELBUS_FEEDBACK_HEALTH_PORT": feedback,
        "MODELBUS_HEALTH_TIMEOUT": "120",
    }
    stack = Stack(env, run_dir)
    try:
        yield stack
    finally:
        stack.run("down", timeout=120)


def process_state(pid: int) -> str | None:
    """The state letter in /proc/<pid>/stat (Z for a zombie), None once the pid is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def kill_and_wait(pid: int) -> None:
    """SIGKILL, then wait until the process is gone or a zombie nobody reaps."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_state(pid) not in (None, "Z"):
        assert time.monotonic() < deadline, f"pid {pid} survived SIGKILL"
        time.sleep(0.05)


def point_pid_file_at(stack: Stack, service: str, pid: int) -> None:
    """What a crash and pid reuse leave: the pid file, with its start time, naming `pid`."""
    lines = stack.pid_file(service).read_text().splitlines()
    stack.pid_file(service).write_text("\n".join([str(pid), *lines[1:]]) + "\n")


def test_up_restarts_services_whose_pid_is_dead_reused_or_a_zombie(stack: Stack) -> None:
    started = stack.run("up")
    assert started.returncode == 0, started.stdout + started.stderr
    first = {
        name: stack.pid(name)
        for name in ("registry", "gateway", "inference", "delivery", "feedback")
    }

    # gateway: killed, and its pid now belongs to an unrelated live program.
    kill_and_wait(first["gateway"])
    unrelated = subprocess.Popen(["sleep", "300"])
    point_pid_file_at(stack, "gateway", unrelated.pid)
    # delivery: killed, and its pid file names a zombie (exited, never reaped).
    kill_and_wait(first["delivery"])
    zombie = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while process_state(zombie.pid) != "Z":
            assert time.monotonic() < deadline, "the child did not become a zombie"
            time.sleep(0.05)
        point_pid_file_at(stack, "delivery", zombie.pid)
        # inference: killed, its pid file left as the crash left it.
        kill_and_wait(first["inference"])

        status = stack.run("status")
        assert status.returncode != 0
        for name in ("gateway", "inference", "delivery"):
            assert f"{name}: not running" in status.stdout, status.stdout
        assert "registry: running" in status.stdout

        again = stack.run("up")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "registry already runs" in again.stdout
        for name in ("gateway", "inference", "delivery"):
            assert f"{name} healthy at" in again.stdout, again.stdout
            assert stack.pid(name) not in (first[name], unrelated.pid, zombie.pid)
            assert process_state(stack.pid(name)) not in (None, "Z")
        assert stack.pid("registry") == first["registry"]
        env = stack.env
        assert stack.health(env["MODELBUS_GATEWAY_PORT"], "/readyz") == 200
        assert stack.health(env["MODELBUS_DELIVERY_HEALTH_PORT"], "/readyz") == 200
        assert stack.health(env["MODELBUS_WORKER_PORT"], "/healthz") == 200
        assert stack.health(env["MODELBUS_FEEDBACK_HEALTH_PORT"], "/readyz") == 200
        assert stack.run("status").returncode == 0

        stack.run("down", timeout=120)
        assert unrelated.poll() is None, "down killed a process the stack did not start"
    finally:
        unrelated.kill()
        unrelated.wait()
        zombie.wait()
