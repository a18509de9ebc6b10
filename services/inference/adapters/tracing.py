"""Trace context across Kafka: continue a caller's sampled trace, link batches to requests.

Spans per record cost real time, so a record gets its own span only when its producer
sampled the trace; every batch gets one span linking the sampled records.
"""

from __future__ import annotations

import secrets

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.kafka.headers import TRACEPARENT

TRACEPARENT_LENGTH = 55
MAX_LINKS = 64
_propagator = TraceContextTextMapPropagator()


def tracer() -> trace.Tracer:
    return trace.get_tracer("modelbus.inference")


def is_sampled(traceparent: bytes) -> bool:
    """Whether a W3C traceparent has the sampled flag, without a full parse."""
    if len(traceparent) != TRACEPARENT_LENGTH:
        return False
    try:
        return int(traceparent[53:55], 16) & 1 == 1
    except ValueError:
        return False


def parent_context(traceparent: bytes) -> Context | None:
    """The producer's context to continue, or None if the header is not a valid one."""
    try:
        carrier = {TRACEPARENT: traceparent.decode("ascii")}
    except UnicodeDecodeError:
        return None
    context = _propagator.extract(carrier)
    span_context = trace.get_current_span(context).get_span_context()
    return context if span_context.is_valid else None


def link_to(context: Context) -> Link:
    return Link(trace.get_current_span(context).get_span_context())


def format_traceparent(span_context: SpanContext) -> bytes | None:
    if not span_context.is_valid:
        return None
    flags = int(span_context.trace_flags)
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{flags:02x}".encode()


def random_traceparent() -> bytes:
    """A fresh unsampled context for output published outside any recorded span."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00".encode()
