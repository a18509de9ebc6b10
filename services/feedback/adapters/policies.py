"""Each model's feedback policy, read from the registry and remembered for a while."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import httpx
from pydantic import ValidationError

from shared.expiring_cache import ExpiringCache
from shared.feedback_policy import FeedbackPolicy

log = logging.getLogger(__name__)


class RegistryUnavailable(RuntimeError):
    """The registry did not answer; the batch is retried until it does."""


class RegistryPolicies:
    """`GET /v1/models/{name}`'s `feedback` field; the default policy when it has none.

    Called from the store's thread, hence a synchronous client and a lock.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: ExpiringCache[str, FeedbackPolicy] = ExpiringCache(max_entries=10_000)
        self._lock = threading.Lock()

    def policy_for(self, model: str) -> FeedbackPolicy:
        with self._lock:
            cached = self._cache.get(model, self._clock())
        if cached is not None:
            return cached
        policy = self._fetch(model)
        with self._lock:
            self._cache.put(model, policy, now=self._clock(), ttl=self._ttl)
        return policy

    def _fetch(self, model: str) -> FeedbackPolicy:
        try:
            response = self._http.get(f"/v1/models/{model}")
        except httpx.HTTPError as error:
            raise RegistryUnavailable(f"the registry did not answer: {error!r}") from None
        if response.status_code == 404:
            return FeedbackPolicy()  # predictions of a model since deleted: defaults
        if response.is_error:
            raise RegistryUnavailable(f"the registry answered {response.status_code}")
        stored = response.json().get("feedback")
        if stored is None:
            return FeedbackPolicy()
        try:
            return FeedbackPolicy.model_validate(stored)
        except ValidationError:
            log.error("model %s has an unreadable feedback policy; using the default", model)
            return FeedbackPolicy()
