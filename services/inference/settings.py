"""Inference worker settings: where models come from, how batches are cut, how outputs commit."""

from __future__ import annotations

import os
import socket
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from shared.settings import ModelbusSettings

DeliveryMode = Literal["at-least-once", "exactly-once"]
MIN_KEY_LENGTH = 16


class InferenceSettings(ModelbusSettings):
    """`MODELBUS_*` settings of the inference workers."""

    registry_url: str = "http://127.0.0.1:8000"
    """Base URL of the model registry the workers load signatures and artifacts from."""

    registry_api_key: SecretStr
    """Registry API key; the reader role is enough and is all a worker should hold."""

    registry_timeout_seconds: float = Field(default=10.0, gt=0)
    """Timeout of one registry call; a slow registry delays a batch rather than failing it."""

    callback_seal_key: SecretStr | None = Field(default=None, min_length=32)
    """Key (32+ characters, shared with the delivery service) sealing each callback copied
    from a served request, so delivery can tell it from one forged on `predictions`.
    Unset: callbacks go unsealed, and delivery sends webhooks only for gateway jobs."""

    consumer_group: str = Field(default="modelbus-inference", min_length=1)
    """Kafka consumer group every worker copy joins; partitions of `requests` spread over it."""

    max_batch_records: int = Field(default=2000, ge=1, le=10_000)
    """Most records one micro-batch takes from `requests` (one getmany call). Under load,
    bigger batches mean fewer, larger produce requests (the producer has one request in
    flight per broker); at low rates a batch holds whatever has arrived, so latency is
    not affected."""

    batch_timeout_ms: int = Field(default=20, ge=0, le=10_000)
    """How long getmany waits for records; short, so a lone request is not held back."""

    delivery_mode: DeliveryMode = "at-least-once"
    """`at-least-once` commits offsets after outputs are acknowledged (a crash may duplicate);
    `exactly-once` writes outputs and offsets in one Kafka transaction."""

    transactional_id_prefix: str = "modelbus-inference-"
    """Prefix of the transactional id in exactly-once mode; the instance id completes it."""

    instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,128}$")
    """Stable id of this worker copy (e.g. a StatefulSet pod name). With a stable id, a
    restarted copy fences and aborts its predecessor's open transaction at once; the default
    (host and pid) is unique but not stable, so such a transaction lingers until it times out."""

    transaction_timeout_ms: int = Field(default=15_000, ge=1_000, le=900_000)
    """Broker-side timeout of a transaction left open by a crashed worker (exactly-once)."""

    session_timeout_ms: int = Field(default=10_000, ge=1_000, le=300_000)
    """Consumer group session timeout: how soon the partitions of a dead worker move on."""

    result_cache_size: int = Field(default=10_000, ge=0)
    """Entries in the LRU cache of results for repeated inputs; 0 turns the cache off."""

    range_tolerance: float = Field(default=0.1, ge=0.0)
    """Numeric inputs may lie this fraction of the training range outside it before they are
    refused as out of range; training data rarely covers every legitimate value."""

    shadow_tolerance: float = Field(default=0.05, ge=0.0)
    """Relative difference under which a shadow regressor's value agrees with production."""

    unknown_model_ttl_seconds: float = Field(default=5.0, ge=0.0)
    """How long an unknown model name is remembered before the registry is asked again."""

    failed_load_ttl_seconds: float = Field(default=30.0, ge=0.0)
    """How long a version that failed to load (bad hash, unsafe file) is not retried."""

    max_loaded_versions: int = Field(default=16, ge=1, le=10_000)
    """Most model versions kept loaded. Versions that serve (production, canary, shadow,
    cascade) are never evicted; versions only pinned by requests are, least recently used
    first. A batch may hold more until it is answered."""

    max_loaded_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    """Most artifact bytes of loaded versions (the size of the files they were loaded
    from, a proxy of their memory); evicted like `max_loaded_versions`."""

    max_remembered_failures: int = Field(default=10_000, ge=1, le=10_000_000)
    """Most versions that failed to load and model names found unknown kept in memory
    (each for its TTL); the oldest are forgotten first, so random names cannot grow it."""

    linger_ms: int = Field(default=2, ge=0, le=1_000)
    """Producer linger: a little batching of outputs without hurting latency."""

    producer_max_batch_bytes: int = Field(default=256 * 1024, ge=16 * 1024)
    """Largest producer batch per partition; big enough for a whole micro-batch of outputs."""

    worker_host: str = "127.0.0.1"
    """Interface of the health and metrics HTTP endpoint."""

    worker_port: int = Field(default=8010, ge=0, le=65535)
    """Port of /healthz, /readyz and /metrics; 0 picks a free port (several copies per host)."""

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.environment == "production":
            if len(self.registry_api_key.get_secret_value()) < MIN_KEY_LENGTH:
                raise ValueError("MODELBUS_REGISTRY_API_KEY looks like a placeholder")
            if self.callback_seal_key is None:
                raise ValueError(
                    "production needs MODELBUS_CALLBACK_SEAL_KEY (shared with delivery), or "
                    "callbacks of requests published straight to Kafka are never delivered"
                )
            if self.delivery_mode == "exactly-once" and self.instance_id is None:
                raise ValueError(
                    "exactly-once in production needs MODELBUS_INSTANCE_ID, a stable id per "
                    "worker copy, so a restarted copy fences its predecessor's transaction"
                )
        return self

    @property
    def worker_instance(self) -> str:
        """This copy's id: the configured one, else host and pid (unique, not stable)."""
        return self.instance_id or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def transactional_id(self) -> str:
        return f"{self.transactional_id_prefix}{self.worker_instance}"
