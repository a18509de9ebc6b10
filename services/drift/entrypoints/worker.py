"""The drift process: `modelbus drift run`.

Runs until SIGTERM or SIGINT, then stops in order: the batches at hand are committed,
the loops end, clients close. Exits non-zero if a loop fails.
"""

from __future__ import annotations

from services.drift.bootstrap import DriftService
from services.drift.settings import DriftSettings
from shared.runtime.process import run_service


def run() -> None:
    """Read settings from the environment and measure drift until told to stop."""
    run_service("drift", DriftSettings, DriftService)
