"""The feedback join process: `modelbus feedback run`.

Runs until SIGTERM or SIGINT, then stops in order: the batch at hand is joined and
committed, the loops end, clients close. Exits non-zero if a loop fails.
"""

from __future__ import annotations

from services.feedback.bootstrap import FeedbackService
from services.feedback.settings import FeedbackSettings
from shared.runtime.process import run_service


def run() -> None:
    """Read settings from the environment and join feedback until told to stop."""
    run_service("feedback", FeedbackSettings, FeedbackService)
