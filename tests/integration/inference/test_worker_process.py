"""Worker processes: a SIGKILL mid-load loses nothing; SIGTERM stops gracefully."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from devtools.sample_models import iris_classifier
from shared.contracts import PredictionRequest
from shared.topics import PREDICTIONS
from tests.integration.inference.conftest import Stack, TopicFollower, answered

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKER = "from services.inference.entrypoints.worker import run; run()"


def start_worker(stack: Stack, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | stack.env(MODELBUS_MAX_BATCH_RECORDS="100", MODELBUS_LOG_LEVEL="INFO")
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER], cwd=REPO_ROOT, env=env, stdout=sink, stderr=sink
        )


async def test_killed_worker_loses_nothing_and_sigterm_exits_cleanly(
    stack: Stack, iris_request: Callable[..., PredictionRequest], tmp_path: Path
) -> None:
    stack.registry.deploy("iris", [iris_classifier()])
    requests = [iris_request(f"k-{i}", routing_key=f"entity-{i % 500}") for i in range(2000)]
    ids = [r.request_id for r in requests]
    log = tmp_path / "workers.log"
    first = start_worker(stack, log)
    second: subprocess.Popen[bytes] | None = None
    try:
        async with TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower:
            await stack.send(requests[:200])
            await follower.until(answered(ids[:1]), timeout=60)
            sending = asyncio.create_task(_trickle(stack, requests[200:]))
            await follower.until(lambda found: len(found) >= 600, timeout=60)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            await sending
            answered_before_kill = len(follower.records)
            assert answered_before_kill < len(requests), "the kill came too late to prove anything"

            second = start_worker(stack, log)
            predictions = await follower.until(answered(ids), timeout=60)

        assert {p.request_id for p in predictions} >= set(ids)
        assert all(p.status == "ok" for p in predictions)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, log.read_text()[-3000:]
        assert '"inference worker stopped"' in log.read_text()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)


async def _trickle(stack: Stack, requests: list[PredictionRequest]) -> None:
    """Publish in small chunks, so the kill lands while work is still arriving."""
    started = time.monotonic()
    for start in range(0, len(requests), 100):
        await stack.send(requests[start : start + 100])
        await asyncio.sleep(0.02)
    assert time.monotonic() - started < 30
