"""Which partition a keyed record lands on, for many keys at once.

Kafka's default partitioner (the Java client's, and aiokafka's) takes murmur2 of the
key, clears the sign bit and reduces it modulo the partition count. aiokafka computes
murmur2 in pure Python, about 2 µs a key; here the same arithmetic runs on numpy arrays,
one pass per key length, so a batch of keys costs little more than one key. The result
is identical for every key (tests compare the two on random keys).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

_SEED = np.uint32(0x9747B28C)
_M = np.uint32(0x5BD1E995)
_R = np.uint32(24)
_SIGN_BIT_CLEARED = np.uint32(0x7FFFFFFF)


def murmur2(keys: Sequence[bytes]) -> NDArray[np.uint32]:
    """Kafka's murmur2 hash of each key, as unsigned 32-bit integers."""
    hashes = np.empty(len(keys), dtype=np.uint32)
    by_length: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(index)
    for length, indices in by_length.items():
        data = np.frombuffer(b"".join(keys[i] for i in indices), dtype=np.uint8)
        hashes[indices] = _murmur2_same_length(data.reshape(len(indices), length), length)
    return hashes


def _murmur2_same_length(data: NDArray[np.uint8], length: int) -> NDArray[np.uint32]:
    words = length // 4
    h = np.full(data.shape[0], _SEED ^ np.uint32(length), dtype=np.uint32)
    if words:
        blocks = np.ascontiguousarray(data[:, : words * 4]).view("<u4")
        for column in range(words):
            k = blocks[:, column] * _M
            k ^= k >> _R
            k *= _M
            h *= _M
            h ^= k
    tail = data[:, words * 4 :].astype(np.uint32)
    extra = length % 4
    if extra >= 3:
        h ^= tail[:, 2] << np.uint32(16)
    if extra >= 2:
        h ^= tail[:, 1] << np.uint32(8)
    if extra >= 1:
        h ^= tail[:, 0]
        h *= _M
    h ^= h >> np.uint32(13)
    h *= _M
    h ^= h >> np.uint32(15)
    return h


def partitions_for_keys(keys: Sequence[bytes], partition_count: int) -> list[int]:
    """The partition index the default partitioner picks for each key."""
    if partition_count < 1:
        raise ValueError("a topic has at least one partition")
    if not keys:
        return []
    positive = murmur2(keys) & _SIGN_BIT_CLEARED
    result: list[int] = (positive % np.uint32(partition_count)).tolist()
    return result
