"""A version ties artifact, data and code together, and bad uploads change nothing."""

from __future__ import annotations

import hashlib
import json

import pytest

from devtools.sample_models import diabetes_regressor, iris_classifier
from tests.integration.registry.conftest import Registry

pytestmark = [pytest.mark.kafka]
IRIS = iris_classifier()


def test_version_records_artifact_data_code_signature_and_profile(registry: Registry) -> None:
    registry.create_model("iris")
    response = registry.register(
        "iris",
        IRIS.artifact,
        IRIS.dataset,
        params={"C": 1.0},
        metrics={"accuracy": IRIS.score},
        description="baseline",
    )
    assert response.status_code == 201, response.text
    version = response.json()
    assert version["version"] == 1
    assert version["artifact"]["sha256"] == hashlib.sha256(IRIS.artifact).hexdigest()
    assert version["dataset"]["sha256"] == hashlib.sha256(IRIS.dataset).hexdigest()
    assert version["dataset"]["row_count"] == 150
    assert version["code_version"] == "3f2c1ab"
    assert version["params"] == {"C": 1.0}
    assert version["metrics"]["accuracy"] == pytest.approx(IRIS.score)
    assert version["estimator_type"] == "classifier"
    features = {feature["name"]: feature for feature in version["signature"]["features"]}
    assert list(features) == IRIS.feature_names
    assert features["sepal_length"]["minimum"] == pytest.approx(4.3)
    assert features["sepal_length"]["maximum"] == pytest.approx(7.9)
    assert sorted(version["signature"]["classes"]) == ["setosa", "versicolor", "virginica"]

    artifact = registry.call("reader", "GET", version["artifact"]["url"])
    assert artifact.content == IRIS.artifact
    assert artifact.headers["etag"] == f'"{version["artifact"]["sha256"]}"'
    dataset = registry.call("reader", "GET", version["dataset"]["content_url"])
    assert dataset.content == IRIS.dataset
    profile = registry.call("reader", "GET", version["profile_url"]).json()
    assert profile["rows"] == 150
    assert set(profile["features"]) == set(IRIS.feature_names)


def test_same_dataset_is_stored_once_and_versions_count_up(registry: Registry) -> None:
    registry.create_model("iris")
    first = registry.register("iris", IRIS.artifact, IRIS.dataset).json()
    second_model = iris_classifier(c=0.1)
    second = registry.register("iris", second_model.artifact, IRIS.dataset, parent_version=1).json()
    assert second["version"] == 2 and second["parent_version"] == 1
    assert second["dataset"]["sha256"] == first["dataset"]["sha256"]
    listed = registry.call("reader", "GET", "/v1/models/iris/versions").json()
    assert [item["version"] for item in listed] == [2, 1]


def test_regressor_needs_a_regression_model(registry: Registry) -> None:
    regressor = diabetes_regressor()
    registry.create_model("diabetes", task="regression")
    assert registry.register("diabetes", regressor.artifact, regressor.dataset).status_code == 201
    registry.create_model("mislabelled", task="classification")
    response = registry.register("mislabelled", regressor.artifact, regressor.dataset)
    assert response.status_code == 422
    assert "regressor" in response.json()["error"]["message"]


def _error(response) -> str:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"}, body
    return str(body["error"]["message"])


def test_bad_uploads_get_specific_errors_and_change_nothing(registry: Registry) -> None:
    registry.create_model("iris")
    regressor = diabetes_regressor()
    truncated = IRIS.artifact[: len(IRIS.artifact) // 2]
    ragged = IRIS.dataset + b"1.0,2.0\n"
    cases = [
        (registry.register("nope", IRIS.artifact, IRIS.dataset), 404, "no model named 'nope'"),
        (registry.register("iris", b"not a model at all", IRIS.dataset), 422, "skops"),
        (registry.register("iris", truncated, IRIS.dataset), 422, "skops"),
        (
            registry.register("iris", IRIS.artifact, IRIS.dataset, artifact_sha256="0" * 64),
            422,
            "artifact hash mismatch",
        ),
        (registry.register("iris", IRIS.artifact, ragged), 422, "line"),
        (registry.register("iris", IRIS.artifact, regressor.dataset), 422, "does not fit"),
        (
            registry.register("iris", IRIS.artifact, IRIS.dataset, code_version="main"),
            422,
            "code_version",
        ),
        (registry.register("iris", IRIS.artifact, IRIS.dataset, target="species"), 422, "species"),
        (
            registry.register("iris", IRIS.artifact, IRIS.dataset, role="reader"),
            403,
            "needs the publisher role",
        ),
    ]
    for response, status, fragment in cases:
        assert response.status_code == status, response.text
        assert fragment in _error(response), response.text
    assert registry.call("reader", "GET", "/v1/models/iris/versions").json() == []
    audit = registry.call("reader", "GET", "/v1/audit", params={"model": "iris"}).json()
    assert [row["action"] for row in audit] == ["model.registered"]


def test_oversized_upload_is_refused_with_413(registry: Registry) -> None:
    registry.create_model("iris")
    huge = IRIS.dataset * (1 + registry.settings.max_upload_bytes // len(IRIS.dataset))
    response = registry.register("iris", IRIS.artifact, huge)
    assert response.status_code == 413
    assert "exceeds the limit" in _error(response)
    assert registry.call("reader", "GET", "/v1/models/iris/versions").json() == []


def test_authentication_and_roles(registry: Registry) -> None:
    anonymous = registry.client.get("/v1/models")
    assert anonymous.status_code == 401 and "missing API key" in _error(anonymous)
    wrong = registry.client.get("/v1/models", headers={"X-API-Key": "mbk_wrong"})
    assert wrong.status_code == 401 and "unknown or revoked" in _error(wrong)
    assert registry.call("reader", "GET", "/v1/models").status_code == 200
    denied = registry.call("reader", "POST", "/v1/models", json={"name": "x", "task": "regression"})
    assert denied.status_code == 403 and "publisher role" in _error(denied)
    no_keys = registry.call(
        "publisher", "POST", "/v1/api-keys", json={"name": "n", "role": "admin"}
    )
    assert no_keys.status_code == 403
    duplicate = registry.call(
        "publisher", "POST", "/v1/models", json={"name": "x", "task": "regression"}
    )
    assert duplicate.status_code == 201
    again = registry.call(
        "publisher", "POST", "/v1/models", json={"name": "x", "task": "regression"}
    )
    assert again.status_code == 409 and "already registered" in _error(again)
    invalid = registry.call(
        "publisher", "POST", "/v1/models", json={"name": "Bad Name", "task": "x"}
    )
    assert invalid.status_code == 422
    assert "name" in json.dumps(invalid.json()) and "task" in json.dumps(invalid.json())


def test_openapi_documents_versioned_paths(registry: Registry) -> None:
    spec = registry.client.get("/openapi.json").json()
    assert "/v1/models/{name}/rollback" in spec["paths"]
    assert all(path.startswith(("/v1/", "/healthz", "/readyz")) for path in spec["paths"])
