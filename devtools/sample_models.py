"""Small real models and their training data, from datasets that ship with scikit-learn."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import skops.io
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression


@dataclass(frozen=True)
class SampleModel:
    """A trained model as the registry receives it: skops bytes plus the CSV it was fit on."""

    artifact: bytes
    dataset: bytes
    feature_names: list[str]
    score: float


def _csv(names: list[str], features: np.ndarray, target: list[object]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*names, "target"])
    for row, label in zip(features.tolist(), target, strict=True):
        writer.writerow([*row, label])
    return buffer.getvalue().encode()


def iris_classifier(*, c: float = 1.0) -> SampleModel:
    """Logistic regression on iris; labels are species names."""
    data = load_iris()
    names = [name.replace(" (cm)", "").replace(" ", "_") for name in data.feature_names]
    labels = [str(data.target_names[index]) for index in data.target]
    model = LogisticRegression(C=c, max_iter=500).fit(data.data, labels)
    return SampleModel(
        artifact=skops.io.dumps(model),
        dataset=_csv(names, data.data, list(labels)),
        feature_names=names,
        score=float(model.score(data.data, labels)),
    )


def diabetes_regressor() -> SampleModel:
    """Linear regression on the diabetes data set."""
    data = load_diabetes()
    model = LinearRegression().fit(data.data, data.target)
    return SampleModel(
        artifact=skops.io.dumps(model),
        dataset=_csv(list(data.feature_names), data.data, data.target.tolist()),
        feature_names=list(data.feature_names),
        score=float(model.score(data.data, data.target)),
    )


def gaussian_classifier(*, features: int = 6, rows: int = 4000, seed: int = 0) -> SampleModel:
    """Logistic regression on independent standard normal features x0..x{n-1}; the class
    ("high" or "low") follows x0 + x1 with noise, so about 85% of answers are right."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((rows, features))
    score = data[:, 0] + data[:, 1] + rng.normal(0.0, 0.6, rows)
    labels = np.where(score > 0, "high", "low")
    model = LogisticRegression(max_iter=500).fit(data, labels)
    names = [f"x{index}" for index in range(features)]
    return SampleModel(
        artifact=skops.io.dumps(model),
        dataset=_csv(names, data, labels.tolist()),
        feature_names=names,
        score=float(model.score(data, labels)),
    )
