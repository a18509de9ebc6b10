"""The feedback join process: `modelbus feedback run`.

Runs until SIGTERM or SIGINT, then stops in order: the batch at hand is joined and
committed, the loops end, clients close. Exits non-zero if a loop fails.
"""

from __future__ import annotations

import gc

from services.feedback.bootstrap import FeedbackService
from services.feedback.settings import FeedbackSettings
from shared.runtime.process import run_service

GC_FIRST_THRESHOLD = 50_000
"""Allocations between young-generation collections. Every batch builds a row, a dict
or two and a record per message, which reference counting frees; at the default (700)
the collector ran several times per batch and walked them anyway."""


def run() -> None:
    """Read settings from the environment and join feedback until told to stop."""
    gc.set_threshold(GC_FIRST_THRESHOLD, *gc.get_threshold()[1:])
    run_service("feedback", FeedbackSettings, FeedbackService)
