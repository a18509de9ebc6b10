"""Batch partitioning agrees with Kafka's default partitioner key for key."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2

from shared.kafka.partitioning import murmur2 as batch_murmur2
from shared.kafka.partitioning import partitions_for_keys


def random_keys(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 40)) for _ in range(count)]


def test_hash_matches_the_reference_for_every_length_and_byte() -> None:
    keys = [*random_keys(1, 3000), b"", b"\xff" * 7, b"\x00" * 9, b"req-1", "clé-ü".encode()]
    assert batch_murmur2(keys).tolist() == [murmur2(key) for key in keys]


def test_known_value_from_the_java_client() -> None:
    # org.apache.kafka.common.utils.UtilsTest: murmur2("21") == -973932308
    assert int(batch_murmur2([b"21"])[0]) == -973932308 & 0xFFFFFFFF


@pytest.mark.parametrize("count", [1, 3, 8, 12, 100])
def test_partitions_match_the_default_partitioner(count: int) -> None:
    keys = random_keys(count, 2000)
    every = list(range(count))
    expected = [DefaultPartitioner()(key, every, every) for key in keys]
    assert partitions_for_keys(keys, count) == expected


def test_no_keys_and_no_partitions() -> None:
    assert partitions_for_keys([], 8) == []
    with pytest.raises(ValueError, match="at least one partition"):
        partitions_for_keys([b"k"], 0)
