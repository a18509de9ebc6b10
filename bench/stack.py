"""What every scenario runs on: a dedicated broker, a registry, the deployed model, workers."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.report import progress
from bench.workload import MODEL_NAME, BenchModel
from devtools.kafka_broker import BOOTSTRAP_ENV, KafkaBroker
from devtools.live_registry import LiveRegistry, live_registry
from devtools.ports import free_port
from devtools.service_process import ServiceFailed, ServiceProcess, clean_env, start_service
from shared.kafka.admin import ensure_topics
from shared.topics import DEAD_LETTERS, MODEL_EVENTS, PREDICTIONS, REQUESTS

REPO_ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 8
WORKER_READY_TIMEOUT_SECONDS = 90.0


def venv_command(name: str) -> Path:
    """A console script of the venv the bench runs in (`.venv/bin/modelbus`)."""
    here = Path(sys.executable).parent / name
    return here if here.exists() else REPO_ROOT / ".venv" / "bin" / name


@dataclass
class BenchStack:
    """The broker, the registry with the model deployed, and the services started on them."""

    work_dir: Path
    run_id: str
    broker: KafkaBroker
    registry: LiveRegistry
    model: BenchModel
    services: list[ServiceProcess] = field(default_factory=list)
    profile_dir: Path | None = None
    """Where py-spy samples of the services go during measured windows; None: no sampling."""
    callback_seal_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    """Shared by workers and delivery, which sends webhooks only to sealed callbacks."""

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def broker_pid(self) -> int:
        assert self.broker.data_dir is not None
        return int((self.broker.data_dir / "kafka.pid").read_text().strip())

    @property
    def kafka_version(self) -> str:
        """The broker's version, read from its class path (`.cache/kafka/<version>/libs`)."""
        command = Path(f"/proc/{self.broker_pid}/cmdline").read_bytes().replace(b"\0", b" ")
        found = re.search(rb"kafka/([0-9][0-9A-Za-z.\-]*)/libs", command)
        return found.group(1).decode() if found else "unknown"

    def prefix(self, scenario: str) -> str:
        """A fresh topic prefix, so no scenario sees another's messages or groups."""
        return f"bench-{self.run_id}-{scenario}-{uuid.uuid4().hex[:4]}-"

    async def create_topics(self, prefix: str) -> None:
        await ensure_topics(
            self.bootstrap,
            prefix=prefix,
            specs=[REQUESTS, PREDICTIONS],
            partitions_override=PARTITIONS,
        )
        await ensure_topics(self.bootstrap, prefix=prefix, specs=[MODEL_EVENTS, DEAD_LETTERS])

    def launch(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str],
        log_name: str,
        base_url: str,
        cwd: Path = REPO_ROOT,
    ) -> ServiceProcess:
        """Start a process of the run, logging to logs/`log_name`; `stop_all` stops it."""
        service = start_service(
            name,
            argv,
            env=env,
            log_path=self.work_dir / "logs" / log_name,
            base_url=base_url,
            cwd=cwd,
        )
        self.services.append(service)
        return service

    def start_workers(
        self, prefix: str, count: int, *, delivery_mode: str = "at-least-once"
    ) -> list[ServiceProcess]:
        """`count` worker processes in one consumer group, each with its health port."""
        workers = []
        for index in range(count):
            port = free_port()
            instance = f"{prefix}w{index}"
            env = clean_env(
                {
                    "MODELBUS_KAFKA_BOOTSTRAP": self.bootstrap,
                    "MODELBUS_TOPIC_PREFIX": prefix,
                    "MODELBUS_REGISTRY_URL": self.registry.url,
                    "MODELBUS_REGISTRY_API_KEY": self.registry.keys["reader"],
                    "MODELBUS_WORKER_PORT": str(port),
                    "MODELBUS_CONSUMER_GROUP": f"{prefix}inference",
                    "MODELBUS_DELIVERY_MODE": delivery_mode,
                    "MODELBUS_INSTANCE_ID": instance,
                    "MODELBUS_CALLBACK_SEAL_KEY": self.callback_seal_key,
                }
            )
            worker = self.launch(
                f"worker {instance}",
                [str(venv_command("modelbus")), "inference", "run"],
                env=env,
                log_name=f"{instance}.log",
                base_url=f"http://127.0.0.1:{port}",
            )
            workers.append(worker)
        return workers

    def start_relay(self, prefix: str) -> ServiceProcess:
        """bench.relay in a worker's place (it has no HTTP: the warm-up shows it is ready)."""
        return self.launch(
            f"relay {prefix}",
            [
                sys.executable,
                "-m",
                "bench.relay",
                "--bootstrap",
                self.bootstrap,
                "--prefix",
                prefix,
            ],
            env=clean_env({}),
            log_name=f"{prefix}relay.log",
            base_url="",
        )

    def wait_workers_ready(self, workers: list[ServiceProcess]) -> None:
        """Every worker ready and the group settled: the workers' partitions are disjoint
        and cover all of `requests`, so no rebalance is pending when the load starts."""
        for worker in workers:
            worker.wait_healthy("/readyz", timeout=WORKER_READY_TIMEOUT_SECONDS)
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_SECONDS
        while True:
            owned: list[int] = []
            for worker in workers:
                try:
                    owned.extend(worker.get_json("/readyz").get("partitions", []))
                except (httpx.HTTPError, ValueError):
                    owned.append(-1)
            if sorted(owned) == list(range(PARTITIONS)):
                return
            if time.monotonic() > deadline:
                raise ServiceFailed(f"the consumer group did not settle: partitions {owned}")
            time.sleep(0.1)

    def stop(self, services: list[ServiceProcess]) -> dict[str, int]:
        """Stop services (gracefully); their exit codes by name."""
        codes = {}
        for service in services:
            codes[service.name] = service.stop()
            if service in self.services:
                self.services.remove(service)
        return codes

    def stop_all(self) -> None:
        for service in list(self.services):
            try:
                service.stop()
            except Exception as error:  # keep stopping the others
                progress(f"   could not stop {service.name}: {error!r}")
            self.services.remove(service)


@contextmanager
def bench_stack(work_dir: Path, run_id: str, model: BenchModel) -> Iterator[BenchStack]:
    """Start a dedicated broker and a registry with the model deployed; stop all on exit."""
    if os.environ.pop(BOOTSTRAP_ENV, None):
        progress(f"   ignoring {BOOTSTRAP_ENV}: the bench always runs its own broker")
    with ExitStack() as cleanup:
        progress("starting a dedicated Kafka broker ...")
        broker = KafkaBroker.start(work_dir / "kafka")
        cleanup.callback(broker.stop)
        progress(f"   broker at {broker.bootstrap} (healthy after {broker.start_seconds:.1f} s)")
        registry_prefix = f"bench-{run_id}-registry-"
        asyncio.run(ensure_topics(broker.bootstrap, prefix=registry_prefix, specs=[MODEL_EVENTS]))
        (work_dir / "registry").mkdir(exist_ok=True)
        registry = cleanup.enter_context(
            live_registry(
                data_dir=work_dir / "registry",
                kafka_bootstrap=broker.bootstrap,
                topic_prefix=registry_prefix,
            )
        )
        versions = registry.deploy(MODEL_NAME, [model.sample])
        progress(f"   registry at {registry.url}; {MODEL_NAME} v{versions[0]} in production")
        stack = BenchStack(
            work_dir=work_dir, run_id=run_id, broker=broker, registry=registry, model=model
        )
        cleanup.callback(stack.stop_all)
        yield stack
