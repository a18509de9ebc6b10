"""Every service logs one JSON object per line, uvicorn's records included."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from shared.runtime.logs import configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restored_logging")
def test_records_become_json_lines_with_the_service_and_extra_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("gateway", "INFO")
    logging.getLogger("services.gateway").info("accepted", extra={"request_id": "r-1"})
    logging.getLogger("uvicorn.error").warning("Application startup complete.")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["service"], line["message"]) for line in lines] == [
        ("gateway", "accepted"),
        ("gateway", "Application startup complete."),
    ]
    assert lines[0]["request_id"] == "r-1" and lines[0]["level"] == "info"


@pytest.mark.usefixtures("restored_logging")
def test_client_libraries_log_only_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("inference", "INFO")
    logging.getLogger("aiokafka").info("chatty")
    logging.getLogger("aiokafka").warning("worth knowing")
    messages = [json.loads(line)["message"] for line in capsys.readouterr().err.splitlines()]
    assert messages == ["worth knowing"]
