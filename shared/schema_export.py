"""Render the checked-in contract documents (JSON Schemas, AsyncAPI) from the topic catalogue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from shared.kafka.headers import CONTENT_TYPE, SPEC_VERSION
from shared.topics import ALL_TOPICS, TopicSpec

ASYNCAPI_FILE = "asyncapi.yaml"
SCHEMA_BASE_URI = "urn:modelbus:schemas:"


def json_schema(spec: TopicSpec[Any]) -> dict[str, Any]:
    """The JSON Schema of a topic's payload, as consumers validate it."""
    schema = spec.payload.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE_URI + spec.schema_file,
        "x-topic": spec.name,
        "x-event-type": spec.event_type,
        **schema,
    }


def _headers_schema(spec: TopicSpec[Any]) -> dict[str, Any]:
    def text(description: str, **extra: Any) -> dict[str, Any]:
        return {"type": "string", "description": description, **extra}

    return {
        "type": "object",
        "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "traceparent"],
        "properties": {
            "ce_specversion": text("CloudEvents spec version.", const=SPEC_VERSION),
            "ce_id": text("Unique id of this event."),
            "ce_source": text("Producing service, e.g. /modelbus/registry."),
            "ce_type": text(
                "Event type; the suffix is the payload's major version.", const=spec.event_type
            ),
            "ce_time": text("When the event was produced (RFC 3339).", format="date-time"),
            "ce_subject": text("The record key, when there is one."),
            "content-type": text("Payload media type.", const=CONTENT_TYPE),
            "traceparent": text(
                "W3C trace context of the producing span.",
                pattern=r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
            ),
            "tracestate": text("W3C trace state, when the producer has one."),
        },
    }


def _message_name(spec: TopicSpec[Any]) -> str:
    return spec.payload.__name__


def asyncapi_document() -> dict[str, Any]:
    """An AsyncAPI 3 document naming each topic, its key, headers and payload."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in ALL_TOPICS:
        channel_id = spec.name.replace("-", "_")
        message = _message_name(spec)
        channels[channel_id] = {
            "address": spec.name,
            "description": spec.description,
            "messages": {message: {"$ref": f"#/components/messages/{message}"}},
            "bindings": {
                "kafka": {
                    "topic": spec.name,
                    "partitions": spec.partitions,
                    "topicConfiguration": {
                        "cleanup.policy": [spec.cleanup_policy],
                        "retention.ms": spec.retention_ms,
                    },
                    "bindingVersion": "0.5.0",
                }
            },
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"Produced by: {', '.join(spec.producers)}.",
        }
        operations[f"consume_{channel_id}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"Consumed by: {', '.join(spec.consumers)}.",
        }
    messages = {
        _message_name(spec): {
            "name": _message_name(spec),
            "title": spec.payload.__name__,
            "summary": (spec.payload.__doc__ or "").strip().splitlines()[0],
            "contentType": CONTENT_TYPE,
            "headers": _headers_schema(spec),
            "payload": {"$ref": f"./{spec.schema_file}"},
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": spec.key},
                    "bindingVersion": "0.5.0",
                }
            },
        }
        for spec in ALL_TOPICS
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "modelbus",
            "version": "1.0.0",
            "description": (
                "Kafka topics of the modelbus platform. Payloads are JSON; every record "
                "carries CloudEvents binary-mode ce_* headers and a W3C traceparent."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render_all() -> dict[str, str]:
    """File name -> exact text of every generated document under schemas/."""
    files = {
        spec.schema_file: json.dumps(json_schema(spec), indent=2, sort_keys=True) + "\n"
        for spec in ALL_TOPICS
    }
    files[ASYNCAPI_FILE] = yaml.safe_dump(asyncapi_document(), sort_keys=False, width=100)
    return files


def write_all(directory: Path) -> list[Path]:
    """Regenerate schemas/; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def stale_files(directory: Path) -> list[str]:
    """Names of generated documents that are missing or differ from the code."""
    stale = []
    for name, text in render_all().items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            stale.append(name)
    return stale
