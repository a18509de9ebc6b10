"""Uploads inspected in a child: same answers as in process, limits, and a trial prediction."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from devtools.sample_models import iris_classifier
from shared.artifact_inspection import (
    TRIAL_BATCH_ROWS,
    InspectionFailed,
    TrialInput,
    inspect_artifact_isolated,
    trial_rows,
)
from shared.model_files import (
    MalformedArtifact,
    UnsafeArtifact,
    UnsafeContent,
    dump_model,
    inspect_artifact,
)
from shared.sandbox import SandboxLimits
from shared.signature import infer_signature
from shared.tabular import parse_csv
from tests.support.hostile_models import (
    CRASHING_CLASSIFIER,
    crashing_classifier,
    npz_unpickling_attack,
    tree_with_child_outside,
    zip_bomb,
)

IRIS = iris_classifier()


def _trial(dataset: bytes) -> TrialInput:
    data = parse_csv(dataset)
    signature = infer_signature(data, target="target", task="classification")
    return TrialInput(signature=signature, rows=trial_rows(data.rows(), data.row_count))


def test_isolated_inspection_answers_like_the_in_process_one(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"

    assert inspect_artifact_isolated(IRIS.artifact) == inspect_artifact(IRIS.artifact)
    assert inspect_artifact_isolated(IRIS.artifact, _trial(IRIS.dataset)).classes == [
        "setosa",
        "versicolor",
        "virginica",
    ]
    with pytest.raises(UnsafeArtifact) as refused:
        inspect_artifact_isolated(npz_unpickling_attack(tmp_path, marker))
    assert "numpy.lib._npyio_impl.NpzFile" in refused.value.types
    with pytest.raises(UnsafeContent, match="child outside the tree"):
        inspect_artifact_isolated(tree_with_child_outside())
    with pytest.raises(MalformedArtifact, match="not a skops model file"):
        inspect_artifact_isolated(b"not a zip")
    assert not marker.exists()


def test_isolated_inspection_is_refused_when_it_exceeds_its_memory() -> None:
    data = zip_bomb(IRIS.artifact, 300 * 1024 * 1024)

    with pytest.raises(InspectionFailed, match=r"needed more than \d+ bytes of memory"):
        inspect_artifact_isolated(data, limits=SandboxLimits(memory_bytes=128 * 1024 * 1024))


def test_a_model_that_crashes_on_its_own_data_is_refused_and_the_caller_survives() -> None:
    """Whatever the checks miss and crashes on predict is caught by the trial."""
    hostile = crashing_classifier()
    trusting = [CRASHING_CLASSIFIER]
    assert inspect_artifact(hostile, extra_trusted=trusting).classes == [
        "setosa",
        "versicolor",
        "virginica",
    ]

    with pytest.raises(InspectionFailed, match="crashed with signal SIGSEGV"):
        inspect_artifact_isolated(hostile, _trial(IRIS.dataset), extra_trusted=trusting)

    assert inspect_artifact_isolated(IRIS.artifact, _trial(IRIS.dataset)).n_features_in == 4


def test_the_trial_predicts_batches_as_large_as_a_workers() -> None:
    """150 training rows are tried as one batch of 2,048, the size a worker may hand over."""
    hostile = crashing_classifier(crash_from_rows=TRIAL_BATCH_ROWS)

    with pytest.raises(InspectionFailed, match="crashed with signal SIGSEGV"):
        inspect_artifact_isolated(
            hostile, _trial(IRIS.dataset), extra_trusted=[CRASHING_CLASSIFIER]
        )


def test_a_model_that_cannot_predict_its_training_rows_is_malformed() -> None:
    iris = load_iris()
    labels = [str(iris.target_names[index]) for index in iris.target]
    logged = make_pipeline(FunctionTransformer(np.log), LogisticRegression(max_iter=500))
    logged.fit(iris.data, labels)
    features = iris.data.copy()
    features[7, 0] = 0.0  # log(0) is -inf, which the regression refuses
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["a", "b", "c", "d", "target"])
    writer.writerows([*row, label] for row, label in zip(features.tolist(), labels, strict=True))

    with pytest.raises(MalformedArtifact, match="cannot predict rows of its own training data"):
        inspect_artifact_isolated(dump_model(logged), _trial(buffer.getvalue().encode()))


def test_a_model_that_does_not_fit_the_data_is_described_not_tried() -> None:
    """The registry reports the mismatch itself; a trial would only hide it."""
    info = inspect_artifact_isolated(IRIS.artifact, _trial(_two_column_dataset()))

    assert info.n_features_in == 4


def test_trial_rows_spread_over_the_data() -> None:
    rows = [{"i": index} for index in range(1000)]

    chosen = trial_rows(iter(rows), len(rows), limit=4)

    assert chosen == [{"i": 0}, {"i": 250}, {"i": 500}, {"i": 750}]
    assert trial_rows(iter(rows[:3]), 3, limit=4) == rows[:3]


def _two_column_dataset() -> bytes:
    return b"x,target\n1.0,a\n2.0,b\n3.0,a\n"
