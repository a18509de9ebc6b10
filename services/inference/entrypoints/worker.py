"""`modelbus inference run`: one worker copy until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from services.inference.bootstrap import build_worker
from services.inference.settings import InferenceSettings
from shared.clients.registry import RegistryCallFailed
from shared.runtime.consumer import StopRequested
from shared.runtime.logs import configure_logging
from shared.telemetry import configure_tracing

log = logging.getLogger(__name__)
GC_FIRST_THRESHOLD = 50_000


def run() -> None:
    """Run a worker from `MODELBUS_*` settings; blocks until a signal stops it gracefully.

    On SIGTERM/SIGINT the worker finishes its current batch, produces and commits it,
    leaves the consumer group and exits.
    """
    settings = InferenceSettings()
    configure_logging("inference", settings.log_level)
    configure_tracing("inference", settings)
    asyncio.run(_serve(settings))


async def _serve(settings: InferenceSettings) -> None:
    worker = build_worker(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.request_stop)
    try:
        await worker.start()
        tune_garbage_collector()
        await worker.run_until_stopped()
    except StopRequested:
        log.info("stopped during start-up")
    except RegistryCallFailed as refused:
        log.error(
            "the registry refused MODELBUS_REGISTRY_API_KEY; a key with the reader role is needed",
            extra={"status": refused.status_code, "code": refused.code, "reason": refused.message},
        )
        raise SystemExit(2) from None
    finally:
        await worker.stop()


def tune_garbage_collector() -> None:
    """Keep the collector off the hot path once libraries and models are loaded.

    Every batch allocates thousands of short-lived objects, which triggers frequent
    collections; each full one would rescan every object of scikit-learn, numpy and the
    loaded models. Freezing moves those long-lived objects out of the collector's sight,
    and a larger first threshold lets most batch garbage die by reference counting.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_FIRST_THRESHOLD, *gc.get_threshold()[1:])
