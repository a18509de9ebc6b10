"""The drift-data scenario: quality and cost of the data drift detectors, no services.

Each seed draws a 10,000-row reference, profiles it with shared.profile, and streams
batches through the same sketch -> apply path the drift service runs. Delays count events
from the onset to the detecting event inclusive; a CUSUM's detecting event comes from the
exact per-event path (services.drift.domain.cusum.first_crossings), a windowed test's is
the end of its batch. Beside it, in the same data: an oracle CUSUM (one-sided, knows
both means, threshold for 1 false alarm per 1,000,000 events) and windowed checks as
Evidently runs them (two-sample KS p < 0.05 and PSI > 0.1 on 10 bins, 500-event windows).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from river.datasets import synth
from scipy.stats import chisquare, ks_2samp

from services.drift.domain.channels import channel_increments
from services.drift.domain.cusum import first_crossings
from services.drift.domain.data_drift import DataDriftState
from services.drift.domain.data_sketch import sketch_batch
from services.drift.domain.settings import TARGET_FALSE_ALERTS_PER_EVENT
from services.drift.domain.thresholds import siegmund_arl, threshold_for_arl
from shared.profile import ReferenceProfile, categorical_profile, numeric_profile

FEATURES: Final = 20
DRIFTED: Final = 7
CATEGORIES: Final = ("a", "b", "c", "d", "e")
SHARES: Final = np.array([0.35, 0.25, 0.2, 0.12, 0.08])
SHIFTED_SHARES: Final = np.array([0.27, 0.25, 0.2, 0.16, 0.12])
"""The categorical case: 8 points move from the commonest category to the two rarest
(PSI ~0.06 on the whole: below Evidently's 0.1 rule, well within a chi-square's reach)."""
EVIDENTLY_WINDOW: Final = 500
EVIDENTLY_BINS: Final = 10


@dataclass(frozen=True)
class DriftDataPlan:
    """How much to run: seeds per shift case, the stationary stream, batch sizes."""

    shift_seeds: int = 200
    stationary_seeds: int = 50
    stationary_events: int = 50_000
    reference_rows: int = 10_000
    batch: int = 100
    stationary_batch: int = 500
    horizon: int = 4_000
    evidently_stationary_seeds: int = 4
    river_events: int = 300_000

    @classmethod
    def quick(cls) -> DriftDataPlan:
        return cls(
            shift_seeds=20,
            stationary_seeds=4,
            stationary_events=10_000,
            horizon=3_000,
            evidently_stationary_seeds=1,
            river_events=10_000,
        )


@dataclass(frozen=True)
class ShiftCase:
    name: str
    mean: float = 0.0
    variance: float = 1.0
    categorical: bool = False


CASES: Final = (
    ShiftCase("mean +0.5 sd", mean=0.5),
    ShiftCase("mean +0.25 sd", mean=0.25),
    ShiftCase("mean +1.0 sd", mean=1.0),
    ShiftCase("variance x1.5", variance=1.5),
    ShiftCase("categorical frequencies", categorical=True),
)


def run_drift_data(plan: DriftDataPlan) -> dict[str, Any]:
    """Every case, the stationary stream and the river stream; figures as plain JSON."""
    started = time.monotonic()
    cases: dict[str, dict[str, list[Any]]] = {case.name: _empty_case() for case in CASES}
    for seed in range(plan.shift_seeds):
        rng = np.random.default_rng(10_000 + seed)
        reference, profile = _reference(rng, plan.reference_rows)
        for case in CASES:
            outcome = _shift_run(case, profile, reference, rng, plan)
            for key, value in outcome.items():
                cases[case.name][key].append(value)
    return {
        "plan": asdict(plan),
        "design": _design(plan.reference_rows),
        "shift": {name: _summarise_case(raw, plan.horizon) for name, raw in cases.items()},
        "stationary": _stationary(plan),
        "river_agrawal_stationary": _river_stationary(plan),
        "seconds": round(time.monotonic() - started, 1),
    }


# -- streams ------------------------------------------------------------------------------


def _reference(rng: np.random.Generator, rows: int) -> tuple[NDArray[np.float64], ReferenceProfile]:
    values = rng.normal(size=(rows, FEATURES))
    colours = rng.choice(CATEGORIES, rows, p=SHARES).tolist()
    features: dict[str, Any] = {
        f"x{i}": numeric_profile(values[:, i].tolist()) for i in range(FEATURES)
    }
    features["colour"] = categorical_profile(colours)
    profile = ReferenceProfile(rows=rows, features=features, target=categorical_profile(["y"]))
    return values, profile


def _events(
    rng: np.random.Generator, events: int, case: ShiftCase | None
) -> tuple[NDArray[np.float64], list[str]]:
    values = rng.normal(size=(events, FEATURES))
    shares = SHARES
    if case is not None:
        values[:, DRIFTED] = values[:, DRIFTED] * np.sqrt(case.variance) + case.mean
        if case.categorical:
            shares = SHIFTED_SHARES
    return values, rng.choice(CATEGORIES, events, p=shares).tolist()


# -- one shift run ------------------------------------------------------------------------


def _empty_case() -> dict[str, list[Any]]:
    keys = ("ours", "oracle", "evidently_ks", "evidently_psi", "false_alerts", "fe")
    return {key: [] for key in keys}


def _shift_run(
    case: ShiftCase,
    profile: ReferenceProfile,
    reference: NDArray[np.float64],
    rng: np.random.Generator,
    plan: DriftDataPlan,
) -> dict[str, Any]:
    """One seed of one case: the state through the stream, the exact CUSUM delay from the
    state's levels at the onset, the oracle and the Evidently-style windows."""
    state = DataDriftState(profile)
    onset = plan.batch * int(rng.integers(10, 31))  # 1,000 to 3,000 events in
    before, colours_before = _events(rng, onset, None)
    after, colours_after = _events(rng, plan.horizon, case)
    false_alerts = 0
    for start in range(0, onset, plan.batch):
        stop = start + plan.batch
        batch = sketch_batch(state.reference, before[start:stop], [colours_before[start:stop]])
        false_alerts += sum(s.transition == "opened" for s in state.apply(batch))
    levels = state.levels[DRIFTED].copy()
    detected: int | None = None
    for start in range(0, plan.horizon, plan.batch):
        stop = start + plan.batch
        batch = sketch_batch(state.reference, after[start:stop], [colours_after[start:stop]])
        for signal in state.apply(batch):
            if signal.transition != "opened":
                continue
            right = signal.feature == ("colour" if case.categorical else f"x{DRIFTED}")
            if right and detected is None:
                detected = stop if not signal.method.startswith("cusum") else -1
            elif not right:
                false_alerts += 1
    if detected == -1:
        detected = _cusum_delay(state, after, levels)
    oracle = None if case.mean == 0.0 else _oracle_delay(case.mean, before, after)
    ks, psi = _evidently_delays(case, reference, before, after, colours_before, colours_after)
    return {
        "ours": detected,
        "oracle": oracle,
        "evidently_ks": ks,
        "evidently_psi": psi,
        "false_alerts": false_alerts,
        "fe": (onset + plan.horizon) * (FEATURES + 1),
    }


def _cusum_delay(
    state: DataDriftState, after: NDArray[np.float64], levels: NDArray[np.float64]
) -> int:
    """Events from the onset to the first crossing of any channel of the drifted feature,
    on the exact per-event path from the levels the state held at the onset."""
    numeric = state.reference.numeric
    z = numeric.scores(after)[:, DRIFTED : DRIFTED + 1]
    increments = channel_increments(
        z, numeric.reference_values[DRIFTED : DRIFTED + 1], numeric.spread_centres[DRIFTED]
    )[:, 0, :]
    first = first_crossings(levels, increments, numeric.thresholds[DRIFTED])
    return int(first[first >= 0].min()) + 1


def _oracle_delay(
    shift: float, before: NDArray[np.float64], after: NDArray[np.float64]
) -> int | None:
    """One-sided CUSUM on the raw drifted feature with k = shift / 2 (it knows both
    means and the unit variance), h for one false alarm per 1,000,000 events, run from
    the start of the stream like ours."""
    k = shift / 2
    threshold = threshold_for_arl(k, 1.0 / TARGET_FALSE_ALERTS_PER_EVENT)
    walk = np.cumsum(before[:, DRIFTED] - k)
    level = max(0.0, float(walk[-1] - min(0.0, walk.min())))
    first = first_crossings(
        np.array([level]), (after[:, DRIFTED] - k)[:, None], np.array([threshold])
    )
    return None if first[0] < 0 else int(first[0]) + 1


def _evidently_delays(
    case: ShiftCase,
    reference: NDArray[np.float64],
    before: NDArray[np.float64],
    after: NDArray[np.float64],
    colours_before: list[str],
    colours_after: list[str],
) -> tuple[int | None, int | None]:
    """500-event windows from the stream's start; the first window ending after the onset
    that flags the drifted feature gives the delay (to that window's end)."""
    onset = before.shape[0]
    column = np.concatenate([before[:, DRIFTED], after[:, DRIFTED]])
    colours = colours_before + colours_after
    ks_delay = psi_delay = None
    first_end = (onset // EVIDENTLY_WINDOW + 1) * EVIDENTLY_WINDOW
    for end in range(first_end, column.size + 1, EVIDENTLY_WINDOW):
        window = slice(end - EVIDENTLY_WINDOW, end)
        if case.categorical:
            ks_flag, psi_value = _evidently_categorical(colours[window])
        else:
            ks_flag = ks_2samp(reference[:, DRIFTED], column[window]).pvalue < 0.05
            psi_value = evidently_psi(reference[:, DRIFTED], column[window])
        if ks_flag and ks_delay is None:
            ks_delay = end - onset
        if psi_value > 0.1 and psi_delay is None:
            psi_delay = end - onset
        if ks_delay is not None and psi_delay is not None:
            break
    return ks_delay, psi_delay


def evidently_psi(reference: NDArray[np.float64], current: NDArray[np.float64]) -> float:
    """PSI as Evidently bins it: 10 equal-width bins over the range of both samples,
    empty bins raised to 0.0001."""
    edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins=EVIDENTLY_BINS)
    expected = np.histogram(reference, edges)[0] / reference.size
    actual = np.histogram(current, edges)[0] / current.size
    expected = np.where(expected == 0, 0.0001, expected)
    actual = np.where(actual == 0, 0.0001, actual)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _evidently_categorical(colours: list[str]) -> tuple[bool, float]:
    """Chi-square (p < 0.05) and PSI on category shares, against the reference's shares."""
    counts = np.array([colours.count(c) for c in CATEGORIES], dtype=np.float64)
    actual = np.where(counts == 0, 0.0001, counts / counts.sum())
    psi = float(np.sum((actual - SHARES) * np.log(actual / SHARES)))
    return bool(chisquare(counts, SHARES * counts.sum()).pvalue < 0.05), psi


# -- stationary streams -------------------------------------------------------------------


def _stationary(plan: DriftDataPlan) -> dict[str, Any]:
    """20 numeric features, no drift: false alerts (episode openings) per 1,000,000
    feature-events through sketch -> apply, and the CPU that path costs."""
    alerts = 0
    feature_events = 0
    sketch_cpu = apply_cpu = 0.0
    evidently_windows = evidently_ks = evidently_psi_flags = 0
    for seed in range(plan.stationary_seeds):
        rng = np.random.default_rng(50_000 + seed)
        reference = rng.normal(size=(plan.reference_rows, FEATURES))
        features: dict[str, Any] = {
            f"x{i}": numeric_profile(reference[:, i].tolist()) for i in range(FEATURES)
        }
        profile = ReferenceProfile(
            rows=plan.reference_rows, features=features, target=categorical_profile(["y"])
        )
        state = DataDriftState(profile)
        stream = rng.normal(size=(plan.stationary_events, FEATURES))
        for start in range(0, plan.stationary_events, plan.stationary_batch):
            values = stream[start : start + plan.stationary_batch]
            clock = time.process_time()
            sketch = sketch_batch(state.reference, values)
            middle = time.process_time()
            signals = state.apply(sketch)
            apply_cpu += time.process_time() - middle
            sketch_cpu += middle - clock
            alerts += sum(s.transition == "opened" for s in signals)
        feature_events += stream.size
        if seed < plan.evidently_stationary_seeds:
            for start in range(0, plan.stationary_events, EVIDENTLY_WINDOW):
                window = stream[start : start + EVIDENTLY_WINDOW]
                for feature in range(FEATURES):
                    evidently_windows += 1
                    ref, cur = reference[:, feature], window[:, feature]
                    evidently_ks += int(ks_2samp(ref, cur).pvalue < 0.05)
                    evidently_psi_flags += int(evidently_psi(ref, cur) > 0.1)
    return {
        "features": FEATURES,
        "feature_events": feature_events,
        "false_alerts": alerts,
        "false_alerts_per_million": alerts / feature_events * 1e6,
        "sketch_cpu_us_per_feature_event": sketch_cpu / feature_events * 1e6,
        "apply_cpu_us_per_feature_event": apply_cpu / feature_events * 1e6,
        "batch": plan.stationary_batch,
        "evidently": {
            "windows": evidently_windows,
            "feature_events": evidently_windows * EVIDENTLY_WINDOW,
            "ks_false_alarms_per_million": evidently_ks
            / evidently_windows
            / EVIDENTLY_WINDOW
            * 1e6,
            "psi_false_alarms_per_million": evidently_psi_flags
            / evidently_windows
            / EVIDENTLY_WINDOW
            * 1e6,
        },
    }


AGRAWAL_NUMERIC: Final = ("salary", "commission", "age", "hvalue", "hyears", "loan")
AGRAWAL_CATEGORICAL: Final = ("elevel", "car", "zipcode")


def _river_stationary(plan: DriftDataPlan) -> dict[str, Any]:
    """river's Agrawal generator as a stream with real-looking features: uniform,
    zero-inflated (commission), integer (age, hyears) and categorical ones; reference
    and stream from the same generator, so every alert is false."""
    rows = [x for x, _ in synth.Agrawal(seed=7).take(plan.reference_rows + plan.river_events)]
    reference, stream = rows[: plan.reference_rows], rows[plan.reference_rows :]
    features: dict[str, Any] = {
        name: numeric_profile([row[name] for row in reference]) for name in AGRAWAL_NUMERIC
    }
    for name in AGRAWAL_CATEGORICAL:
        features[name] = categorical_profile([str(row[name]) for row in reference])
    profile = ReferenceProfile(
        rows=plan.reference_rows, features=features, target=categorical_profile(["y"])
    )
    state = DataDriftState(profile)
    alerts: list[str] = []
    for start in range(0, len(stream), plan.stationary_batch):
        chunk = stream[start : start + plan.stationary_batch]
        values = np.array([[row[name] for name in AGRAWAL_NUMERIC] for row in chunk], dtype=float)
        columns = [[str(row[name]) for row in chunk] for name in AGRAWAL_CATEGORICAL]
        signals = state.apply(sketch_batch(state.reference, values, columns))
        alerts += [s.feature for s in signals if s.transition == "opened"]
    feature_events = len(stream) * (len(AGRAWAL_NUMERIC) + len(AGRAWAL_CATEGORICAL))
    return {
        "events": len(stream),
        "feature_events": feature_events,
        "false_alerts": len(alerts),
        "false_alert_features": alerts,
        "false_alerts_per_million": len(alerts) / feature_events * 1e6,
    }


# -- figures ------------------------------------------------------------------------------


def _design(reference_rows: int) -> dict[str, Any]:
    """The detectors' constants for a reference of the bench's size (k grows by two
    standard errors of the reference: see services/drift/domain/reference.py)."""
    values = np.random.default_rng(0).standard_normal(reference_rows).tolist()
    state_settings = DataDriftState(
        ReferenceProfile(
            rows=reference_rows,
            features={"x": numeric_profile(values)},
            target=categorical_profile(["y"]),
        )
    ).reference
    numeric = state_settings.numeric
    channels = ("mean_up", "mean_down", "spread_up")
    return {
        "settings": state_settings.settings.model_dump(),
        "reference_rows": reference_rows,
        "thresholds": dict(zip(channels, numeric.thresholds[0].tolist(), strict=True)),
        "reference_values": dict(zip(channels, numeric.reference_values[0].tolist(), strict=True)),
        "oracle_threshold_at_1e-6": threshold_for_arl(0.25, 1e6),
    }


def _delays(values: list[int | None], horizon: int) -> dict[str, Any]:
    found = [value for value in values if value is not None]
    rate = len(found) / len(values) if values else 0.0
    if not found:
        return {"detection_rate": rate, "median": None, "p90": None}
    # p90 over all seeds, a miss counting as beyond the horizon
    padded = np.array([value if value is not None else horizon + 1 for value in values])
    p90 = float(np.percentile(padded, 90))
    return {
        "detection_rate": rate,
        "median": float(np.median(found)),
        "p90": p90 if p90 <= horizon else None,
        "mean": float(np.mean(found)),
    }


def _summarise_case(raw: dict[str, list[Any]], horizon: int) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "seeds": len(raw["ours"]),
        "horizon": horizon,
        "ours": _delays(raw["ours"], horizon),
        "evidently_ks": _delays(raw["evidently_ks"], horizon),
        "evidently_psi": _delays(raw["evidently_psi"], horizon),
        "false_alerts": int(sum(raw["false_alerts"])),
        "feature_events": int(sum(raw["fe"])),
    }
    if any(value is not None for value in raw["oracle"]):
        figures["oracle"] = _delays(raw["oracle"], horizon)
        ours, oracle = figures["ours"]["median"], figures["oracle"]["median"]
        if ours is not None and oracle:
            figures["median_delay_vs_oracle"] = round(ours / oracle, 3)
    return figures


# -- verdicts and tables ------------------------------------------------------------------

SHIFT_DETECTION_TARGET: Final = 0.95
ORACLE_RATIO_TARGET: Final = 1.2
FALSE_ALERTS_TARGET_PER_MILLION: Final = 1.0
STATIONARY_FEATURE_EVENTS_NEEDED: Final = 10_000_000
HEADLINE_CASE: Final = "mean +0.5 sd"


def drift_data_headline(result: dict[str, Any]) -> str:
    case = result["shift"][HEADLINE_CASE]
    stationary = result["stationary"]
    return (
        f"0.5 sd shift: detected {case['ours']['detection_rate']:.0%}, median delay "
        f"{_events_text(case['ours']['median'])} vs oracle "
        f"{_events_text(case['oracle']['median'])}; stationary "
        f"{stationary['false_alerts_per_million']:.2f} false alerts per million feature-events"
    )


def drift_data_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets for data drift, measured."""
    case = result["shift"][HEADLINE_CASE]
    ours, oracle = case["ours"], case["oracle"]
    stationary = result["stationary"]
    ratio = case.get("median_delay_vs_oracle")
    enough = stationary["feature_events"] >= STATIONARY_FEATURE_EVENTS_NEEDED
    rate = stationary["false_alerts_per_million"]
    return [
        {
            "target": f"data drift: 0.5 sd shift in 1 of {FEATURES} features detected in "
            f"≥ {SHIFT_DETECTION_TARGET:.0%} of seeds",
            "measured": f"{ours['detection_rate']:.1%} of {case['seeds']} seeds",
            "met": ours["detection_rate"] >= SHIFT_DETECTION_TARGET,
        },
        {
            "target": f"data drift: median delay ≤ {ORACLE_RATIO_TARGET}x an oracle CUSUM "
            "(knows both means, 1 false alarm per 1,000,000 events)",
            "measured": f"{_ratio_text(ratio)} ({_events_text(ours['median'])} vs "
            f"{_events_text(oracle['median'])} events; p90 {_events_text(ours['p90'])} vs "
            f"{_events_text(oracle['p90'])})",
            "met": ratio is not None and ratio <= ORACLE_RATIO_TARGET,
        },
        {
            "target": f"data drift, stationary ({FEATURES} features, ≥ "
            f"{STATIONARY_FEATURE_EVENTS_NEEDED:,} feature-events): ≤ "
            f"{FALSE_ALERTS_TARGET_PER_MILLION:g} false alert per 1,000,000 feature-events",
            "measured": f"{rate:.2f} ({stationary['false_alerts']} alerts in "
            f"{stationary['feature_events']:,} feature-events)",
            "met": rate <= FALSE_ALERTS_TARGET_PER_MILLION if enough else None,
        },
    ]


def drift_data_table(result: dict[str, Any]) -> list[str]:
    """The README table: per case, detection rate and median / p90 delay in events for
    ours, the oracle CUSUM and the Evidently-style windows; then false alerts and cost."""
    header = (
        "| case | seeds | ours: detected, median, p90 | oracle CUSUM | Evidently KS "
        "(p<0.05, 500) | Evidently PSI (>0.1, 500) | ours vs oracle | our false alerts |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, case in result["shift"].items():
        oracle = case.get("oracle")
        lines.append(
            f"| {name} | {case['seeds']} | {_delay_cell(case['ours'])} | "
            f"{_delay_cell(oracle) if oracle else '-'} | {_delay_cell(case['evidently_ks'])} | "
            f"{_delay_cell(case['evidently_psi'])} | "
            f"{_ratio_text(case.get('median_delay_vs_oracle'))} | "
            f"{case['false_alerts']} in {case['feature_events']:,} |"
        )
    stationary = result["stationary"]
    evidently = stationary["evidently"]
    river = result["river_agrawal_stationary"]
    lines += [
        "",
        "| stationary stream | feature-events | false alerts | per 1,000,000 |",
        "|---|---:|---:|---:|",
        f"| ours, {FEATURES} Gaussian features | {stationary['feature_events']:,} | "
        f"{stationary['false_alerts']} | {stationary['false_alerts_per_million']:.2f} |",
        f"| ours, river Agrawal (6 numeric incl. integer and zero-inflated, 3 categorical) | "
        f"{river['feature_events']:,} | {river['false_alerts']} | "
        f"{river['false_alerts_per_million']:.2f} |",
        f"| Evidently-style KS p<0.05, 500-event windows | {evidently['feature_events']:,} | - | "
        f"{evidently['ks_false_alarms_per_million']:.0f} |",
        f"| Evidently-style PSI>0.1, 10 bins, 500-event windows | "
        f"{evidently['feature_events']:,} | - | {evidently['psi_false_alarms_per_million']:.1f} |",
        "",
        f"CPU per feature-event (batches of {stationary['batch']}): sketch "
        f"{stationary['sketch_cpu_us_per_feature_event']:.2f} µs, judge (apply) "
        f"{stationary['apply_cpu_us_per_feature_event']:.2f} µs.",
    ]
    return lines


def drift_data_note(result: dict[str, Any]) -> str:
    design = result["design"]
    settings = design["settings"]
    thresholds = design["thresholds"]
    k = design.get("reference_values", {}).get("mean_up", settings["mean_shift"] / 2)
    return (
        "drift-data (bench/drift_data.py, no services): per seed a 10,000-row reference "
        f"profiled by shared.profile, {FEATURES} N(0, 1) features and one categorical, "
        "streamed in batches through sketch -> apply; the shift starts at a random batch "
        "boundary 1,000-3,000 events in. Design: budget "
        f"{settings['false_alerts_per_event'] * 1e6:g} false alerts per million feature-events "
        "(half the promise), split mean up/down/spread/windowed "
        f"{settings['mean_up_share']}/{settings['mean_down_share']}/{settings['spread_share']}/"
        f"{settings['windowed_share']}; thresholds h = {thresholds['mean_up']:.1f} (mean, "
        f"k = {k:.3f}: half the 0.5 sd design shift plus two standard errors of the "
        f"reference) and {thresholds['spread_up']:.1f} (spread); the "
        f"oracle's h = {design['oracle_threshold_at_1e-6']:.1f}. Delays are events from the "
        "onset to the detecting event inclusive; a windowed test detects at the end of its "
        "batch. The 0.25 and 1.0 sd oracles know their own shift, ours is tuned for 0.5. "
        "'Our false alerts' in a shift case are episodes opened on any feature before the "
        "onset, or on another feature after it. Where the 0.5 sd gap to the oracle comes "
        "from: by Siegmund's approximation our mean channel needs "
        f"{siegmund_arl(0.5, k, thresholds['mean_up']):.0f} events from 0 and the oracle "
        f"{siegmund_arl(0.5, 0.25, design['oracle_threshold_at_1e-6']):.0f}: the price of "
        "watching both sides and the spread, at half the promised false-alarm rate; the "
        "normal scores cost nothing measurable beyond it."
    )


def _delay_cell(figures: dict[str, Any]) -> str:
    return (
        f"{figures['detection_rate']:.0%}, {_events_text(figures['median'])}, "
        f"{_events_text(figures['p90'])}"
    )


def _events_text(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ratio_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"
