"""Dataset snapshots registered on their own: checked, content-addressed, described, audited."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.kafka_broker import KafkaBroker
from devtools.live_registry import live_registry
from devtools.sample_models import iris_classifier
from tests.integration.registry.conftest import Registry

pytestmark = [pytest.mark.kafka]
LABELLED = (
    b"sepal_length,sepal_width,petal_length,petal_width,label,source\n"
    b"5.1,3.5,1.4,0.2,setosa,reviewer\n"
    b"6.7,3.0,5.2,2.3,virginica,user\n"
)


def _upload(
    registry: Registry, content: bytes, *, role: str = "publisher", **fields: str
) -> httpx.Response:
    return registry.call(
        role,
        "POST",
        "/v1/datasets",
        files={"content": ("labels.csv", content, "text/csv")},
        data=fields,
    )


def _error(response: httpx.Response) -> str:
    return str(response.json()["error"]["message"])


def _audit(registry: Registry, **params: Any) -> list[dict[str, Any]]:
    response = registry.call("reader", "GET", "/v1/audit", params=params)
    assert response.status_code == 200, response.text
    return list(response.json())


def test_an_upload_is_stored_by_its_hash_and_read_back_byte_for_byte(registry: Registry) -> None:
    registry.create_model("iris")

    created = _upload(
        registry, LABELLED, model="iris", description="feedback labels, 2026-11-29 export"
    )
    body = created.json()
    content = registry.call("reader", "GET", body["content_url"])
    shown = registry.call("reader", "GET", f"/v1/datasets/{body['sha256']}")
    listed = registry.call("reader", "GET", "/v1/datasets", params={"model": "iris"})
    audit = _audit(registry, action="dataset.registered")

    assert created.status_code == 201, created.text
    assert body["sha256"] == hashlib.sha256(LABELLED).hexdigest()
    assert (body["size_bytes"], body["row_count"]) == (len(LABELLED), 2)
    assert body["columns"][-2:] == ["label", "source"]
    assert (body["model"], body["created_by"]) == ("iris", "publisher-key")
    assert body["description"] == "feedback labels, 2026-11-29 export"
    assert content.status_code == 200 and content.content == LABELLED
    assert hashlib.sha256(content.content).hexdigest() == body["sha256"]
    assert content.headers["etag"] == f'"{body["sha256"]}"'
    assert shown.json() == body
    assert [row["sha256"] for row in listed.json()] == [body["sha256"]]
    assert len(audit) == 1
    assert (audit[0]["actor"], audit[0]["model"]) == ("publisher-key", "iris")
    assert audit[0]["reason"] == "feedback labels, 2026-11-29 export"
    assert audit[0]["details"]["sha256"] == body["sha256"]


def test_the_same_content_again_is_200_with_the_same_hash_and_first_description(
    registry: Registry,
) -> None:
    first = _upload(registry, LABELLED, description="first export")
    again = _upload(registry, LABELLED, role="approver", description="second export")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert len(_audit(registry, action="dataset.registered")) == 1


def test_a_version_s_training_data_is_the_same_snapshot(registry: Registry) -> None:
    iris = iris_classifier()
    registry.create_model("iris")
    version = registry.register("iris", iris.artifact, iris.dataset).json()

    again = _upload(registry, iris.dataset)
    listed = registry.call("reader", "GET", "/v1/datasets", params={"model": "iris"}).json()

    assert again.status_code == 200, again.text
    assert again.json()["sha256"] == version["dataset"]["sha256"]
    assert again.json()["model"] == "iris"  # its first registration, by the version
    assert [row["sha256"] for row in listed] == [version["dataset"]["sha256"]]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "the file is empty"),
        (b"a,b\n", "header but no data rows"),
        (b"a,b\n1,2\n3\n", "line 3"),
        (b'a,b\n1,"unclosed\n', "malformed CSV"),
        (b"a,b\n\xff\xfe,1\n", "not UTF-8"),
        (b"a,a\n1,2\n", "duplicate column name 'a'"),
    ],
)
def test_a_malformed_csv_is_422_saying_what_is_wrong(
    registry: Registry, content: bytes, fragment: str
) -> None:
    refused = _upload(registry, content)

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "invalid_input"
    assert _error(refused).startswith("content: ")
    assert fragment in _error(refused)
    assert registry.call("reader", "GET", "/v1/datasets").json() == []


def test_a_snapshot_over_the_upload_limit_is_413(registry: Registry) -> None:
    huge = LABELLED * (1 + registry.settings.max_upload_bytes // len(LABELLED))

    refused = _upload(registry, huge)

    assert refused.status_code == 413, refused.text
    assert "exceeds the limit" in _error(refused)
    assert "MODELBUS_MAX_UPLOAD_BYTES" in _error(refused)
    assert registry.call("reader", "GET", "/v1/datasets").json() == []


def test_readers_and_reviewers_may_not_register_and_provenance_is_checked(
    registry: Registry,
) -> None:
    by_reader = _upload(registry, LABELLED, role="reader")
    by_reviewer = _upload(registry, LABELLED, role="reviewer")
    unknown_model = _upload(registry, LABELLED, model="nope")
    long_description = _upload(registry, LABELLED, description="x" * 2001)
    missing_content = registry.call("publisher", "POST", "/v1/datasets", data={"model": "x"})

    for refused in (by_reader, by_reviewer):
        assert refused.status_code == 403, refused.text
        assert "registering a dataset needs the publisher role" in _error(refused)
    assert unknown_model.status_code == 422
    assert "model: no model named 'nope'" in _error(unknown_model)
    assert long_description.status_code == 422 and "description" in _error(long_description)
    assert missing_content.status_code == 422 and "content" in _error(missing_content)
    assert registry.call("reader", "GET", "/v1/datasets").json() == []


def test_the_registry_client_registers_lists_and_reads_snapshots(
    tmp_path: Path, kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    with (
        live_registry(
            data_dir=tmp_path, kafka_bootstrap=kafka_broker.bootstrap, topic_prefix=topic_prefix
        ) as registry,
        registry.client("publisher") as client,
    ):
        client.create_model("iris", "classification")
        first = client.register_dataset(LABELLED, model="iris", description="labels")
        again = client.register_dataset(LABELLED)
        listed = client.datasets(model="iris")
        content = client.dataset_content(first["sha256"])

    assert again == first and first["model"] == "iris"
    assert [row["sha256"] for row in listed] == [first["sha256"]]
    assert content == LABELLED
