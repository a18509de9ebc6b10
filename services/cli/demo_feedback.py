"""The demo's last act: feedback for part of the traffic, then live quality per variant.

The demo's inputs are rows of the iris data, so it knows each request's true species.
It labels a share of the requests the way production does: the shop labels its own jobs
through the gateway (as a user), and a back-office system publishes labels for the jobs
it sent straight to Kafka. The feedback service joins them to the predictions, and its
live quality is what the report shows.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from services.cli.output import say
from shared.contracts import Feedback
from shared.kafka.publisher import Publisher
from shared.settings import ModelbusSettings
from shared.topics import FEEDBACK

LABELLED_SHARE = 0.4
WAIT_SECONDS = 60.0


async def send_feedback(
    settings: ModelbusSettings,
    gateway_url: str,
    gateway_key: str,
    truth: dict[str, str],
) -> int:
    """Label every request whose position falls in the labelled share; returns how many."""
    chosen = [rid for index, rid in enumerate(sorted(truth)) if index % 5 < LABELLED_SHARE * 5]
    through_gateway = [rid for rid in chosen if rid.startswith("demo-http-")]
    straight = [rid for rid in chosen if not rid.startswith("demo-http-")]
    refused: list[str] = []
    async with httpx.AsyncClient(
        base_url=gateway_url, headers={"Authorization": f"Bearer {gateway_key}"}, timeout=30
    ) as client:
        semaphore = asyncio.Semaphore(16)

        async def one(request_id: str) -> None:
            async with semaphore:
                response = await client.post(
                    "/v1/feedback", json={"request_id": request_id, "label": truth[request_id]}
                )
            if response.status_code != 202:
                refused.append(f"{response.status_code} {response.text[:100]}")

        await asyncio.gather(*(one(rid) for rid in through_gateway))
    publisher = Publisher.for_service(settings, source="demo-back-office")
    await publisher.start()
    try:
        await asyncio.gather(
            *(
                publisher.publish(
                    FEEDBACK,
                    Feedback(request_id=rid, label=truth[rid], source="back-office"),
                    key=rid,
                )
                for rid in straight
            )
        )
    finally:
        await publisher.stop()
    say(
        f"\n10. feedback: {len(through_gateway)} labels through the gateway (as the shop), "
        f"{len(straight)} straight to Kafka (as the back office)"
        + (f"; {len(refused)} refused: {refused[:2]}" if refused else "")
    )
    return len(chosen) - len(refused)


async def report_quality(feedback_url: str, api_key: str, *, expected: int, since: float) -> None:
    """Wait until the feedback service has joined the labels, then print live quality."""
    async with httpx.AsyncClient(
        base_url=feedback_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ) as client:
        deadline = time.monotonic() + WAIT_SECONDS
        window = time.time() - since + 60
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            response = await client.get(
                "/v1/quality", params={"model": "iris", "window_seconds": window}
            )
            response.raise_for_status()
            rows = response.json()
            served = sum(r["labelled"] for r in rows if r["variant"] != "shadow")
            if served >= expected:
                break
            await asyncio.sleep(0.5)
    say("\nLive quality from the labels (feedback service, predictions of this demo run)")
    say("  version  variant     predictions  labelled  coverage  accuracy  95% interval")
    for row in sorted(rows, key=lambda r: (r["version"], r["variant"])):
        accuracy = row["accuracy"]
        interval = (
            f"[{row['accuracy_low']:.3f}, {row['accuracy_high']:.3f}]"
            if accuracy is not None
            else "-"
        )
        say(
            f"  v{row['version']:<7} {row['variant']:<11} {row['predictions']:>11}  "
            f"{row['labelled']:>8}  {row['coverage'] or 0:>8.1%}  "
            f"{accuracy if accuracy is not None else float('nan'):>8.3f}  {interval}"
        )
    labelled = sum(r["labelled"] for r in rows if r["variant"] != "shadow")
    if labelled < expected:
        raise SystemExit(f"demo incomplete: {labelled} of {expected} labels joined")
    say(f"  every label joined to its prediction ({labelled}), the shadow's on the same labels")
