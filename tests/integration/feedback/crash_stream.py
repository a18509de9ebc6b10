"""A long mixed stream for the crash test, and the labels it must end with, worked out by hand.

Each request gets one feedback story (an explicit label, a rating, two labels of unequal
authority, two labels of one authority, a label and a weak signal, or nothing). The
expected label of each story is written out below from the rules the service's README
states, not computed with the service's own resolver, so the test checks the service
against an independent reading of the rules.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

from shared.contracts import Feedback, Prediction, PredictionRequest
from shared.contracts.predictions import ClassifierOutput
from shared.topics import FEEDBACK, PREDICTIONS, REQUESTS, TopicSpec

IRIS = ("setosa", "versicolor", "virginica")
Story = Literal[
    "silent", "label", "up", "down", "user_beats_system", "latest_wins", "label_beats_weak"
]
STORIES: tuple[tuple[Story, float], ...] = (
    ("silent", 0.10),
    ("label", 0.25),
    ("up", 0.15),
    ("down", 0.10),
    ("user_beats_system", 0.15),
    ("latest_wins", 0.15),
    ("label_beats_weak", 0.10),
)
SHADOW_SHARE = 1 / 3
DUPLICATE_SHARE = 0.10
EARLY_FEEDBACK_SHARE = 0.15


@dataclass(frozen=True)
class Send:
    """One record of the stream."""

    topic: TopicSpec[Any]
    message: Any
    key: str


@dataclass(frozen=True)
class ExpectedLabel:
    """The standing label of one (request, variant), as a hand computation has it."""

    version: int
    predicted: str
    label: str | None
    refuted: str | None
    correct: bool | None
    feedback_id: str
    conflicting: bool


@dataclass
class CrashStream:
    """The records to send, in order, and what they must leave on `labels` and in the store."""

    sends: list[Send] = field(default_factory=list)
    requests: int = 0
    expected: dict[tuple[str, str], ExpectedLabel] = field(default_factory=dict)
    feedback_ids: set[str] = field(default_factory=set)
    duplicates_sent: int = 0
    early_feedback: int = 0
    shadows: int = 0
    stories: dict[str, int] = field(default_factory=dict)

    def chunks(self, size: int) -> Iterator[list[Send]]:
        for start in range(0, len(self.sends), size):
            yield self.sends[start : start + size]


def crash_stream(rng: random.Random, *, requests: int, now: datetime) -> CrashStream:
    """`requests` served requests with their predictions and feedback, interleaved in time.

    Feedback is placed up to 80 steps after its request, or (a share of it) up to 40 steps
    before; a duplicate (same `feedback_id`) is sent again somewhere later still.
    """
    stream = CrashStream(requests=requests)
    placed: list[tuple[float, int, Send]] = []
    served_at = now - timedelta(hours=1)

    def place(step: float, send: Send) -> None:
        placed.append((step, len(placed), send))

    for index in range(requests):
        request_id = f"r-{index:05d}"
        routing_key = f"customer-{index % 97}" if index % 3 == 0 else None
        predicted_at = served_at + timedelta(milliseconds=index)
        production = rng.choice(IRIS)
        shadow = rng.choice(IRIS) if rng.random() < SHADOW_SHARE else None
        predict = partial(_prediction, request_id, routing_key=routing_key, at=predicted_at)
        place(index, _request(request_id, routing_key, predicted_at))
        place(index, predict(production, 1, "production"))
        if shadow is not None:
            stream.shadows += 1
            place(index + 0.5, predict(shadow, 2, "shadow"))
        story = rng.choices([s for s, _ in STORIES], weights=[w for _, w in STORIES])[0]
        stream.stories[story] = stream.stories.get(story, 0) + 1
        records, decided = _story(story, request_id, production, predicted_at, rng)
        early = bool(records) and rng.random() < EARLY_FEEDBACK_SHARE
        stream.early_feedback += early
        for record in records:
            stream.feedback_ids.add(record.feedback_id)
            step = index - rng.randint(1, 40) if early else index + rng.randint(1, 80)
            place(step, Send(FEEDBACK, record, record.request_id))
            if rng.random() < DUPLICATE_SHARE:
                stream.duplicates_sent += 1
                place(step + rng.randint(1, 200), Send(FEEDBACK, record, record.request_id))
        if decided is None:
            continue
        for variant, version, answer in (("production", 1, production), ("shadow", 2, shadow)):
            if answer is not None:
                stream.expected[(request_id, variant)] = _judged(decided, version, answer)
    stream.sends = [send for _, _, send in sorted(placed, key=lambda item: item[:2])]
    return stream


@dataclass(frozen=True)
class _Decision:
    """What decides a story: the deciding feedback, its label or what it rules out."""

    feedback_id: str
    label: str | None
    refuted: str | None
    conflicting: bool


def _story(
    story: Story, request_id: str, production: str, predicted_at: datetime, rng: random.Random
) -> tuple[list[Feedback], _Decision | None]:
    """The feedback of one story, and by the stated rules the feedback that decides it."""

    def given(seconds: float, **kind: Any) -> Feedback:
        return Feedback(
            feedback_id=f"{request_id}-f{int(seconds)}",
            request_id=request_id,
            source="crash-test",
            created_at=predicted_at + timedelta(seconds=seconds),
            **kind,
        )

    if story == "silent":
        return [], None
    if story == "label":  # ground truth, right or wrong
        only = given(60, label=rng.choice(IRIS))
        return [only], _Decision(only.feedback_id, only.label, None, False)  # type: ignore[arg-type]
    if story == "up":  # "up" confirms the served answer
        up = given(60, rating="up")
        return [up], _Decision(up.feedback_id, production, None, False)
    if story == "down":  # "down" among three classes only rules the served answer out
        down = given(60, rating="down")
        return [down], _Decision(down.feedback_id, None, production, False)
    first, second = rng.choice(IRIS), rng.choice(IRIS)
    if story == "user_beats_system":  # a user's word beats a later system's
        user = given(60, label=first, authority="user")
        system = given(120, label=second)
        return [user, system], _Decision(user.feedback_id, first, None, first != second)
    if story == "latest_wins":  # within one authority, the later word wins
        earlier, later = given(60, label=first), given(120, label=second)
        return [earlier, later], _Decision(later.feedback_id, second, None, first != second)
    # "copied" weakly confirms the served answer; a label beats it, however late it comes
    label, copied = given(60, label=first), given(120, signal="copied")
    return [label, copied], _Decision(label.feedback_id, first, None, first != production)


def _judged(decided: _Decision, version: int, predicted: str) -> ExpectedLabel:
    """How the standing label judges one variant's answer."""
    if decided.label is not None:
        correct: bool | None = decided.label == predicted
    else:  # only the served answer was ruled out; another answer cannot be judged
        correct = False if decided.refuted == predicted else None
    return ExpectedLabel(
        version=version,
        predicted=predicted,
        label=decided.label,
        refuted=decided.refuted,
        correct=correct,
        feedback_id=decided.feedback_id,
        conflicting=decided.conflicting,
    )


def _request(request_id: str, routing_key: str | None, at: datetime) -> Send:
    message = PredictionRequest(
        request_id=request_id,
        model="iris",
        inputs={"sepal_length": 5.1, "petal_width": 0.2},
        routing_key=routing_key,
        created_at=at - timedelta(milliseconds=5),
    )
    return Send(REQUESTS, message, message.partition_key)


def _prediction(
    request_id: str,
    label: str,
    version: int,
    variant: Literal["production", "shadow"],
    *,
    routing_key: str | None,
    at: datetime,
) -> Send:
    probabilities = {name: (0.8 if name == label else 0.1) for name in IRIS}
    message = Prediction(
        request_id=request_id,
        model="iris",
        version=version,
        variant=variant,
        status="ok",
        output=ClassifierOutput(label=label, probabilities=probabilities),
        latency_ms=1.0,
        routing_key=routing_key,
        created_at=at,
    )
    return Send(PREDICTIONS, message, message.partition_key)


def utc_now() -> datetime:
    return datetime.now(UTC)
