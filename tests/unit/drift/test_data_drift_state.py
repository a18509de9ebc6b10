"""The data drift state the judge keeps: episodes, JSON round trips and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.drift.domain.data_drift import DataDriftState
from services.drift.domain.data_sketch import DataSketch, sketch_batch
from shared.profile import ReferenceProfile, categorical_profile, numeric_profile

FEATURES = 4
CATEGORIES = ["a", "b", "c"]
SHARES = [0.5, 0.3, 0.2]


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(30)
    features = {f"x{i}": numeric_profile(rng.normal(size=5_000).tolist()) for i in range(FEATURES)}
    features["colour"] = categorical_profile(rng.choice(CATEGORIES, 5_000, p=SHARES).tolist())
    return ReferenceProfile(rows=5_000, features=features, target=categorical_profile(["y"]))


def _batch(
    state: DataDriftState, rng: np.random.Generator, events: int, shift: float = 0.0
) -> DataSketch:
    values = rng.normal(size=(events, FEATURES))
    values[:, 1] += shift
    colours = rng.choice(CATEGORIES, events, p=SHARES).tolist()
    return sketch_batch(state.reference, values, [colours], start=0, end=events)


def test_a_stationary_stream_opens_no_episode(profile: ReferenceProfile) -> None:
    state = DataDriftState(profile)
    rng = np.random.default_rng(31)

    signals = [s for _ in range(100) for s in state.apply(_batch(state, rng, 200))]

    assert signals == []


def test_a_shift_opens_one_episode_with_its_evidence_and_closes_it_after(
    profile: ReferenceProfile,
) -> None:
    state = DataDriftState(profile)
    rng = np.random.default_rng(32)
    for _ in range(5):
        assert state.apply(_batch(state, rng, 100)) == []

    during = [s for _ in range(20) for s in state.apply(_batch(state, rng, 100, shift=1.0))]
    after = [s for _ in range(40) for s in state.apply(_batch(state, rng, 100))]

    assert [(s.feature, s.transition) for s in during] == [("x1", "opened")]
    opened = during[0]
    assert opened.method == "cusum_mean_up"
    assert opened.statistic >= opened.threshold
    assert opened.evidence["current"]["mean"] > opened.evidence["reference"]["mean"] + 0.3
    assert [(s.feature, s.transition) for s in after] == [("x1", "closed")]
    json.dumps([s.evidence for s in during])  # evidence is plain JSON


def test_a_restored_state_behaves_identically(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(33)
    state = DataDriftState(profile)
    batches = [_batch(state, rng, 150, shift=0.6 if i > 6 else 0.0) for i in range(20)]
    for sketch in batches[:8]:
        state.apply(sketch)

    restored = DataDriftState.from_json(json.loads(json.dumps(state.to_json())), profile)

    for sketch in batches[8:]:
        wire = DataSketch.from_json(json.loads(json.dumps(sketch.to_json())))
        assert restored.apply(wire) == state.apply(sketch)
    np.testing.assert_array_equal(restored.levels, state.levels)
    assert restored.to_json() == state.to_json()


def test_merged_sketches_advance_the_levels_as_the_batches_one_by_one(
    profile: ReferenceProfile,
) -> None:
    rng = np.random.default_rng(34)
    one_by_one, merged = DataDriftState(profile), DataDriftState(profile)
    batches = [_batch(one_by_one, rng, 50, shift=0.3) for _ in range(6)]

    for sketch in batches:
        one_by_one.apply(sketch)
    combined = batches[0]
    for sketch in batches[1:]:
        combined = combined.then(sketch)
    merged.apply(combined)

    np.testing.assert_allclose(merged.levels, one_by_one.levels)


def test_bad_input_does_not_crash_and_counts_as_missing(profile: ReferenceProfile) -> None:
    state = DataDriftState(profile)
    values = np.array(
        [[np.nan, np.inf, -np.inf, 1e308], [1e300, -1e300, 0.0, np.nan], [0.0, 0.0, 0.0, 0.0]]
    )
    colours = [None, True, "never-seen"]

    sketch = sketch_batch(state.reference, values, [colours])
    state.apply(sketch)
    state.apply(sketch_batch(state.reference, np.empty((0, FEATURES)), [[]]))

    np.testing.assert_array_equal(sketch.numeric.missing, [1, 1, 1, 1])
    assert np.isfinite(state.levels).all()
    assert sketch.categorical.unseen[0] == {"never-seen": 1, "true": 1}
    json.dumps(state.to_json(), allow_nan=False)


def test_a_batch_of_the_wrong_shape_is_refused(profile: ReferenceProfile) -> None:
    state = DataDriftState(profile)

    with pytest.raises(ValueError, match=r"\(events, 4\)"):
        sketch_batch(state.reference, np.zeros((3, 5)), [["a", "b", "c"]])
    with pytest.raises(ValueError, match="one value per event"):
        sketch_batch(state.reference, np.zeros((3, 4)), [["a"]])


def test_a_categorical_frequency_shift_opens_an_episode_at_a_window(
    profile: ReferenceProfile,
) -> None:
    state = DataDriftState(profile)
    rng = np.random.default_rng(35)
    signals = []
    for _ in range(6):
        values = rng.normal(size=(250, FEATURES))
        colours = rng.choice(CATEGORIES, 250, p=[0.3, 0.3, 0.4]).tolist()
        signals += state.apply(sketch_batch(state.reference, values, [colours]))

    assert [(s.feature, s.transition, s.method) for s in signals] == [
        ("colour", "opened", "chi_square")
    ]
    assert signals[0].evidence["current"]["frequencies"]["c"] > 0.3
