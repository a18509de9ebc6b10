"""The delivery worker process: `modelbus delivery run`.

Runs until SIGTERM or SIGINT, then stops in order: no new batches, attempts under way
finish (up to the request timeout), clients close. Exits non-zero if a loop fails.
"""

from __future__ import annotations

from services.delivery.bootstrap import build_service
from services.delivery.settings import DeliverySettings
from shared.runtime.process import run_service


def run() -> None:
    """Read settings from the environment and deliver webhooks until told to stop."""
    run_service("delivery", DeliverySettings, build_service)
