"""The worker entry point as a real process: configured by env, delivers, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from devtools.kafka_broker import KafkaBroker
from shared.kafka.admin import ensure_topics
from shared.kafka.publisher import Publisher
from shared.topics import DEAD_LETTERS, PREDICTIONS
from tests.integration.delivery.support import (
    CALLBACK_SEAL_KEY,
    free_port,
    http_get,
    prediction,
    run_receiver,
    sealed,
)
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka]
REPO_ROOT = Path(__file__).resolve().parents[3]
WORKER = "from services.delivery.entrypoints.worker import run; run()"


def worker_env(**values: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MODELBUS_")}
    return inherited | {f"MODELBUS_{name.upper()}": value for name, value in values.items()}


async def test_the_worker_delivers_and_stops_cleanly_on_sigterm(
    kafka_broker: KafkaBroker, topic_prefix: str, tmp_path: Path, webhook_secret: str
) -> None:
    await ensure_topics(
        kafka_broker.bootstrap, prefix=topic_prefix, specs=[PREDICTIONS, DEAD_LETTERS]
    )
    health = f"http://127.0.0.1:{free_port()}"
    log_file = tmp_path / "worker.log"
    with run_receiver(webhook_secret) as receiver, log_file.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            cwd=tmp_path,
            env=worker_env(
                kafka_bootstrap=kafka_broker.bootstrap,
                topic_prefix=topic_prefix,
                jobs_database_url=f"sqlite:///{tmp_path / 'jobs.db'}",
                webhook_secret=webhook_secret,
                callback_seal_key=CALLBACK_SEAL_KEY,
                webhook_allowlist="127.0.0.1",
                consumer_group=f"{topic_prefix}delivery",
                delivery_health_port=health.rsplit(":", 1)[1],
                poll_interval_seconds="0.2",
            )
            | {"PYTHONPATH": str(REPO_ROOT)},
            stdout=log,
            stderr=log,
        )
        try:

            async def ready() -> bool:
                try:
                    return (await http_get(f"{health}/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=40, what="the worker to become ready")
            publisher = Publisher(
                kafka_broker.bootstrap, source="inference", topic_prefix=topic_prefix
            )
            await publisher.start()
            try:
                sent = sealed(prediction("via-process", receiver.hook("p")))
                await publisher.publish(PREDICTIONS, sent, key=sent.partition_key)
            finally:
                await publisher.stop()

            async def delivered() -> bool:
                return receiver.stats.accepted == 1

            await eventually(delivered, what="the webhook from the worker process")
            process.send_signal(signal.SIGTERM)
            returncode = await asyncio.wait_for(process.wait(), timeout=20)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    assert returncode == 0
    entries = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    messages = [entry["message"] for entry in entries]
    assert "delivery started" in messages and messages[-1] == "delivery stopped"
    delivered_entry = next(e for e in entries if e["message"].startswith("webhook delivered"))
    assert delivered_entry["request_id"] == "via-process" and delivered_entry["attempt"] == 1
    assert all(entry["service"] == "delivery" for entry in entries)


async def test_the_worker_refuses_to_start_without_a_signing_secret(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER,
        cwd=tmp_path,
        env=worker_env(jobs_database_url=f"sqlite:///{tmp_path / 'jobs.db'}")
        | {"PYTHONPATH": str(REPO_ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    [entry] = [json.loads(line) for line in output.decode().splitlines() if line.strip()]
    assert entry["level"] == "error" and "webhook_secret" in entry["message"]
