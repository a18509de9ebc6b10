"""A server span per HTTP request, continuing the caller's trace from its `traceparent`.

The Kafka publisher's producer span is a child of it, so a trace runs from the caller
through the gateway and Kafka to the worker and the webhook.
"""

from __future__ import annotations

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

tracer = trace.get_tracer("modelbus.gateway.http")
UNTRACED_PATHS = frozenset({"/healthz", "/readyz"})


class ServerSpans:
    """Pure ASGI middleware, so the span stays current inside the route handlers."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED_PATHS:
            await self._app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        method = scope["method"]
        with tracer.start_as_current_span(
            method,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:

            async def recording_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status_code = int(message["status"])
                    span.set_attribute("http.response.status_code", status_code)
                    if status_code >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self._app(scope, receive, recording_send)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None)
                if template is not None:
                    span.set_attribute("http.route", template)
                    span.update_name(f"{method} {template}")
