"""`modelbus demo`: a scenario end to end against the running local stack, narrated."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import skops.io
from aiokafka import AIOKafkaConsumer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from services.cli.demo_drift import show_drift
from services.cli.demo_serving import FEATURES, run_serving
from services.cli.output import say
from shared.clients.registry import RegistryCallFailed, RegistryClient
from shared.kafka.codec import decode
from shared.settings import ModelbusSettings
from shared.topics import MODEL_EVENTS

MODEL = "iris"
STACK_DIR = Path(".cache/stack")


def _stack_secret(env: str, file: str) -> str:
    """A secret from the environment, else the one `make up` generated."""
    value = os.environ.get(env)
    if value:
        return value
    path = STACK_DIR / file
    if path.exists():
        return path.read_text().strip()
    raise SystemExit(f"no {file}: set {env} or run `make up` first")


def _git_commit() -> str:
    git = shutil.which("git")
    if git is None:
        return "0000000"
    try:
        out = subprocess.run(
            [git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "0000000"
    return out.stdout.strip()


def _training_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bytes]:
    data = load_iris()
    names = [name.replace(" (cm)", "").replace(" ", "_") for name in data.feature_names]
    labels = np.array([data.target_names[index] for index in data.target])
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, labels, test_size=0.3, random_state=7, stratify=labels
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*names, "target"])
    for row, label in zip(x_train.tolist(), y_train.tolist(), strict=True):
        writer.writerow([*row, label])
    return x_train, x_test, y_train, y_test, buffer.getvalue().encode()


def _deployment_line(state: dict[str, Any]) -> str:
    canary = f"v{state['canary']} at {state['canary_weight']:.0%}" if state["canary"] else "none"
    shadow = f"v{state['shadow']}" if state["shadow"] else "none"
    return f"production=v{state['production']} canary={canary} shadow={shadow}"


async def _model_events(settings: ModelbusSettings, topic: str, since_ms: int) -> list[str]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        **settings.kafka_security.client_options(),
    )
    await consumer.start()
    lines: list[str] = []
    try:
        idle_deadline = time.monotonic() + 5
        while time.monotonic() < idle_deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.timestamp < since_ms:
                        continue
                    event = decode(MODEL_EVENTS, record.value, record.headers)
                    if event.model == MODEL:
                        version = f" v{event.version}" if event.version else ""
                        lines.append(f"{event.event_type}{version} by {event.actor}")
                idle_deadline = time.monotonic() + 1.5
    finally:
        await consumer.stop()
    return lines


def run_demo(
    registry_url: str,
    gateway_url: str,
    *,
    http_count: int,
    kafka_count: int,
    feedback_url: str = "http://127.0.0.1:8005",
    drift_url: str = "http://127.0.0.1:8006",
) -> None:
    """Register two versions, approve, promote, canary, promote, roll back; show the trail."""
    settings = ModelbusSettings()
    started_ms = int(time.time() * 1000)
    suffix = secrets.token_hex(3)
    say(f"modelbus demo: registry {registry_url}, Kafka {settings.kafka_bootstrap}\n")
    with RegistryClient(
        registry_url, _stack_secret("MODELBUS_ADMIN_API_KEY", "admin-key")
    ) as admin:
        publisher_key = admin.create_api_key(f"data-scientist-{suffix}", "publisher")
        approver_key = admin.create_api_key(f"ml-lead-{suffix}", "approver")
        app = admin.issue_api_key(f"shop-frontend-{suffix}", "client")
        app_key = app["key"]
    x_train, x_test, y_train, y_test, dataset = _training_data()
    commit = _git_commit()
    with (
        RegistryClient(registry_url, publisher_key) as publisher,
        RegistryClient(registry_url, approver_key) as approver,
    ):
        try:
            publisher.create_model(MODEL, "classification", description="Iris species")
            say(f"1. registered model {MODEL!r}")
        except RegistryCallFailed as error:
            if error.status_code != 409:
                raise
            say(f"1. model {MODEL!r} already registered; adding versions")
        versions = []
        for c in (1.0, 0.05):
            model = LogisticRegression(C=c, max_iter=500).fit(x_train, y_train)
            accuracy = float(model.score(x_test, y_test))
            version = publisher.register_version(
                MODEL,
                artifact=skops.io.dumps(model),
                dataset=dataset,
                metadata={
                    "code_version": commit,
                    "params": {"C": c, "max_iter": 500},
                    "metrics": {"accuracy": accuracy},
                },
            )
            versions.append(version["version"])
            artifact, data = version["artifact"], version["dataset"]
            say(
                f"2. version {version['version']}: C={c}, held-out accuracy {accuracy:.3f}, "
                f"artifact sha256 {artifact['sha256'][:12]}…, "
                f"dataset {data['sha256'][:12]}… ({data['row_count']} rows)"
            )
        first, second = versions
        try:
            publisher.promote(MODEL, first, "first release")
        except RegistryCallFailed as refused:
            say(f"3. promotion without approval refused: {refused.message}")
        for number in versions:
            approver.decide(MODEL, number, "approve", "held-out metrics reviewed")
        say(f"4. approver approved v{first} and v{second}")
        say("5. " + _deployment_line(publisher.promote(MODEL, first, "first release")))
        canary = publisher.start_canary(MODEL, second, 0.1, "try the regularised model")
        say("6. " + _deployment_line(canary))
        say("7. " + _deployment_line(publisher.promote(MODEL, second, "canary looked healthy")))
        rolled = publisher.rollback(MODEL, "demo: pretend the p99 regressed")
        say("8. rollback -> " + _deployment_line(rolled))
        shadowed = publisher.start_shadow(MODEL, second, "keep watching the regularised model")
        say("   shadow   -> " + _deployment_line(shadowed))
        trail = approver.audit(model=MODEL, limit=10)
    say("\nAudit log (newest first):")
    for row in trail:
        number = f" v{row['version']}" if row["version"] else ""
        when, actor = row["created_at"][:19], row["actor"]
        say(f"  {when} {actor:<24} {row['action']}{number}  {row['reason']}")
    events = asyncio.run(_model_events(settings, settings.topic(MODEL_EVENTS.name), started_ms))
    say(f"\nmodel-events seen on Kafka during the demo: {len(events)}")
    for line in events:
        say(f"  {line}")
    asyncio.run(
        run_serving(
            gateway_url=gateway_url,
            gateway_key=app_key,
            # The shop's own secret signs its gateway jobs; the default one the jobs
            # published straight to Kafka (they have no subscriber).
            webhook_secrets=[
                secret
                for secret in (
                    app["webhook_secret"],
                    _stack_secret("MODELBUS_WEBHOOK_SECRET", "webhook-secret"),
                )
                if secret
            ],
            http_count=http_count,
            kafka_count=kafka_count,
            feedback_url=feedback_url,
            reader_key=_stack_secret("MODELBUS_ADMIN_API_KEY", "admin-key"),
        )
    )
    asyncio.run(
        show_drift(
            settings,
            model=MODEL,
            version=first,
            features=FEATURES,
            training=x_train,
            drift_url=drift_url,
        )
    )
