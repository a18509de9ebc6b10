"""Deployment changes carry a revision: stale and concurrent changes lose with 409."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session

from devtools.sample_models import iris_classifier
from services.registry.service_layer import deployments
from services.registry.service_layer.context import Actor
from shared.kafka.codec import decode
from shared.roles import Role
from shared.topics import MODEL_EVENTS
from tests.integration.registry.conftest import Registry
from tests.support.topic_reader import read_records_sync

pytestmark = [pytest.mark.kafka]


def _approved_versions(registry: Registry, count: int) -> None:
    registry.create_model("iris")
    for c in (1.0, 0.5, 0.1)[:count]:
        sample = iris_classifier(c=c)
        created = registry.register("iris", sample.artifact, sample.dataset)
        assert created.status_code == 201, created.text
        approval = registry.call(
            "approver",
            "POST",
            f"/v1/models/iris/versions/{created.json()['version']}/approvals",
            json={"decision": "approve", "reason": "reviewed"},
        )
        assert approval.status_code == 201, approval.text


def _post(registry: Registry, path: str, **body: Any) -> Any:
    return registry.call("publisher", "POST", f"/v1/models/iris{path}", json=body)


def test_changes_raise_the_revision_and_a_stale_expected_revision_gets_409(
    registry: Registry,
) -> None:
    _approved_versions(registry, 2)
    promoted = _post(
        registry, "/deployment/production", version=1, reason="first", expected_revision=0
    )
    assert promoted.status_code == 200 and promoted.json()["revision"] == 1

    stale = _post(
        registry, "/deployment/canary", version=2, weight=0.1, reason="x", expected_revision=0
    )
    assert stale.status_code == 409, stale.text
    assert "at revision 1, not the expected 0" in stale.json()["error"]["message"]
    canary = _post(
        registry, "/deployment/canary", version=2, weight=0.1, reason="x", expected_revision=1
    )
    assert canary.status_code == 200 and canary.json()["revision"] == 2
    stale_stop = registry.call(
        "publisher",
        "DELETE",
        "/v1/models/iris/deployment/canary",
        params={"reason": "done", "expected_revision": 1},
    )
    assert stale_stop.status_code == 409
    stale_rollback = _post(registry, "/rollback", reason="undo", expected_revision=1)
    assert stale_rollback.status_code == 409
    stopped = registry.call(
        "publisher",
        "DELETE",
        "/v1/models/iris/deployment/canary",
        params={"reason": "done", "expected_revision": 2},
    )
    assert stopped.status_code == 200 and stopped.json()["revision"] == 3
    without = _post(registry, "/deployment/shadow", version=2, reason="no expectation")
    assert without.status_code == 200 and without.json()["revision"] == 4

    history = registry.call("reader", "GET", "/v1/models/iris/deployment/history").json()
    assert [(row["revision"], row["action"]) for row in history] == [
        (4, "shadow"),
        (3, "canary_stopped"),
        (2, "canary"),
        (1, "promote"),
    ]
    topic = registry.settings.topic_prefix + MODEL_EVENTS.name
    records = read_records_sync(registry.settings.kafka_bootstrap, topic, expected=1 + 2 + 2 + 4)
    events = [decode(MODEL_EVENTS, record.value, record.headers) for record in records]
    revisions = [
        event.deployment.revision
        for event in events
        if event.event_type == "deployment.changed" and event.deployment is not None
    ]
    assert revisions == [1, 2, 3, 4]


def test_a_change_decided_on_a_state_that_moved_on_loses_with_409(registry: Registry) -> None:
    """A rival change commits between this request's read and its write: no lost update."""
    _approved_versions(registry, 3)
    assert _post(registry, "/deployment/production", version=1, reason="r").status_code == 200
    engine = registry.client.app.state.container.engine  # type: ignore[attr-defined]
    rival_ran: list[bool] = []

    def rival_commits_first(
        _connection: Any, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any
    ) -> None:
        writing = statement.lstrip().upper().startswith(("UPDATE", "INSERT"))
        if rival_ran or not writing or "deployment" not in statement:
            return
        rival_ran.append(True)
        with Session(engine) as rival_session:
            deployments.set_shadow(
                rival_session,
                Actor("rival", Role.PUBLISHER),
                "iris",
                deployments.ShadowRequest(version=3, reason="rival"),
            )

    event.listen(engine, "before_cursor_execute", rival_commits_first)
    try:
        mine = _post(registry, "/deployment/canary", version=2, weight=0.2, reason="mine")
    finally:
        event.remove(engine, "before_cursor_execute", rival_commits_first)

    assert rival_ran
    assert mine.status_code == 409, mine.text
    assert "changed while this change was decided" in mine.json()["error"]["message"]
    deployment = registry.call("reader", "GET", "/v1/models/iris/deployment").json()
    assert (deployment["production"], deployment["canary"], deployment["shadow"]) == (1, None, 3)
    assert deployment["revision"] == 2
    history = registry.call("reader", "GET", "/v1/models/iris/deployment/history").json()
    assert [(row["revision"], row["actor"]) for row in history] == [
        (2, "rival"),
        (1, "publisher-key"),
    ]
