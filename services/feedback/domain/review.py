"""Which predictions a human should look at, under a model's review rules.

Sampling is decided from the request id (a hash, not a random draw), so a batch replayed
after a crash picks the same predictions, and replicas agree without talking.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from shared.feedback_policy import ReviewRules

RANDOM = "random"
LOW_MARGIN = "low_margin"
SHADOW_DISAGREEMENT = "shadow_disagreement"
NEGATIVE_RATING = "negative_rating"


def share_of(request_id: str) -> float:
    """Where the request id falls in [0, 1): uniform over ids, the same every time."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def margin(probabilities: Mapping[str, float]) -> float | None:
    """How far the top class leads the runner-up; None without two classes."""
    if len(probabilities) < 2:
        return None
    first, second = sorted(probabilities.values(), reverse=True)[:2]
    return first - second


def sampled(request_id: str, top_margin: float | None, rules: ReviewRules) -> list[str]:
    """Why a served prediction goes to review at ingest (random share, low confidence)."""
    reasons = []
    if rules.random_share > 0 and share_of(request_id) < rules.random_share:
        reasons.append(RANDOM)
    if rules.low_margin is not None and top_margin is not None and top_margin < rules.low_margin:
        reasons.append(LOW_MARGIN)
    return reasons
