"""A worker process fed random pinned versions keeps its memory, models and metrics bounded."""

from __future__ import annotations

import asyncio
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from devtools.ports import free_port
from devtools.sample_models import iris_classifier
from shared.contracts import PredictionRequest
from shared.topics import PREDICTIONS
from tests.integration.inference.conftest import SETOSA, Stack, TopicFollower, answered

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKER = "from services.inference.entrypoints.worker import run; run()"
REAL_VERSIONS = 6
MAX_LOADED_VERSIONS = 3
MAX_REMEMBERED_FAILURES = 200
REQUESTS = 10_000
WARM_UP = 1_000
RSS_GROWTH_BOUND_BYTES = 32 * 1024 * 1024
"""Once warm, 9,000 more requests may not add this much: unbounded, the worker kept a
loaded version, a failure and a metric series for each new version named."""
SERIES_BOUND = 2 * (REAL_VERSIONS + 1) * 2 * 2
"""predictions_total series: model (iris, other) x version (the real ones, other) x
variant (production, canary at most here) x status (ok, error)."""


def random_requests(pick: random.Random, start: int, count: int) -> list[PredictionRequest]:
    """Mostly versions that do not exist, some that do, some unpinned, a few random models."""
    requests = []
    for n in range(start, start + count):
        roll = pick.random()
        model, version = "iris", None
        if roll < 0.55:
            version = pick.randint(REAL_VERSIONS + 1, 10**9)
        elif roll < 0.85:
            version = pick.randint(1, REAL_VERSIONS)
        elif roll < 0.87:
            model = f"random-{pick.randint(1, 10**9)}"
        requests.append(
            PredictionRequest(request_id=f"r-{n}", model=model, version=version, inputs=SETOSA)
        )
    return requests


def resident_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None, status
    return int(match.group(1)) * 1024


async def get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.get(f"http://127.0.0.1:{port}{path}")


async def wait_until_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if (await get(port, "/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        await asyncio.sleep(0.2)


async def test_ten_thousand_random_pins_leave_rss_loaded_versions_and_series_bounded(
    stack: Stack, tmp_path: Path
) -> None:
    samples = [iris_classifier(c=c) for c in (1.0, 0.5, 0.2, 0.1, 0.05, 0.02)]
    assert stack.registry.deploy("iris", samples) == list(range(1, REAL_VERSIONS + 1))
    port = free_port()
    env = os.environ | stack.env(
        MODELBUS_WORKER_PORT=str(port),
        MODELBUS_MAX_BATCH_RECORDS="500",
        MODELBUS_MAX_LOADED_VERSIONS=str(MAX_LOADED_VERSIONS),
        MODELBUS_MAX_REMEMBERED_FAILURES=str(MAX_REMEMBERED_FAILURES),
    )
    log = tmp_path / "worker.log"
    with log.open("ab") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER], cwd=REPO_ROOT, env=env, stdout=sink, stderr=sink
        )
    pick = random.Random(20261129)
    try:
        await wait_until_ready(port, worker, log)
        async with TopicFollower(stack.bootstrap, stack.topic(PREDICTIONS.name)) as follower:
            warm_up = random_requests(pick, 0, WARM_UP)
            await stack.send(warm_up)
            await follower.until(answered(r.request_id for r in warm_up), timeout=120)
            rss_warm = resident_bytes(worker.pid)

            rest = random_requests(pick, WARM_UP, REQUESTS - WARM_UP)
            await stack.send(rest)
            predictions = await follower.until(answered(r.request_id for r in rest), timeout=300)
            rss_after = resident_bytes(worker.pid)
        ready = (await get(port, "/readyz")).json()
        metrics = (await get(port, "/metrics")).text
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    assert len({p.request_id for p in predictions}) == REQUESTS
    pinned_real = {
        p.version for p in predictions if p.status == "ok" and p.version != 1 and p.model == "iris"
    }
    assert pinned_real == set(range(2, REAL_VERSIONS + 1))  # every real version did serve
    assert len(ready["loaded_versions"]) <= MAX_LOADED_VERSIONS, ready
    assert "iris:1" in ready["loaded_versions"]  # production is never evicted
    series = re.findall(r"^modelbus_inference_predictions_total\{(.*)\} ", metrics, re.MULTILINE)
    assert 0 < len(series) <= SERIES_BOUND, series[:20]
    assert not any("random-" in labels for labels in series)
    growth = rss_after - rss_warm
    assert growth < RSS_GROWTH_BOUND_BYTES, f"RSS grew by {growth / 2**20:.1f} MiB"
