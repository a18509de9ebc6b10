"""What the gateway accepts as a prediction body, request id and API key."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from services.gateway.domain.serving import is_model_name
from services.gateway.entrypoints.dependencies import api_key_from
from services.gateway.entrypoints.routes import _chosen_request_id
from services.gateway.entrypoints.views import PredictBody
from services.gateway.service_layer.errors import InvalidInput
from shared.contracts.base import ModelName

VALID: dict[str, Any] = {"inputs": {"age": 41, "plan": "pro", "active": True, "score": 0.5}}


def _problems(body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        PredictBody.model_validate(body)
    return [(".".join(map(str, e["loc"])), e["type"]) for e in caught.value.errors()]


def test_a_minimal_body_has_no_request_id_version_callback_or_routing_key() -> None:
    body = PredictBody.model_validate(VALID)

    assert body.inputs == {"age": 41, "plan": "pro", "active": True, "score": 0.5}
    assert (body.request_id, body.version, body.callback, body.routing_key) == (None,) * 4


def test_json_values_keep_their_types() -> None:
    body = PredictBody.model_validate_json(
        '{"inputs": {"a": 1, "b": 1.5, "c": true, "d": "x", "e": null}}'
    )

    assert [type(value) for value in body.inputs.values()] == [
        int,
        float,
        bool,
        str,
        type(None),
    ]


def test_a_full_body_is_read() -> None:
    body = PredictBody.model_validate(
        VALID
        | {
            "request_id": "order-17:retry",
            "version": 3,
            "callback": {"url": "https://example.com/hook"},
            "routing_key": "customer-9",
        }
    )

    assert body.request_id == "order-17:retry"
    assert body.version == 3
    assert body.callback is not None and str(body.callback.url) == "https://example.com/hook"
    assert body.routing_key == "customer-9"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, ("inputs", "missing")),
        ({"inputs": {}}, ("inputs", "too_short")),
        ({"inputs": {"a": [1, 2]}}, ("inputs.a.float", "float_type")),
        (VALID | {"model": "iris"}, ("model", "extra_forbidden")),
        (VALID | {"request_id": "has space"}, ("request_id", "string_pattern_mismatch")),
        (VALID | {"request_id": ""}, ("request_id", "string_too_short")),
        (VALID | {"version": 0}, ("version", "greater_than_equal")),
        (VALID | {"callback": {"url": "ftp://example.com"}}, ("callback.url", "url_scheme")),
        (VALID | {"routing_key": ""}, ("routing_key", "string_too_short")),
        (VALID | {"routing_key": "k" * 257}, ("routing_key", "string_too_long")),
    ],
)
def test_invalid_bodies_name_the_field(body: dict[str, Any], problem: tuple[str, str]) -> None:
    assert problem in _problems(body)


def test_every_problem_is_reported_at_once() -> None:
    fields = {loc for loc, _ in _problems({"inputs": {}, "version": 0, "extra": 1})}

    assert fields == {"inputs", "version", "extra"}


def test_request_id_comes_from_body_then_header_then_a_new_one() -> None:
    assert _chosen_request_id("from-body", None) == "from-body"
    assert _chosen_request_id(None, "from-header") == "from-header"
    assert _chosen_request_id("same", "same") == "same"
    generated = {_chosen_request_id(None, None) for _ in range(3)}
    assert len(generated) == 3


def test_body_and_header_must_agree_and_the_header_must_be_a_valid_id() -> None:
    with pytest.raises(InvalidInput, match="differ"):
        _chosen_request_id("one", "two")
    with pytest.raises(InvalidInput, match="Idempotency-Key"):
        _chosen_request_id(None, "not valid!")


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "key"),
    [
        ("Bearer abc", None, "abc"),
        ("bearer   abc  ", None, "abc"),
        (None, "xyz", "xyz"),
        ("Bearer abc", "xyz", "xyz"),
        ("Basic abc", None, None),
        ("Bearer ", None, None),
        (None, "  ", None),
        (None, None, None),
    ],
)
def test_api_key_is_read_like_the_registry_reads_it(
    authorization: str | None, x_api_key: str | None, key: str | None
) -> None:
    assert api_key_from(authorization, x_api_key) == key


@pytest.mark.parametrize(
    "name", ["iris", "churn-v2", "a.b_c", "0", "x" * 128, "x" * 129, "Iris", "a b", "../x", ""]
)
def test_model_name_check_agrees_with_the_contract(name: str) -> None:
    try:
        TypeAdapter(ModelName).validate_python(name)
        valid = True
    except ValidationError:
        valid = False

    assert is_model_name(name) is valid
