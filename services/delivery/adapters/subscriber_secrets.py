"""Subscribers' webhook secrets from the job store, cached briefly per subscriber.

A rotation reaches the signer within the cache lifetime; the overlap the registry grants
(a day by default) is far longer, so receivers never see a webhook only the old secret or
only a secret they do not have yet can verify.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shared.contracts.base import utc_now
from shared.expiring_cache import ExpiringCache
from shared.jobstore.webhook_secrets import SubscriberSecrets, WebhookSecretStore
from shared.store_thread import RunInThread

MAX_SUBSCRIBERS = 100_000


class CachedSubscriberSecrets:
    """`secrets_for(owner)`: the secrets that sign `owner`'s webhooks now, [] for none."""

    def __init__(
        self,
        store: WebhookSecretStore,
        *,
        ttl_seconds: float,
        run: RunInThread,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._run = run
        self._clock = clock
        # A 1-tuple, so "this subscriber has no secret" is cached too, unlike a miss.
        self._cached: ExpiringCache[str, tuple[SubscriberSecrets | None]] = ExpiringCache(
            max_entries=MAX_SUBSCRIBERS
        )
        self.lookups = 0

    async def secrets_for(self, owner: str | None) -> list[str]:
        if owner is None:
            return []
        now = self._clock()
        cached = self._cached.get(owner, now)
        if cached is None:
            self.lookups += 1
            found = await self._run(self._store.secrets_of, [owner])
            cached = (found.get(owner),)
            self._cached.put(owner, cached, now=now, ttl=self._ttl)
        (secrets,) = cached
        return secrets.valid_at(utc_now()) if secrets is not None else []
