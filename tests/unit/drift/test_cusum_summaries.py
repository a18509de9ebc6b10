"""CUSUM block summaries: composing them gives exactly the per-event recursion."""

from __future__ import annotations

import numpy as np

from services.drift.domain.cusum import (
    BlockSummary,
    first_crossings,
    level_path,
    summarise_block,
)


def _random_block(rng: np.random.Generator, events: int, columns: int) -> np.ndarray:
    means = rng.normal(0.0, 1.0, columns)
    spreads = rng.uniform(0.3, 4.0, columns)
    return rng.normal(means, spreads, (events, columns))


def test_a_summary_moves_any_start_level_to_the_exact_end_level() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        columns = 6
        increments = _random_block(rng, int(rng.integers(1, 80)), columns)
        cap = rng.uniform(0.5, 20.0, columns)
        start = rng.uniform(0.0, 1.0, columns) * cap

        exact = level_path(start, increments, cap)
        summary = summarise_block(increments, cap)

        np.testing.assert_allclose(summary.end_levels(start), exact[-1], atol=1e-9)


def test_summaries_of_consecutive_blocks_compose_like_one_block() -> None:
    rng = np.random.default_rng(12)
    for _ in range(200):
        columns = 5
        increments = _random_block(rng, int(rng.integers(0, 120)), columns)
        cap = rng.uniform(0.5, 20.0, columns)
        start = rng.uniform(0.0, 1.0, columns) * cap
        cuts = np.sort(rng.integers(0, increments.shape[0] + 1, size=3))
        pieces = np.split(increments, cuts)

        composed = BlockSummary.empty((columns,), cap)
        for piece in pieces:
            composed = composed.then(summarise_block(piece, cap))
        whole = summarise_block(increments, cap)

        np.testing.assert_allclose(composed.end_levels(start), whole.end_levels(start))
        if increments.shape[0]:
            exact = level_path(start, increments, cap)
            np.testing.assert_allclose(composed.end_levels(start), exact[-1], atol=1e-9)


def test_a_crossing_inside_a_block_is_seen_from_its_summary_and_located_exactly() -> None:
    rng = np.random.default_rng(13)
    for _ in range(200):
        columns = 8
        increments = _random_block(rng, int(rng.integers(1, 60)), columns)
        cap = rng.uniform(2.0, 20.0, columns)
        threshold = cap * rng.uniform(0.3, 1.0, columns)
        start = rng.uniform(0.0, 1.0, columns) * threshold  # below the threshold
        half = increments.shape[0] // 2

        exact = level_path(start, increments, cap)
        reached = exact >= threshold
        summary = summarise_block(increments[:half], cap).then(
            summarise_block(increments[half:], cap)
        )

        np.testing.assert_array_equal(
            summary.highest_levels(start) >= threshold, reached.any(axis=0)
        )
        expected_first = np.where(reached.any(axis=0), np.argmax(reached, axis=0), -1)
        np.testing.assert_array_equal(first_crossings(start, increments, threshold), expected_first)


def test_a_summary_survives_json() -> None:
    rng = np.random.default_rng(14)
    cap = np.full((3, 2), 5.0)
    summary = summarise_block(rng.normal(size=(40, 3, 2)), cap)

    restored = BlockSummary.from_json(summary.to_json(), (3, 2))

    start = rng.uniform(0.0, 5.0, (3, 2))
    np.testing.assert_array_equal(restored.end_levels(start), summary.end_levels(start))
    np.testing.assert_array_equal(restored.highest_levels(start), summary.highest_levels(start))
