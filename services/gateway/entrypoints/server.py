"""Run the gateway's HTTP server (wired as `modelbus gateway serve`)."""

from __future__ import annotations

import uvicorn

from services.gateway.bootstrap import create_app
from services.gateway.settings import GatewaySettings
from shared.runtime.logs import configure_logging


def run(host: str | None = None, port: int | None = None) -> None:
    """Serve until interrupted; host and port default to MODELBUS_GATEWAY_HOST/_PORT."""
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=host or settings.gateway_host,
        port=port or settings.gateway_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers propagate to the JSON log handler
    )
