"""What serves each model now: fetched from the registry once, then kept current by events."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from services.inference.domain.bounded import BoundedLru
from services.inference.domain.metrics import OTHER_LABEL
from services.inference.domain.routing import RoutingConfig
from services.inference.service_layer.ports import ModelRecord, ModelSource, RegistryUnavailable
from services.inference.service_layer.single_flight import SingleFlight
from shared.contracts import DeploymentState, ModelEvent

log = logging.getLogger(__name__)

VersionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ModelState:
    """A model's task, serving options and deployment, as this worker routes by them."""

    name: str
    task: str
    routing: RoutingConfig
    deployment: DeploymentState

    @classmethod
    def of(cls, record: ModelRecord) -> ModelState:
        return cls(record.name, record.task, record.routing, record.deployment)

    def serving_versions(self) -> set[VersionKey]:
        """Every version a routed request may need: production, canary, shadow, cascade."""
        deployment = self.deployment
        versions = {deployment.production, deployment.canary, deployment.shadow}
        if self.routing.cascade is not None and deployment.production is not None:
            versions.add(self.routing.cascade.small_version)
        return {(self.name, version) for version in versions if version is not None}


class DeploymentCatalogue:
    """Model states by name, with a short, bounded memory of names the registry does not know."""

    def __init__(
        self,
        source: ModelSource,
        *,
        unknown_ttl_seconds: float,
        max_unknown: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._unknown_ttl = unknown_ttl_seconds
        self._clock = clock
        self._states: dict[str, ModelState] = {}
        self._unknown_until: BoundedLru[str, float] = BoundedLru(max_entries=max_unknown)
        self._fetches: SingleFlight[str, ModelRecord | None] = SingleFlight()

    def get(self, name: str) -> ModelState | None:
        return self._states.get(name)

    @property
    def models(self) -> dict[str, ModelState]:
        return dict(self._states)

    @property
    def unknown_names_remembered(self) -> int:
        return len(self._unknown_until)

    async def ensure(self, names: Iterable[str]) -> None:
        """Fetch the models this batch names that are neither known nor recently missing.

        Raises RegistryUnavailable when the registry cannot say, so the batch is retried
        rather than answered `unknown_model`.
        """
        now = self._clock()
        wanted = [
            name
            for name in set(names)
            if name not in self._states and (self._unknown_until.peek(name) or 0.0) <= now
        ]
        if wanted:
            await asyncio.gather(*(self._fetch(name) for name in wanted))

    async def refresh_all(self) -> set[VersionKey]:
        """Replace every state with the registry's; returns the versions worth preloading."""
        names = await self._source.list_models()
        records = await asyncio.gather(*(self._fetch(name, authoritative=True) for name in names))
        fetched = {record.name for record in records if record is not None}
        for name in set(self._states) - fetched:
            del self._states[name]
        return self.serving_versions()

    def serving_versions(self) -> set[VersionKey]:
        return {key for state in self._states.values() for key in state.serving_versions()}

    def metric_labels(self, model: str, version: int, status: str) -> tuple[str, str]:
        """A prediction's metric labels: a model this catalogue holds, a version it serves or
        that answered (so the registry has it); anything else a request named is `other`."""
        state = self._states.get(model)
        if state is None:
            return OTHER_LABEL, OTHER_LABEL
        if status == "ok" or (model, version) in state.serving_versions():
            return model, str(version)
        return model, OTHER_LABEL

    async def apply(self, event: ModelEvent) -> set[VersionKey]:
        """Apply a registry event; returns versions that now serve and should be preloaded."""
        name = event.model
        if event.event_type == "model.registered":
            self._unknown_until.pop(name)
            # A name registered again means a fresh registry: its revisions start over.
            self._states.pop(name, None)
            return set()
        state = self._states.get(name)
        if event.event_type == "deployment.changed" and event.deployment is not None:
            if state is None:
                # Not served here yet: the first request for it fetches everything.
                self._unknown_until.pop(name)
                return set()
            if _is_stale(event.deployment, held=state.deployment):
                # A replay, or a state a refetch already brought: applying it would undo
                # a later change.
                log.info(
                    "ignoring a deployment event no newer than the state held",
                    extra={
                        "model": name,
                        "event_revision": event.deployment.revision,
                        "held_revision": state.deployment.revision,
                    },
                )
                return set()
            updated = replace(state, deployment=event.deployment)
            self._states[name] = updated
            log.info(
                "deployment changed",
                extra={"model": name, "deployment": event.deployment.model_dump()},
            )
            return updated.serving_versions()
        if event.event_type == "model.updated" and state is not None:
            try:
                record = await self._fetch(name)
            except RegistryUnavailable:
                log.warning(
                    "could not refetch an updated model; refetching on next use",
                    extra={"model": name},
                )
                self._states.pop(name, None)
                return set()
            refreshed = self._states.get(name)
            return refreshed.serving_versions() if record and refreshed else set()
        return set()

    async def _fetch(self, name: str, *, authoritative: bool = False) -> ModelRecord | None:
        """The registry's record of a model; unless `authoritative` (a full resync, when no
        event is applied meanwhile), a newer deployment an event brought is kept."""
        record = await self._fetches.run(name, self._source.fetch_model(name))
        if record is None:
            self._states.pop(name, None)
            self._unknown_until.put(name, self._clock() + self._unknown_ttl)
        else:
            fetched = ModelState.of(record)
            held = self._states.get(name)
            if (
                not authoritative
                and held is not None
                and _is_stale(fetched.deployment, held=held.deployment)
            ):
                # An event overtook this fetch: keep the deployment it brought.
                fetched = replace(fetched, deployment=held.deployment)
            self._states[name] = fetched
            self._unknown_until.pop(name)
        return record


def _is_stale(candidate: DeploymentState, *, held: DeploymentState) -> bool:
    """Whether `candidate` is no later a revision than the state held; states without a
    revision (from a registry that has none) are never stale, as before revisions."""
    if candidate.revision is None or held.revision is None:
        return False
    return candidate.revision <= held.revision
