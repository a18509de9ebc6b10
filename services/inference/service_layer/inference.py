"""Serve a batch of prediction requests: route, validate, predict per version, answer each.

Transport-free: the Kafka worker calls it with decoded requests, and any other transport
(HTTP, tests) can call it the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from numpy.typing import NDArray

from services.inference.domain import batching
from services.inference.domain.answers import Answer, AnswerError, Output
from services.inference.domain.batching import Groups, Refusal
from services.inference.domain.metrics import WorkerMetrics
from services.inference.domain.result_cache import ResultCache
from services.inference.domain.routing import (
    CascadeConfig,
    Route,
    choose_route,
    small_answer_is_final,
)
from services.inference.domain.servable import PredictFailed, ServableModel
from services.inference.domain.shadow import outputs_agree
from services.inference.service_layer.catalogue import DeploymentCatalogue, VersionKey
from services.inference.service_layer.model_store import ModelStore
from shared.contracts import ErrorCode, PredictionRequest
from shared.contracts.base import FeatureValue, utc_now
from shared.contracts.predictions import Variant
from shared.signature import InputProblem

log = logging.getLogger(__name__)

CacheKey = tuple[str, int, bytes]
PLACEHOLDER_VERSION = 1
"""Prediction.version is required; an error that concerns no version (unknown model, no
deployment) reports the pinned version if any, else this."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One answer per request, in request order, plus shadow predictions (never delivered)."""

    answers: list[Answer]
    shadows: list[tuple[int, Answer]]


@dataclass(frozen=True, slots=True)
class _Plan:
    route: Route
    cascade: CascadeConfig | None
    shadow: int | None

    def versions(self, model: str) -> list[VersionKey]:
        needed = [(model, self.route.version)]
        if self.cascade is not None:
            needed.append((model, self.cascade.small_version))
        if self.shadow is not None:
            needed.append((model, self.shadow))
        return needed


class _Role(Enum):
    ANSWER = "answer"
    CASCADE = "cascade"
    SHADOW = "shadow"


@dataclass(slots=True)
class _Job:
    index: int
    role: _Role
    fallback: ServableModel | None = None
    cascade: CascadeConfig | None = None


class InferenceService:
    """Answers requests with the versions the catalogue routes them to."""

    def __init__(
        self,
        catalogue: DeploymentCatalogue,
        store: ModelStore,
        *,
        cache: ResultCache[CacheKey, Output],
        metrics: WorkerMetrics,
        range_tolerance: float,
        shadow_tolerance: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.catalogue = catalogue
        self.store = store
        self.cache = cache
        self.metrics = metrics
        self.range_tolerance = range_tolerance
        self.shadow_tolerance = shadow_tolerance
        self.clock = clock

    async def handle(self, requests: Sequence[PredictionRequest]) -> BatchResult:
        """Answer every request; bad ones get error predictions, the rest still succeed.

        Raises RegistryUnavailable when models cannot be looked up, so the caller retries.
        """
        if not requests:
            return BatchResult([], [])
        await self.catalogue.ensure(request.model for request in requests)
        plans = self._plans(requests)
        needed: set[VersionKey] = set()
        for request, plan in zip(requests, plans, strict=True):
            if isinstance(plan, _Plan):
                needed.update(plan.versions(request.model))
        await self.store.ensure(needed)
        result = _BatchRun(self, requests, plans).serve()
        self.store.trim()
        return result

    def _plans(self, requests: Sequence[PredictionRequest]) -> list[_Plan | Refusal]:
        """A plan per request; shared by requests whose route cannot depend on their key."""
        plans: list[_Plan | Refusal] = []
        shared: dict[tuple[str, int | None], _Plan | Refusal] = {}
        for request in requests:
            key = (request.model, request.version)
            plan = shared.get(key)
            if plan is None:
                plan = self._plan(request)
                state = self.catalogue.get(request.model)
                deployment = state.deployment if state is not None else None
                if (
                    request.version is not None
                    or deployment is None
                    or not (deployment.canary is not None and deployment.canary_weight > 0.0)
                ):
                    shared[key] = plan
            plans.append(plan)
        return plans

    def _plan(self, request: PredictionRequest) -> _Plan | Refusal:
        state = self.catalogue.get(request.model)
        if state is None:
            return batching.unknown_model(request.model)
        route = choose_route(
            model=request.model,
            pinned=request.version,
            routing_key=request.partition_key,
            deployment=state.deployment,
        )
        if route is None:
            return batching.no_deployment(request.model)
        cascade = state.routing.cascade_for(route) if state.task == "classification" else None
        return _Plan(route, cascade, state.deployment.shadow)


class _BatchRun:
    """The work of one batch: jobs grouped per version, one predict call per group."""

    def __init__(
        self,
        service: InferenceService,
        requests: Sequence[PredictionRequest],
        plans: list[_Plan | Refusal],
    ) -> None:
        self.service = service
        self.requests = requests
        self.plans = plans
        count = len(requests)
        self.outputs: list[Output | None] = [None] * count
        self.answered_by: list[int] = [0] * count
        self.refusals: list[Refusal | None] = [None] * count
        self.shadow_results: list[tuple[int, int, Output | Refusal]] = []
        self.groups: Groups[VersionKey, _Job] = Groups()
        self.models: dict[VersionKey, ServableModel] = {}
        self.small_keys: list[VersionKey] = []
        self.cache = service.cache
        self.checked: dict[VersionKey, dict[int, list[InputProblem]]] = {}
        self.indices_by_model: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            self.indices_by_model.setdefault(request.model, []).append(index)

    def serve(self) -> BatchResult:
        store = self.service.store
        for index, (request, plan) in enumerate(zip(self.requests, self.plans, strict=True)):
            if isinstance(plan, Refusal):
                self.refusals[index] = plan
                continue
            answering = store.get(request.model, plan.route.version)
            if isinstance(answering, Refusal):
                if answering.code == ErrorCode.UNKNOWN_VERSION and not plan.route.pinned:
                    # The caller chose no version: a deployed version that is gone is ours.
                    answering = batching.model_failure(
                        request.model, plan.route.version, "the deployed version is missing"
                    )
                self.refusals[index] = answering
                continue
            if plan.route.pinned and store.is_rejected(request.model, plan.route.version):
                self.refusals[index] = batching.version_rejected(request.model, answering.version)
                continue
            problems = self._problems(answering, index)
            if problems:
                self.refusals[index] = batching.invalid_input(
                    request.model, answering.version, problems
                )
                continue
            small = self._cascade_model(request, plan, index)
            if small is not None:
                job = _Job(index, _Role.CASCADE, fallback=answering, cascade=plan.cascade)
                self._submit(small, job)
            else:
                self._submit(answering, _Job(index, _Role.ANSWER))
            if plan.shadow is not None:
                self._submit_shadow(request, index, plan.shadow)
        self._predict(self.groups.pop(self.small_keys))
        while len(self.groups):
            self._predict(self.groups.pop())
        return self._build()

    def _problems(self, model: ServableModel, index: int) -> list[InputProblem]:
        """The request's problems with this version, checked for the whole batch at once."""
        key = (model.model, model.version)
        checked = self.checked.get(key)
        if checked is None:
            indices = self.indices_by_model.get(model.model, [])
            found = model.validator.problems(
                [self.requests[i].inputs for i in indices],
                range_tolerance=self.service.range_tolerance,
            )
            checked = self.checked[key] = dict(zip(indices, found, strict=True))
        problems = checked.get(index)
        if problems is None:  # not a request for this model: cannot happen, but stay exact
            return model.signature.check(
                self.requests[index].inputs, range_tolerance=self.service.range_tolerance
            )
        return problems

    def _cascade_model(
        self, request: PredictionRequest, plan: _Plan, index: int
    ) -> ServableModel | None:
        """The small model, if it can answer this request; else the big one answers alone."""
        if plan.cascade is None:
            return None
        small = self.service.store.get(request.model, plan.cascade.small_version)
        if isinstance(small, Refusal) or not small.has_probabilities:
            return None
        if self.service.store.is_rejected(small.model, small.version):
            return None
        if self._problems(small, index):
            return None
        key = (small.model, small.version)
        if key not in self.small_keys:
            self.small_keys.append(key)
        return small

    def _submit_shadow(self, request: PredictionRequest, index: int, version: int) -> None:
        shadow = self.service.store.get(request.model, version)
        if isinstance(shadow, Refusal):
            self.shadow_results.append((index, version, shadow))
            return
        problems = self._problems(shadow, index)
        if problems:
            refusal = batching.invalid_input(request.model, version, problems)
            self.shadow_results.append((index, version, refusal))
            return
        self._submit(shadow, _Job(index, _Role.SHADOW))

    def _submit(self, model: ServableModel, job: _Job) -> None:
        key = (model.model, model.version)
        self.models[key] = model
        self.groups.add(key, job)

    def _predict(self, groups: list[tuple[VersionKey, list[_Job]]]) -> None:
        """One predict call per version for the jobs the result cache cannot answer."""
        for key, jobs in groups:
            model = self.models[key]
            try:
                inputs = [self.requests[job.index].inputs for job in jobs]
                matrix = model.matrix(inputs)
                cache_keys: list[CacheKey] | None = None
                if self.cache.enabled:
                    jobs, cache_keys, matrix = self._answer_from_cache(model, jobs, inputs, matrix)
                outputs = model.predict_matrix(matrix) if jobs else []
            except PredictFailed as error:
                log.error(
                    "prediction failed",
                    extra={"model": key[0], "version": key[1], "error": str(error)},
                )
                for job in jobs:
                    self._fail(model, job, str(error))
                continue
            if cache_keys is not None:
                for cache_key, output in zip(cache_keys, outputs, strict=True):
                    self.cache.put(cache_key, output)
            for job, output in zip(jobs, outputs, strict=True):
                self._resolve(model, job, output)

    def _answer_from_cache(
        self,
        model: ServableModel,
        jobs: list[_Job],
        inputs: Sequence[Mapping[str, FeatureValue]],
        matrix: NDArray[Any],
    ) -> tuple[list[_Job], list[CacheKey], NDArray[Any]]:
        """Resolve the jobs the cache answers; the rest, their keys and their matrix rows."""
        name, version = model.model, model.version
        missed_jobs: list[_Job] = []
        missed_keys: list[CacheKey] = []
        missed_rows: list[int] = []
        for row, (job, row_key) in enumerate(
            zip(jobs, model.row_keys(inputs, matrix), strict=True)
        ):
            cache_key = (name, version, row_key)
            cached = self.cache.get(cache_key)
            if cached is None:
                missed_jobs.append(job)
                missed_keys.append(cache_key)
                missed_rows.append(row)
            else:
                self._resolve(model, job, cached)
        if len(missed_rows) < len(jobs):
            matrix = matrix[missed_rows]
        return missed_jobs, missed_keys, matrix

    def _resolve(self, model: ServableModel, job: _Job, output: Output) -> None:
        if job.role is _Role.ANSWER:
            self.outputs[job.index] = output
            self.answered_by[job.index] = model.version
        elif job.role is _Role.CASCADE:
            assert job.cascade is not None and job.fallback is not None
            if small_answer_is_final(output, job.cascade):
                self.outputs[job.index] = output
                self.answered_by[job.index] = model.version
                self.service.metrics.cascade_answers[(model.model, "small")] += 1
            else:
                self.service.metrics.cascade_answers[(model.model, "big")] += 1
                self._submit(job.fallback, _Job(job.index, _Role.ANSWER))
        else:
            self.shadow_results.append((job.index, model.version, output))

    def _fail(self, model: ServableModel, job: _Job, detail: str) -> None:
        refusal = batching.model_failure(model.model, model.version, detail)
        if job.role is _Role.ANSWER:
            self.refusals[job.index] = refusal
        elif job.role is _Role.CASCADE:
            assert job.fallback is not None
            self.service.metrics.cascade_answers[(model.model, "big")] += 1
            self._submit(job.fallback, _Job(job.index, _Role.ANSWER))
        else:
            self.shadow_results.append((job.index, model.version, refusal))

    def _build(self) -> BatchResult:
        now = self.service.clock()
        metrics = self.service.metrics
        latencies = self._latencies(now)
        answers: list[Answer] = []
        for index, request in enumerate(self.requests):
            plan = self.plans[index]
            variant: Variant = plan.route.variant if isinstance(plan, _Plan) else "production"
            refusal = self.refusals[index]
            output = self.outputs[index]
            if refusal is None and output is None:  # a bug, but the caller still hears back
                version = plan.route.version if isinstance(plan, _Plan) else PLACEHOLDER_VERSION
                refusal = batching.model_failure(request.model, version, "no answer was produced")
            latency_ms = latencies[index] * 1000.0
            if refusal is not None:
                answer = _error(request, refusal, variant, latency_ms, now)
                metrics.count_error(refusal.code)
            else:
                answer = _answer(request, self.answered_by[index], variant, output, latency_ms, now)
            metrics.count_prediction(answer.model, answer.version, variant, answer.status)
            answers.append(answer)
        metrics.latency_seconds.observe_many(latencies)
        return BatchResult(answers, self._shadows(answers, latencies, now))

    def _latencies(self, now: datetime) -> list[float]:
        """Seconds from each request's creation to now (never negative: clocks differ)."""
        now_seconds = now.timestamp()
        return [max(0.0, now_seconds - request.created_at.timestamp()) for request in self.requests]

    def _shadows(
        self, answers: list[Answer], latencies: list[float], now: datetime
    ) -> list[tuple[int, Answer]]:
        metrics = self.service.metrics
        shadows: list[tuple[int, Answer]] = []
        for index, version, result in self.shadow_results:
            request = self.requests[index]
            latency_ms = latencies[index] * 1000.0
            if isinstance(result, Refusal):
                shadow = _error(request, result, "shadow", latency_ms, now)
            else:
                shadow = _answer(request, version, "shadow", result, latency_ms, now)
                self._compare(index, answers[index], result)
            metrics.count_prediction(request.model, version, "shadow", shadow.status)
            shadows.append((index, shadow))
        return shadows

    def _compare(self, index: int, answer: Answer, shadow_output: Output) -> None:
        """Count agreement only against answers production gave on its own routing."""
        plan = self.plans[index]
        if (
            answer.output is None
            or not isinstance(plan, _Plan)
            or plan.route.pinned
            or plan.route.variant != "production"
        ):
            return
        agreed = outputs_agree(
            answer.output, shadow_output, tolerance=self.service.shadow_tolerance
        )
        self.service.metrics.shadow.record(answer.model, agreed=agreed)


def _answer(
    request: PredictionRequest,
    version: int,
    variant: Variant,
    output: Output | None,
    latency_ms: float,
    now: datetime,
    error: AnswerError | None = None,
) -> Answer:
    return Answer(
        request_id=request.request_id,
        model=request.model,
        version=version,
        variant=variant,
        output=output,
        error=error,
        latency_ms=latency_ms,
        routing_key=request.routing_key,
        callback_url=request.callback_url,
        created_at=now,
    )


def _error(
    request: PredictionRequest, refusal: Refusal, variant: Variant, latency_ms: float, now: datetime
) -> Answer:
    version = refusal.version or request.version or PLACEHOLDER_VERSION
    error = AnswerError(refusal.code, refusal.message)
    return _answer(request, version, variant, None, latency_ms, now, error)
