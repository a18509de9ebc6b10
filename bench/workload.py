"""The benchmark's model and its requests: one logistic regression, distinct inputs."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from devtools.sample_models import SampleModel
from shared.contracts import PredictionRequest
from shared.kafka.codec import OutgoingRecord, encode
from shared.model_files import dump_model
from shared.topics import REQUESTS

MODEL_NAME = "bench-lr"
N_SAMPLES = 5000
N_FEATURES = 20
N_INFORMATIVE = 10
RANDOM_STATE = 0
INPUT_DECIMALS = 5
NOISE_FRACTION_OF_STD = 0.01
"""Each request is a random training row plus Gaussian noise of this fraction of each
feature's standard deviation: in distribution, yet no two inputs are equal, so the
worker's result cache cannot answer from memory."""
SOURCE = "/modelbus/bench"


@dataclass(frozen=True)
class BenchModel:
    """The fitted estimator, its training data and the files the registry receives."""

    estimator: LogisticRegression
    features: np.ndarray
    feature_names: list[str]
    sample: SampleModel

    @property
    def parameters(self) -> dict[str, Any]:
        return {
            "name": MODEL_NAME,
            "estimator": "sklearn.linear_model.LogisticRegression(max_iter=1000)",
            "data": (
                f"make_classification(n_samples={N_SAMPLES}, n_features={N_FEATURES}, "
                f"n_informative={N_INFORMATIVE}, random_state={RANDOM_STATE})"
            ),
            "training_accuracy": round(self.sample.score, 4),
            "inputs": (
                f"random training rows + N(0, ({NOISE_FRACTION_OF_STD} x feature std)^2) noise, "
                f"rounded to {INPUT_DECIMALS} decimals; all distinct"
            ),
        }


def train_model() -> BenchModel:
    """Logistic regression on 20 synthetic features, as skops bytes plus its CSV."""
    features, target = make_classification(
        n_samples=N_SAMPLES,
        n_features=N_FEATURES,
        n_informative=N_INFORMATIVE,
        random_state=RANDOM_STATE,
    )
    names = [f"f{index}" for index in range(N_FEATURES)]
    estimator = LogisticRegression(max_iter=1000).fit(features, target)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*names, "target"])
    for row, label in zip(features.tolist(), target.tolist(), strict=True):
        writer.writerow([*row, label])
    sample = SampleModel(
        artifact=dump_model(estimator),
        dataset=buffer.getvalue().encode(),
        feature_names=names,
        score=float(estimator.score(features, target)),
    )
    return BenchModel(estimator=estimator, features=features, feature_names=names, sample=sample)


def distinct_inputs(features: np.ndarray, count: int, *, seed: int) -> np.ndarray:
    """`count` distinct input rows drawn around the training data."""
    rng = np.random.default_rng(seed)
    rows = features[rng.integers(0, len(features), size=count)]
    noise = rng.normal(0.0, 1.0, size=rows.shape) * features.std(axis=0) * NOISE_FRACTION_OF_STD
    inputs: np.ndarray = np.round(rows + noise, INPUT_DECIMALS)
    if len(np.unique(inputs, axis=0)) != count:
        raise RuntimeError("generated inputs are not distinct; change the seed")
    return inputs


def request_for(
    model: BenchModel, row: np.ndarray, request_id: str, *, callback: str | None = None
) -> PredictionRequest:
    """A PredictionRequest for one input row; created_at is now."""
    return PredictionRequest(
        request_id=request_id,
        model=MODEL_NAME,
        inputs=dict(zip(model.feature_names, row.tolist(), strict=True)),
        callback={"url": callback} if callback is not None else None,
    )


def encode_request(request: PredictionRequest) -> OutgoingRecord:
    """The record a producer publishes (the topic is chosen at send time)."""
    return encode(REQUESTS, request, key=request.partition_key, source=SOURCE, topic="requests")


def request_records(model: BenchModel, count: int, *, seed: int, run: str) -> list[OutgoingRecord]:
    """`count` encoded requests with ids `<run>-<n>` and distinct inputs."""
    rows = distinct_inputs(model.features, count, seed=seed)
    return [
        encode_request(request_for(model, row, f"{run}-{index}")) for index, row in enumerate(rows)
    ]


def v2_inference_bodies(model: BenchModel, count: int, *, seed: int) -> list[bytes]:
    """Open Inference Protocol (V2) bodies of one row each, asking for label and probabilities,
    as the modelbus worker answers them."""
    rows = distinct_inputs(model.features, count, seed=seed)
    return [
        orjson.dumps(
            {
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [1, N_FEATURES],
                        "datatype": "FP64",
                        "data": row.tolist(),
                    }
                ],
                "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
            }
        )
        for row in rows
    ]
