"""Every model version's latest drift state, for the status API and the report.

The judge that owns a model may be another process; this view follows the whole
`drift-state` changelog (committed records only), so any replica answers for any model.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.contracts import DriftStateRecord
from shared.kafka.admin import partition_count
from shared.kafka.codec import UndecodableMessage, decode
from shared.kafka.security import KafkaSecurity
from shared.topics import DRIFT_STATE

log = logging.getLogger(__name__)


class StateView:
    def __init__(self, *, bootstrap: str, topic: str, security: KafkaSecurity) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._security = security
        self._latest: dict[tuple[str, int], DriftStateRecord] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self.caught_up = asyncio.Event()

    def latest(self) -> dict[tuple[str, int], DriftStateRecord]:
        return dict(self._latest)

    def get(self, model: str, version: int) -> DriftStateRecord | None:
        return self._latest.get((model, version))

    async def follow(self) -> None:
        """Read the changelog from its beginning, then keep up with it until cancelled."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
            **self._security.client_options(),
        )
        await consumer.start()
        self._consumer = consumer
        try:
            partitions = await self._partitions()
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while True:
                fetched = await consumer.getmany(timeout_ms=1000, max_records=1000)
                for records in fetched.values():
                    for record in records:
                        self._apply(record.value, record.headers)
                if not self.caught_up.is_set():
                    positions = [await consumer.position(tp) for tp in partitions]
                    if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                        self.caught_up.set()
        finally:
            await consumer.stop()

    async def _partitions(self) -> list[TopicPartition]:
        count = await partition_count(self._bootstrap, self._topic, security=self._security)
        if not count:
            raise RuntimeError(f"topic {self._topic} does not exist; were the topics created?")
        return [TopicPartition(self._topic, partition) for partition in range(count)]

    def _apply(self, value: bytes | None, headers: Any) -> None:
        try:
            message = decode(DRIFT_STATE, value, headers)
        except UndecodableMessage as error:
            log.error("an unreadable state record was skipped: %s", error.message)
            return
        self._latest[(message.model, message.version)] = message
