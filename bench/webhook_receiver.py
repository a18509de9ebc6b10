"""The latency scenario's webhook receiver, in a process of its own.

`python -m bench.webhook_receiver --port PORT` (secret in MODELBUS_WEBHOOK_SECRET) serves
the reference receiver (services/delivery/receiver.py: verifies every Standard Webhooks
signature) and notes when each request's webhook arrived. A caller's webhook server is
never inside the load generator: run in a thread of the bench, it would compete with the
bench's prediction reader for the GIL, and the bench would time its own contention.

Arrival times are `time.perf_counter()`, which on Linux reads CLOCK_MONOTONIC, one clock
for every process of the machine; the bench compares them with its own send times and
checks the two clocks agree (`GET /arrivals` also returns the receiver's `now`).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI

from services.delivery.receiver import create_receiver_app


def create_app(secret: str) -> FastAPI:
    """The reference receiver plus `GET /count` and `GET /arrivals` (request id -> time)."""
    arrivals: dict[str, float] = {}
    lock = threading.Lock()

    def on_delivery(payload: dict[str, Any]) -> None:
        now = time.perf_counter()
        with lock:
            arrivals.setdefault(str(payload["request_id"]), now)

    app = create_receiver_app(secret, on_delivery=on_delivery)

    @app.get("/count")
    def count() -> dict[str, int]:
        with lock:
            return {"requests": len(arrivals)}

    @app.get("/arrivals")
    def all_arrivals() -> dict[str, Any]:
        with lock:
            return {"now": time.perf_counter(), "received_at": dict(arrivals)}

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhook_receiver",
        description="Signature-verifying webhook receiver that records arrival times "
        "(secret from MODELBUS_WEBHOOK_SECRET).",
    )
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    secret = os.environ.get("MODELBUS_WEBHOOK_SECRET", "")
    if not secret:
        parser.error("set MODELBUS_WEBHOOK_SECRET to the delivery service's secret")
    uvicorn.run(
        create_app(secret), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
