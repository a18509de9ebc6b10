"""OpenTelemetry set-up shared by every service: one tracer provider built from settings."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from shared.settings import ModelbusSettings

_configured = False


def configure_tracing(service: str, settings: ModelbusSettings) -> None:
    """Install an SDK tracer provider once, so spans carry real ids across Kafka headers."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: f"modelbus-{service}"}))
    exporter = _exporter(settings)
    if exporter is not None:
        processor = (
            SimpleSpanProcessor(exporter)
            if settings.otel_exporter == "console"
            else BatchSpanProcessor(exporter)
        )
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _configured = True


def _exporter(settings: ModelbusSettings) -> SpanExporter | None:
    if settings.otel_exporter == "console":
        return ConsoleSpanExporter()
    if settings.otel_exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )
        except ImportError as missing:
            raise RuntimeError(
                "MODELBUS_OTEL_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http"
            ) from missing
        exporter: SpanExporter = OTLPSpanExporter()
        return exporter
    return None
