"""The peer: MLServer (scikit-learn runtime, adaptive batching) serving the same model over
HTTP, driven by wrk at several concurrencies; CPU of its process tree per prediction."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import orjson
import sklearn

from bench.load import LoadRun, run_httpx_load, run_wrk, wrk_path
from bench.measure import CpuMeter, MachineCpuMeter
from bench.report import progress
from bench.stack import REPO_ROOT, BenchStack
from bench.workload import MODEL_NAME, v2_inference_bodies
from devtools.ports import free_port
from devtools.service_process import ServiceFailed, ServiceProcess, clean_env

PEER_VENV = REPO_ROOT / ".cache" / "bench" / "mlserver-venv"
MLSERVER_VERSION = "1.7.1"
PINS = {
    "mlserver": MLSERVER_VERSION,
    "mlserver-sklearn": MLSERVER_VERSION,
    # The joblib file is written by the bench's scikit-learn; the peer loads it with the same.
    "scikit-learn": sklearn.__version__,
    # uvloop 0.22 breaks MLServer 1.7.1's inference processes at start-up ("There is no
    # current event loop", SeldonIO/MLServer#2286); 0.21 is what 1.7.1 was released with.
    "uvloop": "0.21.0",
}
MAX_BATCH_SIZE = 32
MAX_BATCH_TIME_SECONDS = 0.005
BODIES = 400
READY_TIMEOUT_SECONDS = 120.0
INSTALL_TIMEOUT_SECONDS = 900.0
PEER_STOP_TIMEOUT_SECONDS = 5.0


class PeerUnavailable(RuntimeError):
    """MLServer could not be installed or started here."""


@dataclass(frozen=True)
class PeerConfig:
    """One way of running the peer."""

    parallel_workers: int
    fallback: bool = False
    """A FastAPI endpoint calling predict per request, when MLServer cannot be installed."""

    @property
    def label(self) -> str:
        if self.fallback:
            return "fallback (FastAPI endpoint, predict per request)"
        if self.parallel_workers == 0:
            return "parallel_workers=0 (inference in the HTTP process)"
        return f"parallel_workers={self.parallel_workers} (MLServer's default: 1 inference process)"


def _installed_versions(python: Path) -> dict[str, str]:
    script = (
        "import importlib.metadata as m, json; "
        f"print(json.dumps({{n: m.version(n) for n in {sorted(PINS)!r}}}))"
    )
    completed = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    if completed.returncode != 0:
        return {}
    versions: dict[str, str] = orjson.loads(completed.stdout.strip().splitlines()[-1])
    return versions


def ensure_peer_venv() -> Path:
    """The peer's own venv with the pinned versions (created on first use); its bin dir."""
    python = PEER_VENV / "bin" / "python"
    if python.exists() and _installed_versions(python) == PINS:
        return python.parent
    progress(f"   installing MLServer {MLSERVER_VERSION} into {PEER_VENV} ...")
    steps: list[list[str]] = []
    if not python.exists():
        steps.append([sys.executable, "-m", "venv", str(PEER_VENV)])
    steps.append([str(python), "-m", "pip", "install", "--quiet", "uv"])
    steps.append(
        [
            str(PEER_VENV / "bin" / "uv"),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            *(f"{name}=={version}" for name, version in PINS.items()),
        ]
    )
    for step in steps:
        completed = subprocess.run(
            step, capture_output=True, text=True, check=False, timeout=INSTALL_TIMEOUT_SECONDS
        )
        if completed.returncode != 0:
            tail = (completed.stderr or completed.stdout)[-1500:]
            raise PeerUnavailable(f"{' '.join(step[:4])} ... failed:\n{tail}")
    installed = _installed_versions(python)
    if installed != PINS:
        raise PeerUnavailable(f"MLServer venv has {installed}, wanted {PINS}")
    return python.parent


def write_model_repository(folder: Path, estimator: Any, config: PeerConfig) -> tuple[int, int]:
    """MLServer's own layout: settings.json, and the model folder with its joblib file."""
    http_port, grpc_port = free_port(), free_port()
    model_dir = folder / MODEL_NAME
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, model_dir / "model.joblib")
    server_settings = {
        "debug": False,  # True (the default) logs every request
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,  # cannot be disabled; a free port
        "metrics_endpoint": None,  # no metrics server, no Prometheus middleware
        "parallel_workers": config.parallel_workers,
        "load_models_at_startup": True,
    }
    model_settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "max_batch_size": MAX_BATCH_SIZE,
        "max_batch_time": MAX_BATCH_TIME_SECONDS,
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }
    (folder / "settings.json").write_bytes(orjson.dumps(server_settings))
    (model_dir / "model-settings.json").write_bytes(orjson.dumps(model_settings))
    return http_port, grpc_port


def _check_answers(base_url: str, bodies: list[bytes], estimator: Any) -> None:
    """The peer answers like the model: same labels as scikit-learn for a few bodies."""
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        for body in bodies[:5]:
            response = client.post(
                f"/v2/models/{MODEL_NAME}/infer",
                content=body,
                headers={"content-type": "application/json"},
            )
            if response.status_code != 200:
                raise PeerUnavailable(f"peer answered {response.status_code}: {response.text}")
            outputs = {output["name"]: output["data"] for output in response.json()["outputs"]}
            row = np.asarray(orjson.loads(body)["inputs"][0]["data"]).reshape(1, -1)
            if outputs["predict"][0] != int(estimator.predict(row)[0]):
                raise PeerUnavailable("the peer's label differs from scikit-learn's")


def _start_peer(stack: BenchStack, bin_dir: Path | None, config: PeerConfig) -> ServiceProcess:
    if bin_dir is None or config.fallback:
        return _start_fallback_peer(stack)
    folder = stack.work_dir / f"mlserver-pw{config.parallel_workers}"
    http_port, _ = write_model_repository(folder, stack.model.estimator, config)
    peer = stack.launch(
        f"mlserver ({config.label})",
        [str(bin_dir / "mlserver"), "start", str(folder)],
        env=clean_env({}),
        log_name=f"mlserver-pw{config.parallel_workers}.log",
        base_url=f"http://127.0.0.1:{http_port}",
        cwd=folder,
    )
    # After load, MLServer 1.7.1 can wait forever for its batching tasks on SIGTERM.
    peer.stop_timeout = PEER_STOP_TIMEOUT_SECONDS
    return peer


def _start_fallback_peer(stack: BenchStack) -> ServiceProcess:
    folder = stack.work_dir / "peer-fallback"
    folder.mkdir(parents=True, exist_ok=True)
    model_file = folder / "model.joblib"
    joblib.dump(stack.model.estimator, model_file)
    port = free_port()
    return stack.launch(
        "peer fallback (FastAPI)",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "bench.peer_fallback:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=clean_env(
            {"BENCH_PEER_MODEL_FILE": str(model_file), "BENCH_PEER_MODEL_NAME": MODEL_NAME}
        ),
        log_name="peer-fallback.log",
        base_url=f"http://127.0.0.1:{port}",
    )


def _drive(
    peer: ServiceProcess,
    script_bodies: list[bytes],
    *,
    connections: int,
    seconds: float,
    use_wrk: bool,
    work_dir: Path,
) -> LoadRun:
    meter, machine = CpuMeter([peer.pid]), MachineCpuMeter()
    path = f"/v2/models/{MODEL_NAME}/infer"
    # wrk is a child of the bench (reaped: its CPU shows in RUSAGE_CHILDREN); the httpx
    # fallback runs inside the bench process itself.
    generator_cpu = _children_cpu_seconds if use_wrk else time.process_time
    generator_before = generator_cpu()
    machine.start()
    meter.start()
    started = time.perf_counter()
    if use_wrk:
        run = run_wrk(peer.base_url, path, script_bodies, connections, seconds, work_dir)
    else:
        run = run_httpx_load(peer.base_url, path, script_bodies, connections, seconds)
    run.cpu_seconds = meter.stop()
    run.machine_cpu_seconds = machine.stop()
    run.wall_seconds = round(time.perf_counter() - started, 3)
    run.generator_cpu_seconds = round(generator_cpu() - generator_before, 3)
    return run


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_mlserver_peer(
    stack: BenchStack,
    *,
    concurrencies: list[int],
    seconds: float,
    configs: list[PeerConfig],
) -> dict[str, Any]:
    """Every config at every concurrency; the best run (highest rate) and its CPU."""
    notes: list[str] = []
    bin_dir: Path | None
    try:
        bin_dir = ensure_peer_venv()
        peer_name = f"MLServer {MLSERVER_VERSION} (mlserver_sklearn.SKLearnModel)"
    except PeerUnavailable as error:
        progress(f"   {error}; falling back to a FastAPI endpoint")
        notes.append(
            f"MLServer could not be installed ({str(error)[:200]}): the peer is a FastAPI "
            "endpoint calling predict once per request (no adaptive batching)."
        )
        bin_dir, peer_name = None, "FastAPI fallback (predict per request)"
        configs = [PeerConfig(parallel_workers=0, fallback=True)]
    use_wrk = wrk_path() is not None
    if not use_wrk:
        notes.append("wrk is not available: load generated by the bench's httpx asyncio client")
    bodies = v2_inference_bodies(stack.model, BODIES, seed=7)
    runs: list[dict[str, Any]] = []
    for config in configs:
        peer = _start_peer(stack, bin_dir, config)
        try:
            peer.wait_healthy(f"/v2/models/{MODEL_NAME}/ready", timeout=READY_TIMEOUT_SECONDS)
            _check_answers(peer.base_url, bodies, stack.model.estimator)
            progress(f"   {peer.name} ready; warming up")
            _drive(
                peer,
                bodies,
                connections=16,
                seconds=2,
                use_wrk=use_wrk,
                work_dir=stack.work_dir,
            )
            for connections in concurrencies:
                run = _drive(
                    peer,
                    bodies,
                    connections=connections,
                    seconds=seconds,
                    use_wrk=use_wrk,
                    work_dir=stack.work_dir,
                )
                entry = {"config": config.label, **run.as_dict()}
                runs.append(entry)
                progress(
                    f"   {connections:>3} connections: {entry['per_second']:>8,.0f} req/s, "
                    f"{run.cpu_seconds:.2f} CPU s in {run.seconds:.1f} s "
                    f"({entry['per_cpu_second']:,.0f} per CPU second), "
                    f"p99 {entry['latency_p99_ms']} ms, non-2xx {run.status_errors}"
                )
        finally:
            stack.stop([peer])
    valid = [run for run in runs if run["ok"]]
    if not valid:
        raise ServiceFailed(f"every run against the peer had errors: {runs}")
    best = max(valid, key=lambda run: run["per_second"])
    most_efficient = max(valid, key=lambda run: run["per_cpu_second"])
    return {
        "peer": peer_name,
        "load_generator": "wrk (Lua script rotating pre-built bodies)" if use_wrk else "httpx",
        "adaptive_batching": None
        if bin_dir is None
        else {"max_batch_size": MAX_BATCH_SIZE, "max_batch_time_seconds": MAX_BATCH_TIME_SECONDS},
        "request": "V2 inference protocol, 1 row x 20 FP64 features, outputs predict and "
        "predict_proba",
        "seconds_per_run": seconds,
        "runs": runs,
        "best": best,
        "most_cpu_efficient": most_efficient,
        "notes": notes,
    }
