"""The judge's state table: kept in memory, written to the compacted `drift-state` topic in
the same transaction as the offsets of the sketches it consumed, read back on assignment.

Each state record goes to the partition number of the sketch partition it came from, so
the member that owns sketches partition p restores its models from state partition p and
nothing else. A batch's changes stay pending until its transaction commits: a failed
transaction is processed again from the committed state, never from its own leftovers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.contracts import DriftStateRecord
from shared.kafka.codec import OutgoingRecord, UndecodableMessage, decode, encode
from shared.topics import DRIFT_STATE

log = logging.getLogger(__name__)

StateKey = tuple[str, int]
RESTORE_POLL_MS = 500


def state_key(key: StateKey) -> str:
    model, version = key
    return f"{model}/{version}"


class StateTable:
    """Model-version states of the sketch partitions this member owns."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        client_options: Mapping[str, Any],
        source: str = "drift",
        restore_timeout_seconds: float = 60.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._client_options = dict(client_options)
        self._source = source
        self._restore_timeout = restore_timeout_seconds
        self._committed: dict[int, dict[StateKey, dict[str, Any]]] = {}
        self._restored_in: dict[int, int] = {}
        self._pending: dict[int, dict[StateKey, dict[str, Any]]] = {}

    def begin(self) -> None:
        """Start a batch: whatever a failed earlier attempt left pending is dropped."""
        self._pending = {}

    def get(self, partition: int, key: StateKey) -> dict[str, Any] | None:
        pending = self._pending.get(partition, {})
        if key in pending:
            return pending[key]
        return self._committed.get(partition, {}).get(key)

    def put(self, partition: int, key: StateKey, state: dict[str, Any]) -> None:
        self._pending.setdefault(partition, {})[key] = state

    def pending_records(self) -> list[OutgoingRecord]:
        """The batch's changes, for its transaction."""
        now = datetime.now(UTC)
        records = []
        for partition, states in self._pending.items():
            for key, state in states.items():
                message = DriftStateRecord(
                    model=key[0], version=key[1], state=state, written_at=now
                )
                record = encode(
                    DRIFT_STATE,
                    message,
                    key=state_key(key),
                    source=self._source,
                    topic=self._topic,
                )
                records.append(replace(record, partition=partition))
        return records

    def commit(self) -> None:
        """The batch's transaction committed: its changes are the state now."""
        for partition, states in self._pending.items():
            self._committed.setdefault(partition, {}).update(states)
        self._pending = {}

    def states(self) -> dict[StateKey, dict[str, Any]]:
        """Every committed state this member holds (for status pages)."""
        merged: dict[StateKey, dict[str, Any]] = {}
        for states in self._committed.values():
            merged.update(states)
        return merged

    async def ensure_restored(self, partition: int, generation: int) -> None:
        """Read state partition `partition` to its end unless done in this generation.

        A partition owned in an earlier generation may have been advanced by another
        member since, so it is read again after every rebalance.
        """
        if self._restored_in.get(partition) == generation:
            return
        self._committed[partition] = await asyncio.wait_for(
            self._read_partition(partition), timeout=self._restore_timeout
        )
        self._restored_in[partition] = generation
        log.info(
            "state restored",
            extra={"partition": partition, "states": len(self._committed[partition])},
        )

    async def _read_partition(self, partition: int) -> dict[StateKey, dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
            **self._client_options,
        )
        await consumer.start()
        states: dict[StateKey, dict[str, Any]] = {}
        try:
            tp = TopicPartition(self._topic, partition)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < end:
                fetched = await consumer.getmany(tp, timeout_ms=RESTORE_POLL_MS)
                for record in fetched.get(tp, []):
                    self._restore_record(states, record.value, record.headers)
        finally:
            await consumer.stop()
        return states

    def _restore_record(
        self,
        states: dict[StateKey, dict[str, Any]],
        value: bytes | None,
        headers: Any,
    ) -> None:
        try:
            message = decode(DRIFT_STATE, value, headers)
        except UndecodableMessage as error:
            log.error("an unreadable state record was skipped: %s", error.message)
            return
        states[(message.model, message.version)] = message.state
