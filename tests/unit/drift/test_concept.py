"""Concept drift from labels: block summaries, the CUSUM thresholds, live accuracy and the
state's JSON, without I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from services.drift.domain.concept import (
    ConceptSettings,
    ConceptState,
    LabelSketch,
    baseline_rate,
    sketch_labels,
)
from services.drift.domain.concept_cusum import (
    BlockSummary,
    cusum_path,
    design,
    in_control_run_length,
    wilson_interval,
)
from services.drift.domain.episodes import Episode, EpisodeRules, Signal, advance
from shared.contracts.labels import LabelledExample

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def per_event(start: int, increments: list[int]) -> list[int]:
    path, state = [], start
    for step in increments:
        state = max(0, state + step)
        path.append(state)
    return path


def bits_of(errors: np.ndarray) -> str:
    return "".join("1" if error else "0" for error in errors)


def error_stream(seed: int, rates: list[tuple[int, float]]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.random(size) < rate for size, rate in rates])


def feed(state: ConceptState, errors: np.ndarray, sizes: list[int]) -> list[Signal]:
    """Feed labels in batches of the given sizes (cycled); every signal, in order."""
    seen: list[Signal] = []
    position, turn = 0, 0
    while position < errors.size:
        size = sizes[turn % len(sizes)]
        sketch = LabelSketch(bits_of(errors[position : position + size]), NOW, NOW)
        seen += state.apply(sketch)
        position, turn = position + size, turn + 1
    return seen


def crossings(signals: list[Signal]) -> dict[str, list[int]]:
    """Per CUSUM channel, the label at which it reached its threshold, per firing batch."""
    found: dict[str, list[int]] = {}
    for signal in signals:
        if signal.firing and signal.kind == "concept":
            found.setdefault(signal.method, []).append(int(signal.evidence["crossed_at_label"]))
    return found


def first_crossing(signals: list[Signal]) -> int | None:
    return min((p for positions in crossings(signals).values() for p in positions), default=None)


# -- block summaries --------------------------------------------------------------------------


def test_block_summaries_compose_to_the_per_event_cusum() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        increments = rng.choice([-2, -1, 3, 7], size=int(rng.integers(1, 60)))
        cut = int(rng.integers(0, increments.size + 1))
        start = int(rng.integers(0, 20))
        whole = BlockSummary.of(increments)
        joined = BlockSummary.of(increments[:cut]).then(BlockSummary.of(increments[cut:]))
        path = per_event(start, increments.tolist())
        for summary in (whole, joined):
            assert summary.end_state(start) == path[-1]
            assert summary.highest_state(start) == max(path)
        assert cusum_path(start, increments).tolist() == path


def test_the_empty_block_is_the_identity() -> None:
    block = BlockSummary.of(np.array([3, -1, -1, 4]))
    assert BlockSummary().then(block) == block == block.then(BlockSummary.of(np.array([])))


# -- thresholds from a false-alarm rate ------------------------------------------------------


def test_the_markov_chain_run_length_matches_a_simulation() -> None:
    chosen = design(0.2, 0.3, 400.0)
    assert chosen.run_length >= 400.0
    rng = np.random.default_rng(5)
    runs = []
    for _ in range(400):
        state, steps = 0, 0
        while state < chosen.threshold:
            steps += 1
            error = rng.random() < 0.2
            state = max(0, state + (chosen.error_step if error else -chosen.correct_step))
        runs.append(steps)
    simulated = float(np.mean(runs))
    standard_error = float(np.std(runs)) / np.sqrt(len(runs))
    assert abs(simulated - chosen.run_length) < 4 * standard_error


@pytest.mark.parametrize(
    ("in_control", "out_of_control", "run_length"),
    [(0.12, 0.18, 2e5), (0.001, 0.004, 2e5), (0.3, 0.9, 50.0), (0.05, 0.2, 1e4)],
)
def test_the_threshold_is_the_smallest_that_reaches_the_run_length(
    in_control: float, out_of_control: float, run_length: float
) -> None:
    chosen = design(in_control, out_of_control, run_length)
    steps = (chosen.error_step, chosen.correct_step)
    assert in_control_run_length(*steps, chosen.threshold, in_control) >= run_length
    assert in_control_run_length(*steps, chosen.threshold - 1, in_control) < run_length


@pytest.mark.parametrize("steps", [(461, 1, 1776), (17, 3, 313)])
def test_the_banded_and_the_sparse_solve_agree(steps: tuple[int, int, int]) -> None:
    rate = 0.001 if steps[0] > 100 else 0.12
    banded = in_control_run_length(*steps, rate, sparse=False)
    assert in_control_run_length(*steps, rate, sparse=True) == pytest.approx(banded, rel=1e-9)


def test_a_design_needs_rates_in_order() -> None:
    with pytest.raises(ValueError, match="in-control rate"):
        design(0.0, 0.1, 100.0)
    with pytest.raises(ValueError, match="in-control rate"):
        design(0.2, 0.1, 100.0)


def test_a_higher_threshold_means_a_longer_in_control_run() -> None:
    lengths = [in_control_run_length(5, 1, threshold, 0.12) for threshold in (20, 40, 80)]
    assert lengths[0] < lengths[1] < lengths[2]


def test_a_burn_in_without_errors_still_gives_a_positive_baseline() -> None:
    assert 0 < baseline_rate(0, 1000, 1.0) < 0.01
    assert baseline_rate(120, 1000, 1.0) > 0.12  # the upper bound, not the estimate


def test_wilson_bounds() -> None:
    low, high = wilson_interval(50, 100, 1.959964)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(0, 10, 1.96)[0] == 0.0
    assert wilson_interval(10, 10, 1.96)[1] == 1.0
    assert wilson_interval(0, 0, 1.96) == (0.0, 1.0)


# -- the detector -------------------------------------------------------------------------------


def test_how_labels_are_cut_into_batches_changes_nothing() -> None:
    errors = error_stream(8, [(5000, 0.12), (1500, 0.3)])
    settings = ConceptSettings()
    one_by_one = crossings(feed(ConceptState.start(settings, "production"), errors[:1500], [1]))
    assert one_by_one == {}  # the per-event path is slow: compare it on the start only
    states = [ConceptState.start(settings, "production") for _ in range(3)]
    for state, sizes in zip(states, ([1], [7, 50, 3], [1000]), strict=True):
        feed(state, errors[:1500], sizes)
    assert states[0].to_json() == states[1].to_json() == states[2].to_json()
    runs = [ConceptState.start(settings, "production") for _ in range(3)]
    found = [
        {
            method: positions[0]
            for method, positions in crossings(feed(state, errors, sizes)).items()
        }
        for state, sizes in zip(runs, ([13, 1, 250], [64], [2000]), strict=True)
    ]
    assert found[0] == found[1] == found[2] and len(found[0]) == 2
    assert runs[0].to_json() == runs[1].to_json() == runs[2].to_json()


def test_a_json_round_trip_gives_identical_behaviour() -> None:
    errors = error_stream(9, [(3000, 0.1), (800, 0.3)])
    original = ConceptState.start(ConceptSettings(), "canary", offline_accuracy=0.92)
    feed(original, errors[:2200], [100])
    restored = ConceptState.from_json(json.loads(json.dumps(original.to_json())))
    assert restored.to_json() == original.to_json()
    assert feed(restored, errors[2200:], [37]) == feed(original, errors[2200:], [37])


def test_a_step_change_is_detected_and_nothing_fires_before_it() -> None:
    errors = error_stream(10, [(4000, 0.10), (1000, 0.30)])
    found = crossings(feed(ConceptState.start(ConceptSettings(), "production"), errors, [25]))
    first = min(position for positions in found.values() for position in positions)
    assert 4000 <= first < 4250


def test_a_broken_model_fires_the_fast_channel_within_a_few_labels() -> None:
    errors = error_stream(11, [(2000, 0.02), (200, 0.5)])
    found = crossings(feed(ConceptState.start(ConceptSettings(), "production"), errors, [5]))
    assert 2000 <= found["bernoulli_cusum_large"][0] < 2030


def test_false_alarms_on_a_stationary_stream_stay_under_the_stated_rate() -> None:
    """At 1 false alarm per 2,000 labels the first alarm should come, on average, no
    sooner than after 2,000 monitored labels (the baseline's upper bound only delays it)."""
    settings = ConceptSettings(burn_in=500, false_alarms_per_label=1 / 2000)
    runs = []
    for seed in range(30):
        errors = error_stream(100 + seed, [(20_000, 0.15)])
        first = first_crossing(feed(ConceptState.start(settings, "production"), errors, [500]))
        runs.append((20_000 if first is None else first) - settings.burn_in)
    assert np.mean(runs) >= 2000 * 0.8
    assert np.mean(runs) <= 2000 * 8  # thresholds follow the rate, not "never"


def test_after_firing_the_statistic_stays_at_the_threshold_and_quiets_when_it_recovers() -> None:
    errors = error_stream(12, [(2000, 0.1), (400, 0.4), (3000, 0.1)])
    state = ConceptState.start(ConceptSettings(), "production")
    signals = feed(state, errors, [100])
    large = [s for s in signals if s.method == "bernoulli_cusum_large"]
    assert any(s.firing for s in large)
    assert large[-1].quiet and not large[-1].firing


def test_evidence_names_the_baseline_and_the_current_error_rate() -> None:
    errors = error_stream(13, [(3000, 0.1), (600, 0.35)])
    signals = feed(ConceptState.start(ConceptSettings(), "production"), errors, [50])
    firing = next(s for s in signals if s.firing and s.kind == "concept")
    reference, current = firing.reference, firing.current
    assert 0.08 < reference["error_rate"] < 0.12
    assert current["error_rate"] > 0.2 and current["interval"][0] > reference["error_rate"]


# -- live accuracy against the offline metric -----------------------------------------------------


def test_live_accuracy_under_an_optimistic_offline_metric_holds_one_episode_open() -> None:
    """An uploader claimed 0.97; the model really gets 0.88. The comparison fires every
    window, the episode layer opens once, and the CUSUMs (baseline from labels) stay calm."""
    errors = error_stream(14, [(6000, 0.12)])
    state = ConceptState.start(ConceptSettings(), "production", offline_accuracy=0.97)
    signals = feed(state, errors, [250])
    accuracy = [s for s in signals if s.method == "live_accuracy_wilson"]
    assert len(accuracy) == 12 and all(s.firing for s in accuracy)
    assert not crossings(signals)
    episode, transitions = Episode(), []
    for signal in accuracy:
        episode, change = advance(episode, [signal], EpisodeRules(), NOW)
        if change is not None:
            transitions.append(change.transition)
    assert transitions == ["open"]


def test_live_accuracy_close_to_the_offline_metric_does_not_fire() -> None:
    errors = error_stream(15, [(5000, 0.12)])
    state = ConceptState.start(ConceptSettings(), "production", offline_accuracy=0.88)
    accuracy = [s for s in feed(state, errors, [500]) if s.kind == "performance"]
    assert len(accuracy) == 10 and not any(s.firing for s in accuracy)


def test_a_version_state_compares_with_its_uploaded_accuracy() -> None:
    settings = ConceptSettings()
    with_metric = ConceptState.for_version(settings, "production", {"accuracy": 0.91, "f1": 0.8})
    assert with_metric.offline_accuracy == 0.91
    assert ConceptState.for_version(settings, "production", {"f1": 0.8}).offline_accuracy is None


@pytest.mark.parametrize("offline", [float("nan"), 1.7, -0.2, float("inf")])
def test_an_unusable_offline_metric_disables_the_comparison_only(offline: float) -> None:
    state = ConceptState.start(ConceptSettings(), "production", offline_accuracy=offline)
    signals = feed(state, error_stream(16, [(1500, 0.1)]), [500])
    assert state.offline_accuracy is None
    assert all(s.kind == "concept" for s in signals) and signals


# -- hostile input and sketches --------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"burn_in": 0}, "burn_in must be at least 1"),
        ({"false_alarms_per_label": 0.0}, "false_alarms_per_label"),
        ({"moderate_increase": 1.0}, "moderate_increase must be over 1"),
        ({"baseline_cap": 10, "burn_in": 100}, "baseline_cap"),
    ],
)
def test_unusable_settings_are_refused_with_the_reason(
    changes: dict[str, float], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        ConceptSettings(**changes)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=named):
        ConceptSettings.from_json(ConceptSettings().to_json() | changes)


def test_an_empty_sketch_changes_nothing() -> None:
    state = ConceptState.start(ConceptSettings(), "production")
    before = state.to_json()
    assert state.apply(LabelSketch()) == []
    assert state.to_json() == before


def test_a_sketch_with_foreign_characters_is_refused() -> None:
    with pytest.raises(ValueError, match="'0' or '1'"):
        LabelSketch.from_json({"bits": "01x1"})


def test_sketches_merge_by_concatenation() -> None:
    first = LabelSketch("0110", NOW, NOW)
    later = LabelSketch("1", datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC))
    merged = first.then(later)
    assert merged.bits == "01101" and merged.errors == 3 and merged.labels == 5
    assert merged.first_at == NOW and merged.last_at == later.last_at
    assert LabelSketch.from_json(json.loads(json.dumps(merged.to_json()))) == merged


def labelled(label_id: str, **changes: object) -> LabelledExample:
    fields: dict[str, object] = {
        "label_id": label_id,
        "request_id": f"r-{label_id}",
        "model": "iris",
        "version": 1,
        "variant": "production",
        "inputs": {},
        "correct": True,
        "strength": "label",
        "source": "reviewer",
        "authority": "reviewer",
        "feedback_id": "f",
        "predicted_at": NOW,
        "labelled_at": NOW,
    } | changes
    return LabelledExample.model_validate(fields)


def test_only_undisputed_ground_truth_counts_and_repeats_count_once() -> None:
    sketches = sketch_labels(
        [
            labelled("a", correct=False),
            labelled("a", correct=False),  # republished
            labelled("b", correct=True),
            labelled("c", correct=False, strength="weak"),
            labelled("d", correct=False, conflicting=True),
            labelled("e", correct=None),
            labelled("f", correct=False, variant="canary"),
            labelled("g", correct=True, version=2),
        ]
    )
    assert sketches[("iris", 1, "production")].bits == "10"
    assert sketches[("iris", 1, "canary")].bits == "1"
    assert sketches[("iris", 2, "production")].bits == "0"
    assert len(sketches) == 3
