"""Drift settings: where references come from, how hard alerts are to raise and to clear."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, SecretStr

from shared.settings import ModelbusSettings


class DriftSettings(ModelbusSettings):
    """`MODELBUS_*` settings of the drift analysis service."""

    registry_url: str = "http://127.0.0.1:8000"
    """The registry: reference profiles, deployments and offline metrics of each version."""

    registry_api_key: SecretStr | None = None
    """Key (reader role or above) the service reads profiles with; also checks API callers."""

    registry_timeout_seconds: float = Field(default=10.0, gt=0)
    """Deadline of one registry request."""

    reference_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    """How long a model's deployment is reused before the registry is asked again (a
    promotion reaches the drift service within this time). Profiles never change."""

    instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,128}$")
    """Stable id of this copy (e.g. a StatefulSet pod name). Both loops write in Kafka
    transactions; with a stable id a restarted copy fences its predecessor's open
    transaction at once, without it that transaction lingers until it times out."""

    transactional_id_prefix: str = "modelbus-drift-"
    """Prefix of the loops' transactional ids; the loop's role and the instance complete it."""

    sketch_group: str = Field(default="modelbus-drift-sketch", min_length=1)
    """Consumer group of the sketcher (requests, predictions, labels)."""

    judge_group: str = Field(default="modelbus-drift-judge", min_length=1)
    """Consumer group of the judge (drift-sketches)."""

    consumer_offset_reset: Literal["earliest", "latest"] = "latest"
    """Where a new sketcher group starts reading the streams: drift is about now."""

    sketch_max_records: int = Field(default=5000, ge=1, le=50_000)
    """Most stream records summarised in one batch."""

    session_timeout_ms: int = Field(default=10_000, ge=1_000, le=300_000)
    """How long a group waits for a silent member before its partitions move."""

    false_alarms_per_million: float = Field(default=0.5, gt=0, le=1000)
    """Target false alerts per million feature-events on a stream that did not change:
    the sequential detectors' thresholds follow from it."""

    design_shift_sd: float = Field(default=0.5, gt=0, le=5)
    """The mean shift, in reference standard deviations, the detectors are tuned to catch
    fastest; larger shifts are caught faster still, smaller ones later."""

    window_events: int = Field(default=500, ge=50, le=1_000_000)
    """Events per window of the windowed tests (PSI, KS, Wasserstein, chi-square)."""

    quiet_events: int = Field(default=1000, ge=1, le=10_000_000)
    """Events in a row with every detector under its lower threshold before an episode
    resolves (hysteresis against the interleaving of partitions around a change)."""

    cooldown_seconds: float = Field(default=600.0, ge=0)
    """Event time after a resolution during which the same subject cannot alert again."""

    drift_health_host: str = "127.0.0.1"
    """Interface of the health, metrics, status and report server."""

    drift_health_port: int | None = Field(default=8006, ge=0, le=65535)
    """Port of the health, metrics, status and report server; 0 picks a free one."""

    auth_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    """How long an API key's verdict from the registry is reused."""

    @property
    def instance(self) -> str:
        """This copy's id: the configured one, else host and pid (unique, not stable)."""
        return self.instance_id or f"{socket.gethostname()}-{os.getpid()}"
