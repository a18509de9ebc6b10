"""The Alembic migrations build exactly the schema the table classes describe, on both databases."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import services.registry.adapters.tables  # noqa: F401  (registers the tables)
from services.registry.adapters.database import (
    VERSION_TABLE,
    alembic_config,
    make_engine,
    migrate,
)


def test_migrations_match_the_tables(database_url: str) -> None:
    migrate(database_url)
    migrate(database_url)  # a second run is a no-op
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_existing_deployment_history_is_numbered_with_revisions(database_url: str) -> None:
    """0003 numbers the history each model already has, in order, as its revisions."""
    command.upgrade(alembic_config(database_url), "0001")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            for model_id, name in ((1, "iris"), (2, "wine")):
                connection.execute(
                    text(
                        "INSERT INTO models (id, name, task, description, policy, routing, "
                        "created_by, created_at) VALUES (:id, :name, 'classification', '', "
                        "'{}', '{}', 'tests', CURRENT_TIMESTAMP)"
                    ),
                    {"id": model_id, "name": name},
                )
            for model_id in (1, 2, 1, 1, 2):
                connection.execute(
                    text(
                        "INSERT INTO deployment_history (model_id, action, production, "
                        "canary_weight, actor, reason, created_at) VALUES (:model_id, 'promote', "
                        "1, 0.0, 'tests', '', CURRENT_TIMESTAMP)"
                    ),
                    {"model_id": model_id},
                )
        migrate(database_url)
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT model_id, revision FROM deployment_history ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(1, 1), (2, 1), (1, 2), (1, 3), (2, 2)]


def test_existing_datasets_are_credited_to_the_first_version_that_used_them(
    database_url: str,
) -> None:
    """0005 names the model and key behind each snapshot stored before provenance was kept."""
    command.upgrade(alembic_config(database_url), "0004")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            for model_id, name in ((1, "iris"), (2, "wine")):
                connection.execute(
                    text(
                        "INSERT INTO models (id, name, task, description, policy, routing, "
                        "created_by, created_at) VALUES (:id, :name, 'classification', '', "
                        "'{}', '{}', 'tests', CURRENT_TIMESTAMP)"
                    ),
                    {"id": model_id, "name": name},
                )
            for dataset_id in (1, 2):
                connection.execute(
                    text(
                        "INSERT INTO datasets (id, sha256, size_bytes, row_count, columns, "
                        "created_at) VALUES (:id, :sha, 10, 1, '[]', CURRENT_TIMESTAMP)"
                    ),
                    {"id": dataset_id, "sha": str(dataset_id) * 64},
                )
            for version_id, model_id, dataset_id, key in ((1, 2, 1, "wine-ci"), (2, 1, 1, "x")):
                connection.execute(
                    text(
                        "INSERT INTO model_versions (id, model_id, version, status, "
                        "artifact_sha256, artifact_size, estimator_type, dataset_id, target, "
                        "code_version, description, params, metrics, tags, signature, profile, "
                        "created_by, created_at) VALUES (:id, :model_id, 1, 'registered', "
                        "'ab', 1, 'classifier', :dataset_id, 'y', 'abc1234', '', '{}', '{}', "
                        "'{}', '{}', '{}', :key, CURRENT_TIMESTAMP)"
                    ),
                    {"id": version_id, "model_id": model_id, "dataset_id": dataset_id, "key": key},
                )
        migrate(database_url)
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id, model, description, created_by FROM datasets ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "wine", "", "wine-ci"), (2, None, "", None)]


def test_feedback_policies_and_dataset_provenance_downgrade_and_upgrade_again(
    database_url: str,
) -> None:
    """0004 and 0005 only add columns, so going back keeps every row (foreign keys too)."""
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO models (id, name, task, description, policy, routing, feedback, "
                    "created_by, created_at) VALUES (1, 'iris', 'classification', '', '{}', "
                    "'{}', '{\"train_on_weak\": true}', 'tests', CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO datasets (id, sha256, size_bytes, row_count, columns, model, "
                    "description, created_by, created_at) VALUES (1, :sha, 10, 1, '[]', 'iris', "
                    "'labels', 'ci', CURRENT_TIMESTAMP)"
                ),
                {"sha": "a" * 64},
            )
            connection.execute(
                text(
                    "INSERT INTO model_versions (id, model_id, version, status, "
                    "artifact_sha256, artifact_size, estimator_type, dataset_id, target, "
                    "code_version, description, params, metrics, tags, signature, profile, "
                    "created_by, created_at) VALUES (1, 1, 1, 'registered', 'ab', 1, "
                    "'classifier', 1, 'y', 'abc1234', '', '{}', '{}', '{}', '{}', '{}', 'ci', "
                    "CURRENT_TIMESTAMP)"
                )
            )
        command.downgrade(alembic_config(database_url), "0003")
        migrate(database_url)
        with engine.connect() as connection:
            models = connection.execute(text("SELECT name, feedback FROM models")).all()
            datasets = connection.execute(
                text("SELECT sha256, model, created_by FROM datasets")
            ).all()
            versions = connection.execute(text("SELECT dataset_id FROM model_versions")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in models] == [("iris", None)]
    assert [tuple(row) for row in datasets] == [("a" * 64, "iris", "ci")]  # credited again
    assert [tuple(row) for row in versions] == [(1,)]
