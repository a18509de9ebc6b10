"""schemas/ is generated from the contract models; this fails when they drift apart."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from shared.schema_export import ASYNCAPI_FILE, render_all, stale_files
from shared.topics import ALL_TOPICS

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_checked_in_schemas_match_the_code() -> None:
    stale = stale_files(SCHEMAS)
    assert stale == [], f"run `modelbus schemas generate`; stale: {stale}"


def test_no_orphan_schema_files() -> None:
    expected = set(render_all())
    present = {path.name for path in SCHEMAS.iterdir() if path.is_file()}
    assert present == expected


def test_request_schema_has_the_wire_fields() -> None:
    schema = json.loads((SCHEMAS / "requests.schema.json").read_text())
    assert set(schema["required"]) == {"request_id", "model", "inputs"}
    assert {"version", "callback", "created_at", "routing_key"} <= set(schema["properties"])


def test_asyncapi_names_every_topic_key_headers_and_payload() -> None:
    document = yaml.safe_load((SCHEMAS / ASYNCAPI_FILE).read_text())
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {spec.name for spec in ALL_TOPICS}
    for spec in ALL_TOPICS:
        message = document["components"]["messages"][spec.payload.__name__]
        assert message["payload"]["$ref"] == f"./{spec.schema_file}"
        assert message["bindings"]["kafka"]["key"]["description"] == spec.key
        headers = message["headers"]["properties"]
        assert {"traceparent", "ce_id", "ce_type", "ce_source", "ce_specversion"} <= set(headers)
        assert headers["ce_type"]["const"] == spec.event_type
    actions = {op["action"] for op in document["operations"].values()}
    assert actions == {"send", "receive"}
