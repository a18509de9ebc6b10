"""What the use cases need from the outside world, as protocols the adapters fulfil."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from shared.contracts import DeploymentState, PredictionRequest, WireModel
from shared.jobstore.views import JobView
from shared.rate_limit import Decision
from shared.signature import InputSignature
from shared.topics import TopicSpec

T = TypeVar("T", bound=WireModel)


class ModelCatalog(Protocol):
    """Deployments and signatures, as the registry has them (cached)."""

    async def deployment(self, model: str) -> DeploymentState:
        """Raises UnknownModel, or Unavailable when the registry does not answer."""
        ...

    async def signature(self, model: str, version: int) -> InputSignature:
        """Raises UnknownVersion, or Unavailable when the registry does not answer."""
        ...


class JobRepository(Protocol):
    """The job-result store, seen from the gateway."""

    async def find(self, request_id: str) -> JobView | None: ...

    async def create_pending(
        self, request: PredictionRequest, owner: str
    ) -> tuple[JobView, bool]: ...

    async def discard_pending(self, request_id: str) -> None:
        """Undo `create_pending` when the request never reached Kafka."""
        ...


class RateLimits(Protocol):
    """Token buckets per API key hash, wherever they live."""

    rate: float
    burst: int

    async def check(self, key: str) -> Decision:
        """Take a token from `key`'s bucket."""
        ...


class MessagePublisher(Protocol):
    async def publish(self, spec: TopicSpec[T], message: T, *, key: str | None) -> Any: ...
