"""Loaded model versions, fetched from the registry once and kept while memory allows.

What serves (production, canary, shadow, cascade) stays loaded; versions only pinned by
requests are evicted least recently used first, by count and by artifact bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from services.inference.domain import batching
from services.inference.domain.batching import Refusal
from services.inference.domain.bounded import BoundedLru
from services.inference.domain.servable import ServableModel
from services.inference.service_layer.ports import (
    ModelLoadFailed,
    ModelSource,
    RegistryUnavailable,
    VersionNotFound,
)
from services.inference.service_layer.single_flight import SingleFlight

log = logging.getLogger(__name__)

VersionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """Why a version cannot serve, remembered until `retry_at` so the registry is not hammered."""

    refusal: Refusal
    retry_at: float


class ModelStore:
    """Servable versions by (model, version); loads run in threads, one per version at a time."""

    def __init__(
        self,
        source: ModelSource,
        *,
        failure_ttl_seconds: float,
        max_versions: int,
        max_bytes: int,
        max_failures: int,
        serving: Callable[[], Collection[VersionKey]] = frozenset,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._failure_ttl = failure_ttl_seconds
        self._serving = serving
        self._clock = clock
        self._loaded: BoundedLru[VersionKey, ServableModel] = BoundedLru(
            max_entries=max_versions, max_weight=max_bytes, weigh=_artifact_bytes
        )
        self._failed: BoundedLru[VersionKey, LoadFailure] = BoundedLru(max_entries=max_failures)
        self._loads: SingleFlight[VersionKey, None] = SingleFlight()
        self._verdicts: dict[VersionKey, bool] = {}

    def get(self, model: str, version: int) -> ServableModel | Refusal:
        """The loaded version, or why it cannot serve (call `ensure` first)."""
        key = (model, version)
        loaded = self._loaded.get(key)
        if loaded is not None:
            return loaded
        failure = self._failed.peek(key)
        if failure is not None:
            return failure.refusal
        return batching.model_failure(model, version, "the version was not loaded")

    @property
    def loaded_versions(self) -> list[VersionKey]:
        return sorted(self._loaded)

    @property
    def loaded_bytes(self) -> int:
        """Artifact bytes of the loaded versions: the measure of their memory we have."""
        return self._loaded.weight

    @property
    def remembered_failures(self) -> int:
        return len(self._failed)

    def trim(self) -> None:
        """Evict least recently used versions that do not serve, down to the bounds.

        Called between batches: a batch may pin more versions than the bounds allow, and
        keeps them all until it is answered.
        """
        for model, version in self._loaded.evict(keep=self._serving()):
            log.info("model version evicted", extra={"model": model, "version": version})

    async def ensure(self, keys: Iterable[VersionKey]) -> None:
        """Load every version not yet loaded (or whose failure has expired), concurrently.

        Raises RegistryUnavailable if any load could not reach the registry; the others
        still complete.
        """
        now = self._clock()
        missing = [key for key in set(keys) if key not in self._loaded and self._due(key, now)]
        if not missing:
            return
        outcomes = await asyncio.gather(
            *(self._loads.run(key, self._load(key)) for key in missing), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    def _due(self, key: VersionKey, now: float) -> bool:
        failure = self._failed.peek(key)
        return failure is None or failure.retry_at <= now

    def is_rejected(self, model: str, version: int) -> bool:
        """Whether an approver rejected the version: from its events, else from its load."""
        key = (model, version)
        verdict = self._verdicts.get(key)
        if verdict is not None:
            return verdict
        loaded = self._loaded.peek(key)
        return loaded is not None and loaded.rejected

    def record_verdict(self, model: str, version: int, *, rejected: bool) -> None:
        """An approver's decision arrived as an event; it overrides the status seen at load."""
        self._verdicts[(model, version)] = rejected

    def forget_failure(self, model: str, version: int) -> None:
        """A version was registered: stop answering `unknown_version` for it."""
        self._failed.pop((model, version))

    async def preload(self, keys: Iterable[VersionKey]) -> None:
        """Load ahead of traffic; a registry outage only delays it to the first request."""
        try:
            await self.ensure(keys)
        except RegistryUnavailable as error:
            log.warning(
                "preloading models failed; they load on first use", extra={"error": str(error)}
            )

    async def _load(self, key: VersionKey) -> None:
        model, version = key
        started = time.perf_counter()
        try:
            servable = await self._source.load_version(model, version)
        except VersionNotFound:
            self._remember(key, batching.unknown_version(model, version))
            return
        except ModelLoadFailed as error:
            log.error(
                "model version cannot be served",
                extra={"model": model, "version": version, "error": str(error)},
            )
            self._remember(key, batching.model_failure(model, version, str(error)))
            return
        # Evicted only by `trim`, between batches: the batch loading it still needs it.
        self._loaded.put(key, servable, evict=False)
        self._failed.pop(key)
        log.info(
            "model version loaded",
            extra={
                "model": model,
                "version": version,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )

    def _remember(self, key: VersionKey, refusal: Refusal) -> None:
        self._failed.put(key, LoadFailure(refusal, self._clock() + self._failure_ttl))


def _artifact_bytes(servable: ServableModel) -> int:
    return servable.artifact_bytes
