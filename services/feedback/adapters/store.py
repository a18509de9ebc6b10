"""The feedback store's statements: SQLAlchemy Core, a few statements per batch.

The join ingests every request and prediction (tens of thousands a second), so a batch's
rows are written per table with one driver executemany (SQLite) or one statement over the
batch as a JSON document (PostgreSQL), and read back by a JSON list of request ids, never
one ORM object per record. Writes are idempotent (insert-or-ignore by key, upsert of the
standing label), so a batch replayed after a crash changes nothing.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection, Engine, event
from sqlalchemy.dialects import postgresql, sqlite

from services.feedback.adapters.tables import (
    FEEDBACK,
    LABELS,
    PREDICTIONS,
    REQUESTS,
    VERSIONS,
)
from services.feedback.domain.judging import Answer, Task
from shared import db

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "feedback_alembic_version"
ROWS_PER_STATEMENT = 500
T = TypeVar("T")


def migrate(url: str) -> None:
    """Bring the feedback store's schema to the newest migration."""
    db.migrate(url, MIGRATIONS, VERSION_TABLE)


def make_store_engine(url: str) -> Engine:
    """An engine whose SQLite transactions take the write lock when they begin.

    A batch reads what it joins after writing its own rows; two writers interleaving
    those steps could each miss the other's half of a join. SQLite's BEGIN IMMEDIATE
    serialises them; on PostgreSQL the join takes row locks by request id instead.
    """
    engine = db.make_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _manual_transactions(dbapi_connection: Any, _record: object) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_reader_engine(url: str) -> Engine:
    """An engine for reads only (live quality, the review list, exports): on SQLite its
    transactions begin deferred, so a long read never holds the join's write lock."""
    return db.make_engine(url)


@dataclass(frozen=True)
class StoredFeedback:
    """A feedback row as the join needs it."""

    feedback_id: str
    request_id: str
    kind: str
    value: Any
    authority: int
    source: str
    given_at: float
    state: str
    strength: str | None
    label: Any
    refuted: Any


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


class FeedbackStore:
    """Rows of the join, keyed by request id (and variant), in one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect
        self._postgres = dialect.name == "postgresql"
        self._insert = postgresql.insert if self._postgres else sqlite.insert
        insert = self._insert
        self._insert_new_rows = {
            table.name: _rows_statement(
                insert(table), table, dialect, lambda s: s.on_conflict_do_nothing()
            )
            for table in (REQUESTS, PREDICTIONS, VERSIONS, FEEDBACK)
        }
        self._settle = _settle_statement(dialect)
        self._upsert_labels = _rows_statement(
            insert(LABELS),
            LABELS,
            dialect,
            lambda upsert: upsert.on_conflict_do_update(
                index_elements=[LABELS.c.request_id, LABELS.c.variant],
                set_={
                    column.name: upsert.excluded[column.name]
                    for column in LABELS.columns
                    if column.name not in ("request_id", "variant")
                },
            ),
        )
        self._by_ids = {
            name: _ByIds(columns, dialect, distinct=name == "named_by_feedback")
            for name, columns in _SELECTS_BY_REQUEST_IDS.items()
        }

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    def lock_requests(self, connection: Connection, request_ids: Iterable[str]) -> None:
        """Serialise joins of the same request across replicas (PostgreSQL; SQLite already
        serialises every writer). Locks are taken in one order, so two batches cannot
        deadlock, and are released at commit."""
        if not self._postgres:
            return
        keys = sorted(set(request_ids))
        if keys:  # one statement: locks are taken in one global order (by hash)
            connection.execute(
                sa.text(
                    "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0)"
                    " AS h FROM json_array_elements_text(CAST(:keys AS json)) AS k ORDER BY h)"
                    " AS ordered"
                ),
                {"keys": dumps(keys)},  # as JSON: psycopg quotes a text array in Python
            )

    # -- writes of the join ----------------------------------------------------------------

    def add_requests(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        self._insert_new(connection, REQUESTS, rows)

    def add_predictions(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        self._insert_new(connection, PREDICTIONS, rows)

    def add_versions(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        self._insert_new(connection, VERSIONS, rows)

    def add_feedback(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        self._insert_new(connection, FEEDBACK, rows)

    def _insert_new(
        self, connection: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        if rows:
            self._insert_new_rows[table.name].run(connection, rows)

    def settle_feedback(self, connection: Connection, updates: Sequence[Mapping[str, Any]]) -> None:
        """Record what pending feedback turned out to say (joined or refused)."""
        if updates:
            self._settle.run(
                connection,
                [{**row, "reason": _bounded(row["reason"])} for row in updates],
            )

    def put_labels(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Upsert the standing label of each (request, variant)."""
        if rows:
            self._upsert_labels.run(connection, rows)

    # -- reads of the join -----------------------------------------------------------------

    def with_feedback(self, connection: Connection, request_ids: Iterable[str]) -> set[str]:
        """Those of `request_ids` that some feedback names."""
        return {row[0] for row in self._by_ids["named_by_feedback"].rows(connection, request_ids)}

    def feedback_of(
        self, connection: Connection, request_ids: Iterable[str]
    ) -> dict[str, list[StoredFeedback]]:
        found: dict[str, list[StoredFeedback]] = {}
        for row in self._by_ids["feedback_of"].rows(connection, request_ids):
            stored = StoredFeedback(*row)
            stored = replace(
                stored,
                value=loads(stored.value),
                label=loads(stored.label),
                refuted=loads(stored.refuted),
            )
            found.setdefault(stored.request_id, []).append(stored)
        return found

    def answers_of(
        self, connection: Connection, request_ids: Iterable[str]
    ) -> dict[str, list[Answer]]:
        found: dict[str, list[Answer]] = {}
        rows = self._by_ids["answers_of"].rows(connection, request_ids)
        for request_id, variant, model, version, predicted, predicted_at in rows:
            found.setdefault(request_id, []).append(
                Answer(variant, model, version, loads(predicted), predicted_at)
            )
        for answers in found.values():
            answers.sort(key=lambda answer: answer.variant)
        return found

    def inputs_of(self, connection: Connection, request_ids: Iterable[str]) -> dict[str, str]:
        return dict(self._by_ids["inputs_of"].rows(connection, request_ids))

    def tasks_of(
        self, connection: Connection, versions: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], Task]:
        wanted = set(versions)
        found: dict[tuple[str, int], Task] = {}
        for model in {model for model, _ in wanted}:
            rows = connection.execute(
                sa.select(VERSIONS.c.version, VERSIONS.c.classes).where(VERSIONS.c.model == model)
            ).all()
            for row in rows:
                if (model, row.version) in wanted:
                    classes = loads(row.classes)
                    found[(model, row.version)] = Task(
                        tuple(classes) if classes is not None else None
                    )
        return found

    # -- the wait running out, and retention -----------------------------------------------

    def expire_pending(self, connection: Connection, *, received_before: float) -> int:
        """Mark feedback that waited too long as expiring; returns how many."""
        result = connection.execute(
            sa.update(FEEDBACK)
            .where(FEEDBACK.c.state == "pending", FEEDBACK.c.received_at < received_before)
            .values(state="expiring")
        )
        return int(result.rowcount or 0)

    def expiring(self, connection: Connection, *, limit: int) -> list[StoredFeedback]:
        columns = [FEEDBACK.c[name] for name in StoredFeedback.__dataclass_fields__]
        rows = connection.execute(
            sa.select(*columns)
            .where(FEEDBACK.c.state == "expiring")
            .order_by(FEEDBACK.c.received_at)
            .limit(limit)
        ).all()
        return [
            StoredFeedback(**{**row._asdict(), "value": loads(row.value), "label": None})
            for row in rows
        ]

    def mark_unmatched(
        self, connection: Connection, feedback_ids: Sequence[str], reason: str
    ) -> None:
        for chunk in _chunks(list(feedback_ids)):
            connection.execute(
                sa.update(FEEDBACK)
                .where(FEEDBACK.c.feedback_id.in_(chunk), FEEDBACK.c.state == "expiring")
                .values(state="unmatched", reason=reason[:500])
            )

    def forget_before(self, connection: Connection, *, cutoff: float) -> int:
        """Drop requests, predictions and settled feedback older than the retention.

        Labels stay: they are the training data."""
        removed = 0
        for table, column in (
            (REQUESTS, REQUESTS.c.requested_at),
            (PREDICTIONS, PREDICTIONS.c.predicted_at),
        ):
            removed += int(connection.execute(sa.delete(table).where(column < cutoff)).rowcount)
        connection.execute(
            sa.delete(FEEDBACK).where(
                FEEDBACK.c.received_at < cutoff,
                FEEDBACK.c.state.in_(("joined", "refused", "unmatched")),
            )
        )
        return removed


_SETTLED = ("state", "model", "version", "variant", "strength", "label", "refuted", "reason")


class _Prepared:
    """A statement compiled once for the engine's dialect and run as driver SQL.

    executemany with plain tuples (or dicts) skips SQLAlchemy's per-row parameter
    processing, which was most of the join's database time when every row went through
    it. The SQL is SQLAlchemy's own compilation, never text put together by hand.
    """

    def __init__(
        self, statement: Any, dialect: Any, *, names: dict[str, str] | None = None
    ) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self._positional = bool(compiled.positional)
        parameters = list(compiled.positiontup if compiled.positional else compiled.params)
        renamed = names or {}
        self._names = [renamed.get(name, name) for name in parameters]
        self._parameters = parameters
        self._pick = operator.itemgetter(*self._names)

    def run(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        connection.exec_driver_sql(self.sql, self.parameters(rows))

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Each row's values in the statement's order; a column a row lacks is null."""
        try:  # rows with every column: one C call each
            values = list(map(self._pick, rows))
        except KeyError:
            values = [tuple(row.get(name) for name in self._names) for row in rows]
        if self._positional:
            return values
        return [dict(zip(self._parameters, row, strict=True)) for row in values]


class _JsonRows:
    """A PostgreSQL statement that takes a whole batch of rows as one JSON document.

    The server parses, plans and runs it once, where executemany ran it once per row
    (which was most of the server's CPU per label); orjson writes the rows as they are,
    so no Python code runs per row or per value.
    """

    def __init__(self, statement: Any, dialect: Any) -> None:
        self.sql = str(statement.compile(dialect=dialect))

    def run(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        connection.exec_driver_sql(self.sql, {"rows": dumps(list(rows))})


def _json_rows(columns: Sequence[sa.Column[Any]]) -> Any:
    """The rows of a JSON array of objects, typed as `columns` (PostgreSQL). Strings are
    read as text, so a value too long for its column fails the statement as a single row
    would, instead of being cut short by a cast."""
    typed = [
        sa.column(column.name, sa.Text() if isinstance(column.type, sa.String) else column.type)
        for column in columns
    ]
    return (
        sa.func.json_to_recordset(sa.cast(sa.bindparam("rows"), postgresql.JSON))
        .table_valued(*typed)
        .render_derived(name="batch", with_types=True)
    )


def _rows_statement(
    insert: Any, table: sa.Table, dialect: Any, finish: Callable[[Any], Any]
) -> _Prepared | _JsonRows:
    """An insert of a batch of rows: executemany on SQLite, one statement on PostgreSQL."""
    if dialect.name != "postgresql":
        return _Prepared(finish(insert), dialect)
    batch = _json_rows(list(table.columns))
    names = [column.name for column in table.columns]
    selected = sa.select(*(batch.c[name] for name in names))
    return _JsonRows(finish(insert.from_select(names, selected)), dialect)


def _settle_statement(dialect: Any) -> _Prepared | _JsonRows:
    """The update that records what pending feedback turned out to say."""
    if dialect.name != "postgresql":
        statement = (
            sa.update(FEEDBACK)
            .where(FEEDBACK.c.feedback_id == sa.bindparam("b_feedback_id"))
            .values({name: sa.bindparam(f"b_{name}") for name in _SETTLED})
        )
        names = {f"b_{name}": name for name in ("feedback_id", *_SETTLED)}
        return _Prepared(statement, dialect, names=names)
    batch = _json_rows([FEEDBACK.c.feedback_id, *(FEEDBACK.c[name] for name in _SETTLED)])
    statement = (
        sa.update(FEEDBACK)
        .where(FEEDBACK.c.feedback_id == batch.c.feedback_id)
        .values({name: batch.c[name] for name in _SETTLED})
    )
    return _JsonRows(statement, dialect)


class _ByIds:
    """A select by a list of request ids, compiled once with the ids as one parameter, a
    JSON array: no statement to render per batch, whatever its size, and no chunks."""

    def __init__(self, columns: Sequence[Any], dialect: Any, *, distinct: bool = False) -> None:
        ids: Any = sa.bindparam("ids")
        listed: Any
        request_id = columns[0].table.c.request_id
        if dialect.name == "postgresql":  # = ANY(array): an index scan, whatever the stats
            listed = sa.select(sa.func.json_array_elements_text(sa.cast(ids, postgresql.JSON)))
            condition = request_id == sa.any_(sa.func.array(listed.scalar_subquery()))
        else:
            listed = sa.select(sa.column("value")).select_from(sa.func.json_each(ids))
            condition = request_id.in_(listed)
        query = sa.select(*columns).where(condition)
        compiled = (query.distinct() if distinct else query).compile(dialect=dialect)
        self.sql = str(compiled)
        self._positional = bool(compiled.positional)

    def rows(self, connection: Connection, request_ids: Iterable[str]) -> list[Any]:
        wanted = sorted(set(request_ids))
        if not wanted:
            return []
        ids = dumps(wanted)
        parameters = (ids,) if self._positional else {"ids": ids}
        return list(connection.exec_driver_sql(self.sql, parameters).fetchall())


_SELECTS_BY_REQUEST_IDS: dict[str, tuple[Any, ...]] = {
    "named_by_feedback": (FEEDBACK.c.request_id,),
    "feedback_of": tuple(FEEDBACK.c[name] for name in StoredFeedback.__dataclass_fields__),
    "answers_of": (
        PREDICTIONS.c.request_id,
        PREDICTIONS.c.variant,
        PREDICTIONS.c.model,
        PREDICTIONS.c.version,
        PREDICTIONS.c.predicted,
        PREDICTIONS.c.predicted_at,
    ),
    "inputs_of": (REQUESTS.c.request_id, REQUESTS.c.inputs),
}


def _bounded(reason: Any) -> Any:
    """The refusal reason fits its column, whatever a hostile label made of it."""
    return reason[:500] if isinstance(reason, str) else reason


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), ROWS_PER_STATEMENT):
        yield items[start : start + ROWS_PER_STATEMENT]
