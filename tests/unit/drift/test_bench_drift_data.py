"""The drift-data bench scenario: its figures are plain JSON and its verdicts and table
are read from them."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from bench.drift_data import (
    DriftDataPlan,
    drift_data_headline,
    drift_data_table,
    drift_data_targets,
    evidently_psi,
    run_drift_data,
)


@pytest.fixture(scope="module")
def result() -> dict:
    plan = DriftDataPlan(
        shift_seeds=2,
        stationary_seeds=1,
        stationary_events=2_000,
        reference_rows=2_000,
        horizon=1_500,
        evidently_stationary_seeds=1,
        river_events=1_000,
    )
    return orjson.loads(orjson.dumps(run_drift_data(plan)))


def test_every_case_is_measured_for_ours_the_oracle_and_evidently(result: dict) -> None:
    half_sd = result["shift"]["mean +0.5 sd"]

    assert half_sd["seeds"] == 2
    assert half_sd["ours"]["detection_rate"] == 1.0
    assert half_sd["oracle"]["detection_rate"] == 1.0
    assert 0 < half_sd["ours"]["median"] < 400
    assert "oracle" not in result["shift"]["categorical frequencies"]
    assert result["stationary"]["feature_events"] == 2_000 * 20


def test_the_verdicts_and_the_table_come_from_the_json(result: dict) -> None:
    targets = drift_data_targets(result)
    table = drift_data_table(result)

    assert [t["met"] for t in targets][:1] == [True]
    assert targets[2]["met"] is None  # far fewer than 10 million feature-events
    assert any(line.startswith("| mean +0.5 sd | 2 | 100%") for line in table)
    assert "0.5 sd shift: detected 100%" in drift_data_headline(result)


def test_evidently_psi_bins_both_samples_over_their_joint_range() -> None:
    same = np.array([0.0, 1.0, 2.0, 3.0])

    assert evidently_psi(same, same) == pytest.approx(0.0)
    assert evidently_psi(same / 10, same / 10 + 5.0) > 1.0
