"""Create the platform's topics with explicit partitions and retention."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.kafka.security import PLAINTEXT, KafkaSecurity
from shared.topics import ALL_TOPICS, TopicSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicOutcome:
    """What `ensure_topics` did to one topic."""

    name: str
    action: str  # "created", "grown" or "unchanged"
    partitions: int


def _topic_configs(spec: TopicSpec[Any]) -> dict[str, str]:
    return {"retention.ms": str(spec.retention_ms), "cleanup.policy": spec.cleanup_policy}


async def ensure_topics(
    bootstrap: str,
    *,
    prefix: str = "",
    specs: Iterable[TopicSpec[Any]] = ALL_TOPICS,
    replication_factor: int = 1,
    partitions_override: int | None = None,
    security: KafkaSecurity = PLAINTEXT,
) -> list[TopicOutcome]:
    """Create missing topics and grow partition counts; never shrinks or deletes anything."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="modelbus-admin", **security.client_options()
    )
    await admin.start()
    try:
        wanted = {
            prefix + spec.name: (spec, partitions_override or spec.partitions) for spec in specs
        }
        existing = await _partition_counts(admin, list(wanted))
        outcomes: list[TopicOutcome] = []
        to_create = [
            NewTopic(
                name=name,
                num_partitions=count,
                replication_factor=replication_factor,
                topic_configs=_topic_configs(spec),
            )
            for name, (spec, count) in wanted.items()
            if name not in existing
        ]
        if to_create:
            try:
                await admin.create_topics(to_create)
            except TopicAlreadyExistsError:
                log.info("topics appeared concurrently; continuing")
            outcomes += [TopicOutcome(t.name, "created", t.num_partitions) for t in to_create]
        to_grow = {
            name: NewPartitions(total_count=count)
            for name, (_, count) in wanted.items()
            if name in existing and existing[name] < count
        }
        if to_grow:
            await admin.create_partitions(to_grow)
        for name, (_, count) in wanted.items():
            if name in to_grow:
                outcomes.append(TopicOutcome(name, "grown", count))
            elif name in existing:
                outcomes.append(TopicOutcome(name, "unchanged", existing[name]))
        return outcomes
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition count of each of `names` that exists."""
    present = set(await admin.list_topics()) & set(names)
    if not present:
        return {}
    described = await admin.describe_topics(sorted(present))
    return {topic["topic"]: len(topic["partitions"]) for topic in described}


async def partition_count(
    bootstrap: str, topic: str, *, security: KafkaSecurity = PLAINTEXT
) -> int | None:
    """How many partitions `topic` has; None if it does not exist."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="modelbus-admin", **security.client_options()
    )
    await admin.start()
    try:
        return (await _partition_counts(admin, [topic])).get(topic)
    finally:
        await admin.close()
