"""Deliver one claimed webhook, and publish dead-letter records for deliveries given up."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from opentelemetry import propagate, trace

from services.delivery.adapters.http_sender import WebhookSender
from services.delivery.adapters.metrics import DeliveryMetrics
from services.delivery.adapters.resolver import ResolutionFailed, Resolver
from services.delivery.adapters.signing import WebhookSigner, webhook_id_for
from services.delivery.domain.attempts import GONE, AttemptResult, NextStep, next_step
from services.delivery.domain.backoff import Backoff
from services.delivery.domain.callback_policy import (
    Allowlist,
    RefusedCallback,
    parse_callback_url,
    permitted_addresses,
)
from services.delivery.service_layer.ingest import SERVICE, DeadLetterSink
from services.delivery.service_layer.outcomes import OutcomeRecorder
from shared.contracts import DeadLetter
from shared.contracts.base import utc_now
from shared.jobstore.deliveries import AttemptRecord, DeadReason, DeliveryOutcome, DueDelivery
from shared.jobstore.store import JobStore
from shared.kafka.headers import current_trace_headers
from shared.store_thread import RunInThread

log = logging.getLogger(__name__)
tracer = trace.get_tracer("modelbus.delivery")
DEAD_LETTER_BATCH = 100


class SubscriberSecrets(Protocol):
    """The secrets signing a job owner's webhooks now; [] means the default secret."""

    async def secrets_for(self, owner: str | None) -> list[str]: ...


@dataclass(frozen=True)
class Attempted:
    """An attempt made (or refused before anything was sent), not yet recorded."""

    step: NextStep
    outcome: DeliveryOutcome
    result: AttemptResult | None
    """What the network said; None when the policy refused the callback."""


class WebhookDelivery:
    """One attempt per claimed job: check the callback, sign, send, record what happened."""

    def __init__(
        self,
        *,
        store: JobStore,
        sender: WebhookSender,
        resolver: Resolver,
        signer: WebhookSigner,
        subscriber_secrets: SubscriberSecrets,
        allowlist: Allowlist,
        backoff: Backoff,
        max_attempts: int,
        lease: timedelta,
        dead_letters: DeadLetterSink,
        source_topic: str,
        metrics: DeliveryMetrics,
        outcomes: OutcomeRecorder,
        run: RunInThread,
        random: Callable[[], float] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._outcomes = outcomes
        self._run = run
        self._sender = sender
        self._resolver = resolver
        self._signer = signer
        self._subscriber_secrets = subscriber_secrets
        self._allowlist = allowlist
        self._backoff = backoff
        self._max_attempts = max_attempts
        self._lease = lease
        self._dead_letters = dead_letters
        self._source_topic = source_topic
        self._metrics = metrics
        self._random = random or secrets.SystemRandom().random
        self._clock = clock

    async def deliver(self, due: DueDelivery) -> NextStep | None:
        """Make the next attempt and record it; the step recorded (None if the lease was lost)."""
        return await self.record(await self.attempt(due))

    async def attempt(self, due: DueDelivery) -> Attempted:
        """Check the callback, sign, POST, and decide what comes next; records nothing.

        Split from `record` so the caller can free its sending slot while the outcome waits
        for its transaction.
        """
        attempt = due.attempts_made + 1
        context = propagate.extract({"traceparent": due.traceparent} if due.traceparent else {})
        with tracer.start_as_current_span(
            "webhook POST",
            context=context,
            kind=trace.SpanKind.CLIENT,
            attributes={"modelbus.request_id": due.request_id, "modelbus.attempt": attempt},
        ) as span:
            started_at = self._clock()
            try:
                result = await self._attempt(due)
            except RefusedCallback as refusal:
                span.set_attribute("modelbus.refused", refusal.reason)
                return self._refused(due, refusal.reason)
            if result.status_code is not None:
                span.set_attribute("http.response.status_code", result.status_code)
        step = next_step(
            result,
            attempt=attempt,
            max_attempts=self._max_attempts,
            backoff=self._backoff,
            random=self._random,
        )
        now = self._clock()
        if step.state == "retrying":
            next_at: datetime | None = now + timedelta(seconds=step.retry_in_seconds or 0.0)
        elif step.state == "dead":
            next_at = now  # the dead-letter record is now due (see publish_dead_letters)
        else:
            next_at = None
        dead_reason: DeadReason = "gone" if result.status_code == GONE else "exhausted"
        outcome = DeliveryOutcome(
            request_id=due.request_id,
            attempts_made=due.attempts_made,
            attempt=AttemptRecord(
                attempt=attempt,
                status_code=result.status_code,
                error=result.error,
                duration_ms=round(result.duration_ms, 3),
                attempted_at=started_at,
            ),
            state=step.state,
            next_attempt_at=next_at,
            error=step.reason if step.state == "dead" else result.error,
            dead_reason=dead_reason if step.state == "dead" else None,
        )
        return Attempted(step=step, outcome=outcome, result=result)

    def _refused(self, due: DueDelivery, reason: str) -> Attempted:
        """A callback the policy refuses is final: nothing was sent, nothing will be."""
        message = f"callback refused: {reason}"
        outcome = DeliveryOutcome(
            request_id=due.request_id,
            attempts_made=due.attempts_made,
            attempt=None,
            state="dead",
            next_attempt_at=self._clock(),
            error=message,
            dead_reason="refused",
        )
        return Attempted(step=NextStep("dead", reason=message), outcome=outcome, result=None)

    async def _attempt(self, due: DueDelivery) -> AttemptResult:
        """Check the URL and its addresses, then POST; RefusedCallback if it may not be called."""
        target = parse_callback_url(due.callback_url)
        try:
            addresses = await self._resolver.resolve(target.host, target.port)
        except ResolutionFailed as error:
            return AttemptResult(status_code=None, error=str(error), duration_ms=0.0)
        permitted = permitted_addresses(target, addresses, self._allowlist)
        try:
            secrets = await self._subscriber_secrets.secrets_for(due.owner)
        except Exception as error:
            # Never the default secret instead: it would sign for the wrong subscriber.
            log.warning(
                "webhook secrets unavailable",
                extra={"request_id": due.request_id, "error": repr(error)},
            )
            return AttemptResult(
                status_code=None, error=f"webhook secrets unavailable: {error!r}", duration_ms=0.0
            )
        headers = self._signer.headers(
            webhook_id=webhook_id_for(due.request_id), body=due.body, secrets=secrets
        )
        headers.update(current_trace_headers())
        self._metrics.in_flight += 1
        try:
            result = await self._sender.post(target, permitted, body=due.body, headers=headers)
        except Exception as error:
            # Counted as a failed attempt, so even a bug cannot retry a job forever.
            log.exception(
                "unexpected error sending a webhook", extra={"request_id": due.request_id}
            )
            result = AttemptResult(
                status_code=None, error=f"unexpected error: {error!r}", duration_ms=0.0
            )
        finally:
            self._metrics.in_flight -= 1
        if result.status_code is not None:
            self._metrics.webhook_latency.observe(result.duration_ms / 1000)
        return result

    async def record(self, attempted: Attempted) -> NextStep | None:
        """Record an attempt's outcome; its step, or None if another replica took the job.

        Raises what the store raised: the job is then left to its lease.
        """
        outcome, step = attempted.outcome, attempted.step
        recorded = await self._outcomes.record(outcome)
        attempt = outcome.attempt.attempt if outcome.attempt is not None else None
        fields = {"request_id": outcome.request_id, "attempt": attempt}
        if not recorded:
            log.warning("delivery record skipped: another replica took the job over", extra=fields)
            return None
        result = attempted.result
        if result is None:
            self._metrics.count_dead("refused")
            log.warning(outcome.error, extra=fields)
            return step
        if step.state == "delivered":
            self._metrics.delivered += 1
            log.info("webhook delivered (HTTP %s)", result.status_code, extra=fields)
            return step
        self._metrics.failed_attempts += 1
        if step.state == "dead":
            self._metrics.count_dead(outcome.dead_reason or "exhausted")
            log.warning("webhook dead: %s", step.reason, extra=fields)
        else:
            log.info(
                "webhook attempt failed (%s); retry in %.1fs",
                result.error,
                step.retry_in_seconds or 0.0,
                extra=fields,
            )
        return step

    async def publish_dead_letters(self) -> int:
        """Publish the dead-letter record of every dead delivery that has none yet.

        The job store is the outbox: a delivery is marked dead in the same transaction as
        its last attempt, and its record goes to Kafka here, so a crash in between only
        delays the record. Returns how many were published.
        """
        pending = await self._run(
            self._store.claim_dead_letters,
            now=self._clock(),
            lease=self._lease,
            limit=DEAD_LETTER_BATCH,
        )
        for job in pending:
            letter = DeadLetter(
                source_topic=self._source_topic,
                key=job.request_id,
                value=base64.b64encode(job.body).decode(),
                error_code=f"webhook_{job.dead_reason}",
                error_message=job.last_error or "webhook delivery failed",
                service=SERVICE,
            )
            await self._dead_letters.publish(letter, key=job.request_id)
            await self._run(self._store.mark_dead_lettered, job.request_id)
        return len(pending)
