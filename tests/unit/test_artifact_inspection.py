"""Uploads inspected in a child: same answers as in process, limits, and a trial prediction."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from devtools.sample_models import iris_classifier
from shared.artifact_inspection import (
    MAX_PREDICTION_SUMMARY_BYTES,
    TRIAL_BATCH_ROWS,
    InspectionFailed,
    TrialInput,
    _read_answer,
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
from shared.profile import CONFIDENCE_BIN_EDGES, class_prediction_profile
from shared.sandbox import SandboxLimits
from shared.signature import MAX_CATEGORIES, infer_signature
from shared.tabular import parse_csv
from tests.support.hostile_models import (
    CRASHING_CLASSIFIER,
    MISREPORTING_CLASSIFIER,
    crashing_classifier,
    misreporting_classifier,
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

    assert inspect_artifact_isolated(IRIS.artifact).info == inspect_artifact(IRIS.artifact)
    assert inspect_artifact_isolated(IRIS.artifact).predictions is None
    assert inspect_artifact_isolated(IRIS.artifact, _trial(IRIS.dataset)).info.classes == [
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

    assert inspect_artifact_isolated(IRIS.artifact, _trial(IRIS.dataset)).info.n_features_in == 4


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
    inspection = inspect_artifact_isolated(IRIS.artifact, _trial(_two_column_dataset()))

    assert inspection.info.n_features_in == 4
    assert inspection.predictions is None


def test_the_trial_answers_with_what_the_model_predicted_on_its_training_rows() -> None:
    iris = load_iris()
    model = LogisticRegression(max_iter=500).fit(iris.data, iris.target_names[iris.target])

    predictions = inspect_artifact_isolated(IRIS.artifact, _trial(IRIS.dataset)).predictions

    assert predictions is not None and predictions.kind == "classes"
    assert predictions.rows == 150
    labels, counts = np.unique(model.predict(iris.data), return_counts=True)
    assert predictions.frequencies == pytest.approx(
        dict(zip(labels.tolist(), (counts / 150).tolist(), strict=True))
    )
    assert predictions.confidence is not None
    highest = model.predict_proba(iris.data).max(axis=1)
    assert predictions.confidence.mean == pytest.approx(highest.mean())
    assert predictions.confidence.bin_edges == CONFIDENCE_BIN_EDGES


@pytest.mark.parametrize(
    ("lie", "message"),
    [
        ("label", "predicts labels that are not among its classes: \\['daisy'\\]"),
        ("count", "gave 1024 predictions for 2048 rows"),
    ],
)
def test_a_model_whose_predictions_cannot_be_a_classifiers_is_malformed(
    lie: str, message: str
) -> None:
    with pytest.raises(MalformedArtifact, match=message):
        inspect_artifact_isolated(
            misreporting_classifier(lie),
            _trial(IRIS.dataset),
            extra_trusted=[MISREPORTING_CLASSIFIER],
        )


def test_probabilities_outside_0_and_1_leave_the_confidence_out() -> None:
    inspection = inspect_artifact_isolated(
        misreporting_classifier("probability"),
        _trial(IRIS.dataset),
        extra_trusted=[MISREPORTING_CLASSIFIER],
    )

    assert inspection.predictions is not None and inspection.predictions.kind == "classes"
    assert inspection.predictions.frequencies == {"setosa": 1.0}
    assert inspection.predictions.confidence is None


def _answer(**predictions: object) -> bytes:
    """A child's answer about IRIS with a prediction summary edited by `predictions`."""
    valid = class_prediction_profile(
        ["setosa", "versicolor", "virginica"], [[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0, 0, 1]]
    ).model_dump(mode="json")
    summary = valid | predictions
    return json.dumps(
        {"info": inspect_artifact(IRIS.artifact).model_dump(), "predictions": summary}
    ).encode()


def test_a_well_formed_prediction_summary_is_believed() -> None:
    inspection = _read_answer(_answer(), tried_rows=3)

    assert inspection.predictions is not None and inspection.predictions.rows == 3


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        ({"frequencies": {"setosa": 0.5, "versicolor": 0.2}}, "shares do not sum to 1"),
        ({"frequencies": {"setosa": 1.5, "versicolor": -0.5}}, "a share outside [0, 1]"),
        ({"frequencies": {"setosa": float("nan"), "versicolor": 1.0}}, "not a number"),
        ({"frequencies": {"daisy": 1.0}}, "a label that is not a class"),
        ({"frequencies": {f"c{i}": 1 / 1001 for i in range(MAX_CATEGORIES + 1)}}, "too many"),
        ({"frequencies": {"x" * MAX_PREDICTION_SUMMARY_BYTES: 1.0}}, "too large"),
        ({"rows": 2048}, "more rows than were tried"),
        ({"kind": "scores"}, "a regressor's summary for a classifier"),
        ({"confidence": {"bin_edges": [0.5], "bin_fractions": [0, 1], "mean": 0.9}}, "own bins"),
        (
            {
                "confidence": {
                    "bin_edges": CONFIDENCE_BIN_EDGES,
                    "bin_fractions": [1] + [0] * 19,
                    "mean": 0.9,
                }
            },
            "a mean its histogram cannot have",
        ),
        ({"extra": "field"}, "an unknown field"),
        ({"frequencies": "setosa"}, "the wrong type"),
    ],
)
def test_a_malformed_prediction_summary_is_not_believed(edit: dict[str, object], why: str) -> None:
    with pytest.raises(InspectionFailed, match="unreadable answer"):
        _read_answer(_answer(**edit), tried_rows=3)


def test_an_answer_nested_too_deep_to_parse_is_not_believed() -> None:
    nested = b"[" * 100_000 + b"]" * 100_000

    with pytest.raises(InspectionFailed, match="unreadable answer"):
        _read_answer(b'{"info": ' + nested + b"}", tried_rows=0)


def test_a_prediction_summary_without_a_trial_is_not_believed() -> None:
    with pytest.raises(InspectionFailed, match="unreadable answer"):
        _read_answer(_answer(), tried_rows=0)


def test_trial_rows_spread_over_the_data() -> None:
    rows = [{"i": index} for index in range(1000)]

    chosen = trial_rows(iter(rows), len(rows), limit=4)

    assert chosen == [{"i": 0}, {"i": 250}, {"i": 500}, {"i": 750}]
    assert trial_rows(iter(rows[:3]), 3, limit=4) == rows[:3]


def _two_column_dataset() -> bytes:
    return b"x,target\n1.0,a\n2.0,b\n3.0,a\n"
