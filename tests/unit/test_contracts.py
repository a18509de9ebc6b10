"""The wire contracts accept what they promise and refuse what they rule out."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.contracts import (
    ClassifierOutput,
    DriftAlert,
    DriftWindow,
    Feedback,
    Prediction,
    PredictionError,
    PredictionRequest,
    RegressorOutput,
)


def _request(**overrides: object) -> PredictionRequest:
    fields: dict[str, object] = {
        "request_id": "req-1",
        "model": "iris",
        "inputs": {"sepal_length": 5.1, "species_hint": "setosa"},
    }
    return PredictionRequest.model_validate(fields | overrides)


def test_request_key_is_routing_key_else_request_id() -> None:
    assert _request().partition_key == "req-1"
    assert _request(routing_key="customer-7").partition_key == "customer-7"


def test_request_serialises_rfc3339_timestamps_with_offset() -> None:
    payload = json.loads(_request().model_dump_json())
    assert payload["created_at"].endswith("Z") or "+" in payload["created_at"]
    assert set(payload) >= {"request_id", "model", "version", "inputs", "callback", "created_at"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"request_id": ""}, "request_id"),
        ({"request_id": "has space"}, "request_id"),
        ({"model": "Not Allowed"}, "model"),
        ({"version": 0}, "version"),
        ({"inputs": {}}, "inputs"),
        ({"callback": {"url": "not a url"}}, "callback"),
        ({"created_at": "2026-01-01T00:00:00"}, "created_at"),
    ],
)
def test_request_rejects_bad_fields_naming_them(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _request(**overrides)
    assert field in {str(error["loc"][0]) for error in caught.value.errors()}


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    request = PredictionRequest.model_validate_json(
        _request().model_dump_json()[:-1] + ', "added_in_v1_1": true}'
    )
    assert request.request_id == "req-1"
    assert not hasattr(request, "added_in_v1_1")


def test_prediction_status_must_match_output_and_error() -> None:
    common = {"request_id": "r", "model": "m", "version": 1, "variant": "production"}
    ok = Prediction(
        **common,
        status="ok",
        output=ClassifierOutput(label="a", probabilities={"a": 0.9, "b": 0.1}),
        latency_ms=3.0,
    )
    assert ok.partition_key == "r"
    failed = Prediction(
        **common,
        status="error",
        error=PredictionError(code="invalid_input", message="x"),
        latency_ms=1.0,
    )
    assert failed.output is None
    with pytest.raises(ValidationError, match="needs an output"):
        Prediction(**common, status="ok", latency_ms=1.0)
    with pytest.raises(ValidationError, match="needs an error"):
        Prediction(**common, status="error", output=RegressorOutput(value=1.0), latency_ms=1.0)


def test_prediction_output_keeps_its_shape_through_json() -> None:
    regression = Prediction(
        request_id="r",
        model="m",
        version=2,
        variant="canary",
        status="ok",
        output=RegressorOutput(value=3.5),
        latency_ms=0.5,
    )
    again = Prediction.model_validate_json(regression.model_dump_json())
    assert isinstance(again.output, RegressorOutput)
    assert json.loads(regression.model_dump_json())["output"] == {"value": 3.5}


@pytest.mark.parametrize(
    "kinds",
    [{}, {"label": "spam", "rating": "up"}, {"rating": "up", "signal": "copied"}],
)
def test_feedback_needs_exactly_one_kind(kinds: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="exactly one of label, rating, signal"):
        Feedback(request_id="r", source="app", **kinds)


def test_feedback_kinds() -> None:
    assert Feedback(request_id="r", source="app", rating="down").rating == "down"
    assert Feedback(request_id="r", source="app", signal="retried").signal == "retried"
    with pytest.raises(ValidationError):
        Feedback(request_id="r", source="app", signal="liked")  # type: ignore[arg-type]


def test_drift_alert_fields() -> None:
    alert = DriftAlert(
        model="iris",
        version=3,
        kind="data",
        feature="petal_width",
        method="psi",
        statistic=0.31,
        threshold=0.2,
        severity="critical",
        window=DriftWindow(size=500),
        evidence={"bins": [0.1, 0.9]},
    )
    payload = json.loads(alert.model_dump_json())
    assert payload["alert_id"] and payload["detected_at"]
    with pytest.raises(ValidationError):
        DriftAlert.model_validate(payload | {"severity": "info"})
