"""The drift-concept scenario: concept drift from labels and the label-free performance
estimate, measured over many seeds on river's synthetic streams (no broker needed).

A fixed model is trained on pre-drift data; its error bits feed the drift service's
detectors (services/drift/domain/concept.py, micro-batches of `batch` labels) beside
river's ADWIN, HDDM_A, DDM and FHDDM (fed 1 = correct) and an oracle CUSUM that knows
both error rates, at the service's false-alarm rate.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from river import drift
from river.datasets import synth
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from bench.drift_concept_summary import case_headline
from bench.report import progress
from services.drift.domain.concept import ConceptSettings, ConceptState, LabelSketch
from services.drift.domain.concept_cusum import design
from services.drift.domain.performance import (
    PerformanceSettings,
    PerformanceState,
    sketch_calibration,
    sketch_confidences,
)


@dataclass(frozen=True)
class ConceptPlan:
    """How much to measure: seeds, where the drift starts, how long to wait for it."""

    seeds: int = 50
    onset: int = 5000
    horizon: int = 3000
    stationary_labels: int = 25_000
    batch: int = 10
    training: int = 5000
    cbpe_reference: int = 5000
    cbpe_before: int = 10_000
    cbpe_after: int = 5000


@dataclass(frozen=True)
class Case:
    name: str
    before: Callable[[int], Iterator[tuple[dict[str, Any], Any]]]
    after: Callable[[int], Iterator[tuple[dict[str, Any], Any]]]
    family: str
    model: Callable[[], Any]


def _sea(variant: int) -> Callable[[int], Iterator[tuple[dict[str, Any], Any]]]:
    return lambda seed: iter(synth.SEA(variant=variant, noise=0.1, seed=seed))


def _agrawal(function: int) -> Callable[[int], Iterator[tuple[dict[str, Any], Any]]]:
    return lambda seed: iter(synth.Agrawal(classification_function=function, seed=seed))


CASES = (
    Case(
        "SEA variant 0 -> 1", _sea(0), _sea(1), "sea", lambda: DecisionTreeClassifier(max_depth=6)
    ),
    Case(
        "SEA variant 1 -> 2", _sea(1), _sea(2), "sea", lambda: DecisionTreeClassifier(max_depth=6)
    ),
    Case(
        "Agrawal function 0 -> 2",
        _agrawal(0),
        _agrawal(2),
        "agrawal",
        lambda: DecisionTreeClassifier(max_depth=8),
    ),
    Case(
        "Agrawal function 1 -> 3",
        _agrawal(1),
        _agrawal(3),
        "agrawal",
        lambda: DecisionTreeClassifier(max_depth=8),
    ),
)


def _rows(
    stream: Iterator[tuple[dict[str, Any], Any]], count: int
) -> tuple[np.ndarray, np.ndarray]:
    features, targets = [], []
    for x, y in itertools.islice(stream, count):
        features.append([float(value) for value in x.values()])
        targets.append(y)
    return np.asarray(features), np.asarray(targets)


def _errors(case: Case, seed: int, plan: ConceptPlan, drifting: bool) -> np.ndarray:
    """The fixed model's error bits: `onset` labels before the switch, `horizon` after
    (or a stationary stream of `stationary_labels`)."""
    base = 10_000 * seed
    model = case.model().set_params(random_state=seed)
    model.fit(*_rows(case.before(base + 1), plan.training))
    if not drifting:
        features, targets = _rows(case.before(base + 2), plan.stationary_labels)
        return np.asarray(model.predict(features) != targets)
    first = _rows(case.before(base + 2), plan.onset)
    second = _rows(case.after(base + 3), plan.horizon)
    return np.concatenate(
        [model.predict(first[0]) != first[1], model.predict(second[0]) != second[1]]
    )


# -- detectors: each returns the label positions at which it raised an alarm -------------------


def _service(settings: ConceptSettings, batch: int) -> Detector:
    """Alarms as the service publishes them: the last label of the batch whose evaluation
    started firing (a rising edge of any CUSUM channel)."""

    def run(errors: np.ndarray) -> list[int]:
        state = ConceptState.start(settings, "production")
        alarms, was_firing = [], False
        text = "".join("1" if error else "0" for error in errors)
        for start in range(0, errors.size, batch):
            signals = [s for s in state.apply(LabelSketch(text[start : start + batch]))]
            concept = [s for s in signals if s.kind == "concept"]
            firing = any(s.firing for s in concept)
            if firing and not was_firing:
                alarms.append(min(start + batch, errors.size) - 1)
            if concept:
                was_firing = firing and not all(s.quiet for s in concept)
        return alarms

    return run


Detector = Callable[[np.ndarray], list[int]]


def _service_detectors(settings: ConceptSettings, plan: ConceptPlan) -> dict[str, Detector]:
    """The service's default, and the same at a tenth of its false-alarm rate."""
    strict = replace(settings, false_alarms_per_label=settings.false_alarms_per_label / 10)
    return {
        f"modelbus CUSUMs ({chosen.false_alarms_per_label:g} false alarms/label)": _service(
            chosen, plan.batch
        )
        for chosen in (settings, strict)
    }


def _oracles(settings: ConceptSettings, plan: ConceptPlan) -> dict[str, Detector]:
    """The oracle at the service's two false-alarm rates: the best any detector can do."""
    return {
        f"oracle CUSUM (knows both rates; {rate:g} false alarms/label)": _oracle(plan.onset, rate)
        for rate in (settings.false_alarms_per_label, settings.false_alarms_per_label / 10)
    }


def _oracle(onset: int, false_alarms_per_label: float) -> Detector:
    """The CUSUM that knows both error rates of each stream (its own model's, before and
    after the onset), at the same false-alarm rate, one channel, restarted after an alarm.
    A model without errors before the onset is taken to err once in 10,000 labels."""

    def run(errors: np.ndarray) -> list[int]:
        before = max(float(errors[:onset].mean()), 1e-4)
        after = max(float(errors[onset:].mean()), before * 1.01)
        chosen = design(round(before, 6), round(after, 6), 1 / false_alarms_per_label)
        alarms, state = [], 0
        for index, error in enumerate(errors.tolist()):
            state = max(0, state + (chosen.error_step if error else -chosen.correct_step))
            if state >= chosen.threshold:
                alarms.append(index)
                state = 0
        return alarms

    return run


def _river(factory: Callable[[], Any], feed_correct: bool = False) -> Detector:
    def run(errors: np.ndarray) -> list[int]:
        detector = factory()
        alarms = []
        for index, error in enumerate(errors.tolist()):
            detector.update(int(not error) if feed_correct else int(error))
            if detector.drift_detected:
                alarms.append(index)
        return alarms

    return run


def _river_detectors() -> dict[str, Detector]:
    """River's detectors with their default parameters, each fresh per stream."""
    return {
        "river ADWIN": _river(drift.ADWIN),
        "river HDDM_A": _river(drift.binary.HDDMA),
        "river DDM": _river(drift.binary.DDM),
        "river FHDDM (fed 1 = correct)": _river(drift.binary.FHDDM, feed_correct=True),
    }


# -- the measurement ---------------------------------------------------------------------------


def _quantile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    return float(np.quantile(np.asarray(values), share, method="higher"))


def _score(alarms_per_seed: list[list[int]], onset: int, horizon: int) -> dict[str, Any]:
    delays = []
    false_seeds = false_alarms = 0
    for alarms in alarms_per_seed:
        early = [alarm for alarm in alarms if alarm < onset]
        false_alarms += len(early)
        false_seeds += bool(early)
        late = [alarm for alarm in alarms if onset <= alarm < onset + horizon]
        if late:
            delays.append(late[0] - onset + 1)
    seeds = len(alarms_per_seed)
    return {
        "seeds": seeds,
        "detection_rate": round(len(delays) / seeds, 3),
        "median_delay_labels": _quantile(delays, 0.5),
        "p90_delay_labels": _quantile(delays, 0.9),
        "seeds_with_false_alarm_before_onset": false_seeds,
        "false_alarms_before_onset": false_alarms,
    }


def _drifting(
    name: str, family: str, streams: list[np.ndarray], plan: ConceptPlan, settings: ConceptSettings
) -> dict[str, Any]:
    """Every detector on the same error streams: delays, false alarms, CPU per label."""
    detectors = _service_detectors(settings, plan) | _oracles(settings, plan) | _river_detectors()
    labels = sum(stream.size for stream in streams)
    results = {}
    for detector_name, detector in detectors.items():
        started = time.process_time()
        alarms = [detector(stream) for stream in streams]
        scored = _score(alarms, plan.onset, plan.horizon)
        scored["cpu_us_per_label"] = round((time.process_time() - started) * 1e6 / labels, 2)
        results[detector_name] = scored
    return {
        "case": name,
        "family": family,
        "error_rate_before": round(float(np.mean([s[: plan.onset].mean() for s in streams])), 4),
        "error_rate_after": round(float(np.mean([s[plan.onset :].mean() for s in streams])), 4),
        "detectors": results,
    }


def _concept_case(case: Case, plan: ConceptPlan, settings: ConceptSettings) -> dict[str, Any]:
    streams = [_errors(case, seed, plan, drifting=True) for seed in range(plan.seeds)]
    return _drifting(case.name, case.family, streams, plan, settings)


def _bernoulli_case(plan: ConceptPlan, settings: ConceptSettings) -> dict[str, Any]:
    """The target's numbers exactly: error bits at 0.12, then 0.21."""
    streams = []
    for seed in range(plan.seeds):
        rng = np.random.default_rng(seed)
        streams.append(
            np.concatenate([rng.random(plan.onset) < 0.12, rng.random(plan.horizon) < 0.21])
        )
    return _drifting("Bernoulli error bits 0.12 -> 0.21", "sea", streams, plan, settings)


def _stationary(plan: ConceptPlan, settings: ConceptSettings) -> dict[str, Any]:
    """False alarms per million labels on SEA without a switch (after each burn-in)."""
    case = CASES[0]
    streams = [_errors(case, seed, plan, drifting=False) for seed in range(plan.seeds)]
    detectors = _service_detectors(settings, plan) | _river_detectors()
    labels = sum(stream.size for stream in streams)
    rows = {}
    for name, detector in detectors.items():
        alarms = [detector(stream) for stream in streams]
        count = sum(len(found) for found in alarms)
        rows[name] = {
            "labels": labels,
            "false_alarms": count,
            "seeds_with_false_alarm": sum(bool(found) for found in alarms),
            "per_million_labels": round(count * 1e6 / labels, 1),
        }
    return {"error_rate": round(float(np.mean([s.mean() for s in streams])), 4), "detectors": rows}


# -- the label-free estimate ------------------------------------------------------------------


def _logistic_stream(
    rng: np.random.Generator, size: int, scale: float, shift: float
) -> tuple[np.ndarray, np.ndarray]:
    weights = np.array([2.0, -1.5, 1.0, 0.5, 0.0])
    features = rng.normal(0.0, 1.0, (size, weights.size))
    features[:, :2] *= scale
    features[:, 4] += shift
    chance = 1 / (1 + np.exp(-(features @ weights)))
    return features, rng.random(size) < chance


def _cbpe_case(
    plan: ConceptPlan, scale: float, shift: float, sharpen: float = 1.0
) -> dict[str, Any]:
    """A logistic model on its own (calibrated) world; after the shift, features 1-2 are
    scaled by `scale` (mass moves to the boundary) and feature 5 (no weight) moved by
    `shift` sd. Labels for calibration: 2,000 pre-shift examples."""
    settings = PerformanceSettings(reference_predictions=plan.cbpe_reference)
    errors_before, errors_after, raw_after = [], [], []
    delays, false_windows, detected = [], 0, 0
    truth_before, truth_after, estimate_before, estimate_after = [], [], [], []
    for seed in range(plan.seeds):
        rng = np.random.default_rng(seed)
        model = LogisticRegression().fit(*_logistic_stream(rng, plan.training, 1.0, 0.0))
        x0, y0 = _logistic_stream(rng, plan.cbpe_before, 1.0, 0.0)
        x1, y1 = _logistic_stream(rng, plan.cbpe_after, scale, shift)
        features, targets = np.vstack([x0, x1]), np.concatenate([y0, y1])
        # `sharpen` > 1 makes an overconfident model (its logits multiplied): raw
        # confidence then overstates accuracy, and only the calibration can correct it.
        logit = model.decision_function(features) * sharpen
        confidence = 1 / (1 + np.exp(-np.abs(logit)))
        correct = model.predict(features) == targets
        state = PerformanceState.start(settings, "production")
        state.learn(sketch_calibration(confidence[:2000], correct[:2000]))
        first_alarm = None
        for start in range(0, confidence.size, 250):
            end = min(start + 250, confidence.size)
            for signal in state.apply(sketch_confidences(confidence[start:end])):
                window = slice(end - signal.window_size, end)
                estimated = float(signal.current["estimated_accuracy"])
                actual = float(correct[window].mean())
                if end <= plan.cbpe_before:
                    errors_before.append(abs(estimated - actual))
                    truth_before.append(actual)
                    estimate_before.append(estimated)
                    false_windows += signal.firing
                elif window.start >= plan.cbpe_before:
                    errors_after.append(abs(estimated - actual))
                    raw_after.append(abs(float(signal.current["raw_confidence"]) - actual))
                    truth_after.append(actual)
                    estimate_after.append(estimated)
                    if signal.firing and first_alarm is None:
                        first_alarm = end - plan.cbpe_before
        if first_alarm is not None:
            detected += 1
            delays.append(first_alarm)
    return {
        "shift": f"features 1-2 x{scale:g}, feature 5 +{shift:g} sd"
        + (f"; overconfident model (logits x{sharpen:g})" if sharpen != 1.0 else ""),
        "seeds": plan.seeds,
        "true_accuracy_before": round(statistics.fmean(truth_before), 4),
        "estimated_accuracy_before": round(statistics.fmean(estimate_before), 4),
        "true_accuracy_after": round(statistics.fmean(truth_after), 4) if truth_after else None,
        "estimated_accuracy_after": round(statistics.fmean(estimate_after), 4)
        if estimate_after
        else None,
        "mean_abs_error_before": round(statistics.fmean(errors_before), 4),
        "mean_abs_error_after": round(statistics.fmean(errors_after), 4) if errors_after else None,
        "raw_confidence_mean_abs_error_after": round(statistics.fmean(raw_after), 4)
        if raw_after
        else None,
        "windows_firing_before_shift": false_windows,
        "windows_before_shift": len(errors_before),
        "detection_rate": round(detected / plan.seeds, 3),
        "median_delay_predictions": _quantile([float(d) for d in delays], 0.5),
    }


def run_drift_concept(plan: ConceptPlan) -> dict[str, Any]:
    settings = ConceptSettings()
    started = time.monotonic()
    cases = []
    progress(f"   drift-concept: {plan.seeds} seeds, onset at label {plan.onset}")
    cases.append(_bernoulli_case(plan, settings))
    for case in CASES:
        cases.append(_concept_case(case, plan, settings))
        progress(f"   {case.name}: {case_headline(cases[-1])}")
    stationary = _stationary(plan, settings)
    cbpe = [
        _cbpe_case(plan, 0.5, 0.0),
        _cbpe_case(plan, 0.5, 0.0, sharpen=3.0),
        _cbpe_case(plan, 1.0, 1.0),
    ]
    return {
        "plan": asdict(plan),
        "settings": settings.to_json(),
        "performance_settings": PerformanceSettings().to_json(),
        "cases": cases,
        "stationary": stationary,
        "cbpe": cbpe,
        "seconds": round(time.monotonic() - started, 1),
    }
