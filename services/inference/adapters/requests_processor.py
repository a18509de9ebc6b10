"""`process(records) -> outgoing records` of the inference workers: decode a batch of
`requests`, serve it, and encode the answers, dead letters and trace context."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from services.inference.adapters import tracing
from services.inference.adapters.kafka_records import (
    DecodedBatch,
    PredictionEncoder,
    dead_letter_record,
    decode_batch,
)
from services.inference.domain.answers import Answer, AnswerError
from services.inference.domain.metrics import WorkerMetrics
from services.inference.service_layer.inference import (
    PLACEHOLDER_VERSION,
    BatchResult,
    InferenceService,
)
from services.inference.service_layer.ports import RegistryUnavailable
from shared.contracts import ErrorCode, PredictionRequest
from shared.contracts.base import utc_now
from shared.kafka.codec import ConsumedRecord, OutgoingRecord

log = logging.getLogger(__name__)


class RequestsProcessor:
    """Turns a batch of `requests` records into `predictions` and `dead-letters` records.

    A fault while serving a batch does not stop the stream: the batch is served again one
    request at a time, and only the request that still fails gets an `internal_error`.
    """

    def __init__(
        self,
        service: InferenceService,
        metrics: WorkerMetrics,
        *,
        requests_topic: str,
        predictions_topic: str,
        dead_letters_topic: str,
        callback_seal_key: bytes | None = None,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self._requests_topic = requests_topic
        self._dead_letters_topic = dead_letters_topic
        self._encoder = PredictionEncoder(
            topic=predictions_topic, callback_seal_key=callback_seal_key
        )

    async def __call__(self, records: Sequence[ConsumedRecord]) -> list[OutgoingRecord]:
        started_ns = time.time_ns()
        decoded = decode_batch(records, now=utc_now())
        links, parents = self._sampled_parents(decoded)
        with tracing.tracer().start_as_current_span(
            f"{self._requests_topic} process",
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": self._requests_topic,
                "messaging.batch.message_count": len(records),
            },
        ) as batch_span:
            spans = self._record_spans(decoded, parents, started_ns)
            try:
                result = await self._serve(decoded.requests)
                outgoing = self._outgoing(decoded, result, spans, batch_span)
            finally:
                for span in spans.values():
                    if span.is_recording():  # the batch failed before answering
                        span.end()
        metrics = self.metrics
        metrics.records += len(records)
        metrics.batches += 1
        metrics.batch_sizes.observe(len(records))
        for unreadable in decoded.unreadable:
            metrics.dead_letters[unreadable.dead_letter.error_code] += 1
            if (answer := unreadable.answer) is not None:
                metrics.count_error(ErrorCode.UNDECODABLE)
                metrics.count_prediction(answer.model, answer.version, "production", "error")
        return outgoing

    async def _serve(self, requests: list[PredictionRequest]) -> BatchResult:
        try:
            return await self.service.handle(requests)
        except RegistryUnavailable:
            raise  # the runtime retries the batch
        except Exception:
            if len(requests) == 1:
                return BatchResult([self._internal_error(requests[0])], [])
            log.exception("serving a batch failed; serving its requests one at a time")
        answers: list[Answer] = []
        shadows: list[tuple[int, Answer]] = []
        for index, request in enumerate(requests):
            try:
                alone = await self.service.handle([request])
            except RegistryUnavailable:
                raise
            except Exception:
                answers.append(self._internal_error(request))
                continue
            answers.extend(alone.answers)
            shadows.extend((index, shadow) for _, shadow in alone.shadows)
        return BatchResult(answers, shadows)

    def _internal_error(self, request: PredictionRequest) -> Answer:
        log.exception(
            "serving a request failed",
            extra={"request_id": request.request_id, "model": request.model},
        )
        version = request.version or PLACEHOLDER_VERSION
        self.metrics.count_error(ErrorCode.INTERNAL_ERROR)
        self.metrics.count_prediction(request.model, version, "production", "error")
        return Answer(
            request_id=request.request_id,
            model=request.model,
            version=version,
            variant="production",
            output=None,
            error=AnswerError(
                ErrorCode.INTERNAL_ERROR,
                "the worker failed while serving this request; the error is logged",
            ),
            latency_ms=0.0,
            routing_key=request.routing_key,
            callback_url=request.callback_url,
            created_at=utc_now(),
        )

    def _sampled_parents(self, decoded: DecodedBatch) -> tuple[list[trace.Link], dict[int, Any]]:
        links: list[trace.Link] = []
        parents: dict[int, Any] = {}
        for index, traceparent in enumerate(decoded.traceparents):
            if traceparent is None or not tracing.is_sampled(traceparent):
                continue
            context = tracing.parent_context(traceparent)
            if context is None:
                continue
            parents[index] = context
            if len(links) < tracing.MAX_LINKS:
                links.append(tracing.link_to(context))
        return links, parents

    def _record_spans(
        self, decoded: DecodedBatch, parents: dict[int, Any], started_ns: int
    ) -> dict[int, Span]:
        tracer = tracing.tracer()
        return {
            index: tracer.start_span(
                "predict",
                context=context,
                kind=SpanKind.CONSUMER,
                start_time=started_ns,
                attributes={"modelbus.request_id": decoded.requests[index].request_id},
            )
            for index, context in parents.items()
        }

    def _outgoing(
        self,
        decoded: DecodedBatch,
        result: BatchResult,
        spans: dict[int, Span],
        batch_span: Span,
    ) -> list[OutgoingRecord]:
        time_header = utc_now().isoformat().encode()
        batch_traceparent = (
            tracing.format_traceparent(batch_span.get_span_context())
            or tracing.random_traceparent()
        )
        traceparents: list[bytes] = []
        for index, traceparent in enumerate(decoded.traceparents):
            span = spans.get(index)
            if span is not None:
                answer = result.answers[index]
                span.set_attributes(
                    {
                        "modelbus.model": answer.model,
                        "modelbus.version": answer.version,
                        "modelbus.variant": answer.variant,
                        "modelbus.status": answer.status,
                    }
                )
                span.end()
                traceparent = tracing.format_traceparent(span.get_span_context()) or traceparent
            traceparents.append(traceparent or batch_traceparent)
        encode = self._encoder.encode
        outgoing = [
            encode(answer, time=time_header, traceparent=traceparents[index])
            for index, answer in enumerate(result.answers)
        ]
        outgoing.extend(
            encode(shadow, time=time_header, traceparent=traceparents[index])
            for index, shadow in result.shadows
        )
        for unreadable in decoded.unreadable:
            outgoing.append(dead_letter_record(unreadable, topic=self._dead_letters_topic))
            if unreadable.answer is not None:
                outgoing.append(
                    encode(unreadable.answer, time=time_header, traceparent=batch_traceparent)
                )
        return outgoing
