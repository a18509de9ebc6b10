"""The latency bench's receiver process: verifies signatures, and its arrival times are on
the clock of the process that reads them (CLOCK_MONOTONIC is shared by processes)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.webhook_receiver import main
from devtools.ports import free_port
from devtools.service_process import ServiceProcess, clean_env, start_service
from services.delivery.adapters.signing import WebhookSigner, new_webhook_secret, webhook_id_for

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[ServiceProcess, str]]:
    secret = new_webhook_secret()
    port = free_port()
    process = start_service(
        "bench webhook receiver",
        [sys.executable, "-m", "bench.webhook_receiver", "--port", str(port)],
        env=clean_env({"MODELBUS_WEBHOOK_SECRET": secret}),
        log_path=tmp_path / "receiver.log",
        base_url=f"http://127.0.0.1:{port}",
        cwd=REPO_ROOT,
    )
    try:
        process.wait_healthy("/stats", timeout=30)
        yield process, secret
    finally:
        process.stop()


def test_signed_webhooks_are_timed_on_the_callers_clock_and_forged_ones_are_not(
    receiver: tuple[ServiceProcess, str],
) -> None:
    process, secret = receiver
    body = b'{"request_id":"lat-1","status":"ok"}'
    headers = WebhookSigner(secret).headers(webhook_id=webhook_id_for("lat-1"), body=body)
    forged = WebhookSigner(new_webhook_secret()).headers(
        webhook_id=webhook_id_for("lat-2"), body=body.replace(b"lat-1", b"lat-2")
    )

    before = time.perf_counter()
    accepted = httpx.post(process.base_url + "/hooks/bench", content=body, headers=headers)
    after = time.perf_counter()
    rejected = httpx.post(
        process.base_url + "/hooks/bench",
        content=body.replace(b"lat-1", b"lat-2"),
        headers=forged,
    )

    assert accepted.status_code == 204 and rejected.status_code == 401
    assert httpx.get(process.base_url + "/count").json() == {"requests": 1}
    arrivals = httpx.get(process.base_url + "/arrivals").json()
    assert set(arrivals["received_at"]) == {"lat-1"}
    assert before <= arrivals["received_at"]["lat-1"] <= after


def test_the_receiver_refuses_to_start_without_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MODELBUS_WEBHOOK_SECRET", raising=False)

    with pytest.raises(SystemExit) as exited:
        main(["--port", "1"])

    assert exited.value.code == 2
    assert "MODELBUS_WEBHOOK_SECRET" in capsys.readouterr().err
