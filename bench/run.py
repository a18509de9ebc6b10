"""`python -m bench.run [--quick] [--only NAME[,NAME]]`: the benchmark suite (`make bench`).

Starts everything it measures on this machine (a dedicated Kafka broker, a registry,
worker and delivery processes, MLServer), runs the scenarios, stops everything (also on
error or Ctrl-C), and writes bench/results/<timestamp>.json, latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import aiokafka
import numpy
import sklearn

from bench.drift_concept import ConceptPlan, run_drift_concept
from bench.drift_concept_summary import drift_concept_headline
from bench.drift_data import DriftDataPlan, drift_data_headline, run_drift_data
from bench.drift_throughput import DriftThroughputPlan, run_drift_throughput
from bench.drift_throughput_summary import drift_throughput_headline
from bench.feedback import FeedbackPlan, feedback_headline, run_feedback
from bench.latency import run_latency
from bench.load import wrk_path
from bench.measure import CpuMeter
from bench.mlserver_peer import PINS, PeerConfig, run_mlserver_peer
from bench.profiling import py_spy_path
from bench.raw_loop import raw_loop
from bench.report import progress, render_markdown, write_results
from bench.stack import PARTITIONS, REPO_ROOT, BenchStack, bench_stack
from bench.summary import notes_for, summarise
from bench.throughput import run_relay, run_throughput
from bench.workload import request_records, train_model
from shared.kafka.codec import OutgoingRecord

SCENARIOS = (
    "raw_loop",
    "e2e_at_least_once",
    "e2e_exactly_once",
    "latency_1000rps",
    "scaling",
    "mlserver_peer",
    "feedback",
    "drift",
    "drift-data",
    "drift-concept",
)
STACKLESS = frozenset({"drift-data", "drift-concept"})
"""Scenarios that measure pure code: they run before (and without) the broker stack."""


@dataclass(frozen=True)
class Plan:
    """What to run and how much of it."""

    quick: bool
    scenarios: tuple[str, ...]
    messages: int
    latency_rate: int = 1000
    latency_seconds: float = 20.0
    paired_rounds: int = 3
    scaling_workers: tuple[int, ...] = (1, 2, 4)
    peer_concurrencies: tuple[int, ...] = (4, 16, 64)
    peer_seconds: float = 10.0
    peer_parallel_workers: tuple[int, ...] = (1, 0)
    broker_warm_up_min_passes: int = 10
    broker_warm_up_max_passes: int = 16
    partitions: int = PARTITIONS
    feedback_pairs: int = 200_000
    feedback_records: int = 100_000
    feedback_retained: int = 1_000_000
    drift_requests: int = 200_000

    @classmethod
    def from_args(cls, quick: bool, only: str | None) -> Plan:
        chosen: tuple[str, ...] = SCENARIOS
        if only:
            chosen = tuple(name.strip() for name in only.split(",") if name.strip())
            unknown = sorted(set(chosen) - set(SCENARIOS))
            if unknown:
                raise SystemExit(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
            chosen = tuple(name for name in SCENARIOS if name in chosen)
        if quick:
            return cls(
                quick=True,
                scenarios=chosen,
                messages=5_000,
                latency_seconds=5.0,
                peer_seconds=3.0,
                peer_parallel_workers=(1,),
                paired_rounds=1,
                broker_warm_up_min_passes=2,
                broker_warm_up_max_passes=3,
                feedback_pairs=5_000,
                feedback_records=2_500,
                feedback_retained=20_000,
                drift_requests=20_000,
            )
        return cls(quick=False, scenarios=chosen, messages=50_000)


@dataclass
class Context:
    """What scenarios share: the stack, the plan and the encoded requests."""

    stack: BenchStack
    plan: Plan
    records: list[OutgoingRecord]


def warm_up_broker(stack: BenchStack, records: list[OutgoingRecord], plan: Plan) -> list[Any]:
    """Unmeasured raw loops until the broker's CPU per message settles.

    A fresh JVM keeps compiling its hot paths for a minute or more (its CPU per message
    falls by half or more over the first passes), which would otherwise be charged to
    whichever scenarios run first.
    """
    progress("warming up the broker (unmeasured raw loops until its CPU per message settles)")
    trace: list[dict[str, float]] = []
    for attempt in range(plan.broker_warm_up_max_passes):
        result = asyncio.run(
            raw_loop(
                stack.bootstrap,
                prefix=stack.prefix(f"warm{attempt}"),
                records=records,
                partitions=PARTITIONS,
                meters={"broker": CpuMeter([stack.broker_pid])},
            )
        )
        cost = result["cpu_us_per_message"]["broker"]
        trace.append({"per_second": result["per_second"], "broker_cpu_us_per_message": cost})
        progress(f"   pass {attempt + 1}: {result['per_second']:,.0f} msgs/s, broker {cost} µs/msg")
        costs = [entry["broker_cpu_us_per_message"] for entry in trace]
        if len(costs) >= plan.broker_warm_up_min_passes and _settled(costs[-3:]):
            break
    return trace


def _settled(costs: list[float], tolerance: float = 0.15) -> bool:
    """The last passes cost within `tolerance` of each other."""
    return len(costs) >= 2 and max(costs) <= min(costs) * (1 + tolerance)


def _raw_loop(context: Context, label: str = "raw") -> dict[str, Any]:
    stack = context.stack
    meters = {
        "bench_process": CpuMeter([os.getpid()], descendants=False),
        "broker": CpuMeter([stack.broker_pid]),
    }
    return asyncio.run(
        raw_loop(
            stack.bootstrap,
            prefix=stack.prefix(label),
            records=context.records,
            partitions=context.plan.partitions,
            meters=meters,
        )
    )


def _e2e_at_least_once(context: Context) -> dict[str, Any]:
    """Rounds of a raw loop, then the relay (two hops, no model), then the end-to-end run:
    the machine's speed drifts over minutes here, so each end-to-end figure is compared
    with the ceilings measured next to it, and the round with the median ratio to the raw
    loop is reported."""
    rounds = []
    for number in range(1, context.plan.paired_rounds + 1):
        raw = _raw_loop(context, label=f"pair{number}raw")
        relay = run_relay(context.stack, context.records, label=f"pair{number}relay")
        e2e = run_throughput(context.stack, context.records, label=f"alo{number}")
        ratio = round(e2e["per_second"] / raw["per_second"], 3)
        progress(
            f"   round {number}: raw loop {raw['per_second']:,.0f}/s, relay "
            f"{relay['per_second']:,.0f}/s, end to end {e2e['per_second']:,.0f}/s = {ratio:.2f}x"
        )
        rounds.append((ratio, raw, relay, e2e))
    ratio, raw, relay, median = sorted(rounds, key=lambda entry: entry[0])[len(rounds) // 2]
    return median | {
        "paired_raw_loop": raw,
        "paired_relay": relay,
        "ratio_to_paired_raw_loop": ratio,
        "rounds": [
            {
                "raw_loop_per_second": r["per_second"],
                "relay_per_second": y["per_second"],
                "per_second": e["per_second"],
                "ratio": q,
                "relay_ratio": round(y["per_second"] / r["per_second"], 3),
            }
            for q, r, y, e in rounds
        ],
    }


def _e2e_exactly_once(context: Context) -> dict[str, Any]:
    return run_throughput(context.stack, context.records, label="eos", delivery_mode="exactly-once")


def _latency(context: Context) -> dict[str, Any]:
    return run_latency(
        context.stack, rate=context.plan.latency_rate, seconds=context.plan.latency_seconds
    )


def _scaling(context: Context) -> dict[str, Any]:
    runs = []
    for workers in context.plan.scaling_workers:
        progress(f"   scaling: {workers} worker(s)")
        run = run_throughput(context.stack, context.records, label=f"s{workers}", workers=workers)
        progress(f"   {workers} worker(s): {run['per_second']:,.0f} predictions/s")
        runs.append(run)
    base = runs[0]["per_second"]
    for run in runs:
        run["speedup_vs_1"] = round(run["per_second"] / base, 2) if base else None
    return {"cpu_count": os.cpu_count(), "partitions": context.plan.partitions, "runs": runs}


def _mlserver_peer(context: Context) -> dict[str, Any]:
    plan = context.plan
    return run_mlserver_peer(
        context.stack,
        concurrencies=list(plan.peer_concurrencies),
        seconds=plan.peer_seconds,
        configs=[PeerConfig(parallel_workers=count) for count in plan.peer_parallel_workers],
    )


def _feedback(context: Context) -> dict[str, Any]:
    plan = context.plan
    return run_feedback(
        context.stack,
        FeedbackPlan(
            pairs=plan.feedback_pairs,
            feedback=plan.feedback_records,
            retained=plan.feedback_retained,
        ),
        context.records,
    )


def _drift(context: Context) -> dict[str, Any]:
    plan = DriftThroughputPlan(requests=context.plan.drift_requests)
    return run_drift_throughput(context.stack, plan, context.records)


def _drift_data(plan: Plan) -> dict[str, Any]:
    return run_drift_data(DriftDataPlan.quick() if plan.quick else DriftDataPlan())


def _drift_concept(plan: Plan) -> dict[str, Any]:
    return run_drift_concept(ConceptPlan(seeds=10) if plan.quick else ConceptPlan())


STACKLESS_RUNNERS: dict[str, Callable[[Plan], dict[str, Any]]] = {
    "drift-data": _drift_data,
    "drift-concept": _drift_concept,
}

RUNNERS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "raw_loop": _raw_loop,
    "e2e_at_least_once": _e2e_at_least_once,
    "e2e_exactly_once": _e2e_exactly_once,
    "latency_1000rps": _latency,
    "scaling": _scaling,
    "mlserver_peer": _mlserver_peer,
    "feedback": _feedback,
    "drift": _drift,
}


def _headline(name: str, result: dict[str, Any]) -> str:
    if "error" in result:
        return f"failed: {result['error'][:300]}"
    if name == "latency_1000rps":
        return (
            f"{result['achieved_rate']:,.0f}/s achieved; p99 to prediction "
            f"{result['publish_to_prediction']['p99_ms']} ms, to webhook "
            f"{result['publish_to_webhook']['p99_ms']} ms"
        )
    if name == "scaling":
        return ", ".join(f"{r['workers']}: {r['per_second']:,.0f}/s" for r in result["runs"])
    if name == "feedback":
        return feedback_headline(result)
    if name == "drift":
        return drift_throughput_headline(result)
    if name == "drift-data":
        return drift_data_headline(result)
    if name == "drift-concept":
        return drift_concept_headline(result)
    if name == "mlserver_peer":
        best = result["best"]
        return (
            f"best {best['per_second']:,.0f} req/s at {best['connections']} connections, "
            f"{best['per_cpu_second']:,.0f} per CPU-second"
        )
    return (
        f"{result['messages']:,} in {result['seconds']:.2f} s = {result['per_second']:,.0f}/s; "
        f"CPU {result['cpu_seconds']}"
    )


# -- run -----------------------------------------------------------------------------------


def scenario_failed(result: dict[str, Any]) -> bool:
    """The scenario failed, or one of its parts did (a store of the feedback scenario):
    such a run does not replace latest.*."""
    parts = [*result.get("backends", {}).values(), *result.get("configurations", {}).values()]
    return "error" in result or any("error" in part for part in parts)


def _git(*args: str) -> str:
    git = shutil.which("git")
    if git is None:
        return ""
    completed = subprocess.run(
        [git, *args], capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    return completed.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions() -> dict[str, Any]:
    wrk = wrk_path()
    wrk_version = "-"
    if wrk is not None:
        completed = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
        wrk_version = (completed.stdout or completed.stderr).split(" [")[0].strip()
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "aiokafka": aiokafka.__version__,
        "scikit_learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "mlserver": PINS["mlserver"],
        "mlserver_sklearn": PINS["mlserver-sklearn"],
        "wrk": wrk_version,
    }


def keep_collector_off_the_hot_path() -> None:
    """Freeze what the bench holds long-term (the encoded requests, the model, clients).

    A full collection would otherwise walk a million long-lived objects and pause the
    bench's event loop for tens of milliseconds: time a latency measurement would charge
    to the system under test.
    """
    gc.collect()
    gc.freeze()


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run_scenario(name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One scenario, timed; a failure is recorded and does not stop the others."""
    scenario_started = time.monotonic()
    keep_collector_off_the_hot_path()
    try:
        result = run()
    except Exception as error:
        result = {
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(limit=-6),
        }
    result["scenario_seconds"] = round(time.monotonic() - scenario_started, 1)
    progress(f"   {name}: {_headline(name, result)}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts, a smoke run")
    parser.add_argument(
        "--only", metavar="NAME[,NAME]", help=f"run only these of: {', '.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        help="sample the services with py-spy while each throughput and latency run is "
        "measured; folded stacks and summaries go to DIR (figures of such a run are "
        "marked: the sampler shares the cores)",
    )
    args = parser.parse_args(argv)
    plan = Plan.from_args(args.quick, args.only)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # A fresh broker's topic leaders and group coordinator settle within moments; aiokafka
    # retries and logs meanwhile, which is noise here: real failures surface as exceptions
    # or timeouts in the scenario that meets them.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # stop everything, then exit

    started = time.monotonic()
    started_at = datetime.now(UTC)
    run_id = uuid.uuid4().hex[:6]
    load = os.getloadavg()
    results: dict[str, Any] = {
        "started_at": started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "load_average_at_start": [round(value, 2) for value in load],
        },
        "versions": _versions(),
        "parameters": asdict(plan),
        "scenarios": {},
    }
    scenarios: dict[str, Any] = results["scenarios"]
    progress(
        f"modelbus bench: {', '.join(plan.scenarios)} "
        f"({'quick' if plan.quick else 'full'}; {os.cpu_count()} CPUs, load {load[0]:.2f})"
    )
    interrupted = False
    results["versions"]["kafka"] = "-"
    try:
        for index, name in enumerate(plan.scenarios, start=1):
            if name in STACKLESS:
                progress(f"[{index}/{len(plan.scenarios)}] {name}")
                scenarios[name] = _run_scenario(name, partial(STACKLESS_RUNNERS[name], plan))
        if set(plan.scenarios) - STACKLESS:
            with tempfile.TemporaryDirectory(prefix="modelbus-bench-") as temporary:
                work_dir = Path(temporary)
                model = train_model()
                results["parameters"]["model"] = model.parameters
                records = request_records(model, plan.messages, seed=1, run="req")
                progress(f"model trained; {len(records):,} distinct requests encoded")
                with bench_stack(work_dir, run_id, model) as stack:
                    results["versions"]["kafka"] = stack.kafka_version
                    if args.profile is not None:
                        stack.profile_dir = args.profile.resolve()
                        py_spy_path()  # fail now, not after the warm-up
                        results["parameters"]["profiled_with_py_spy"] = str(stack.profile_dir)
                    if set(plan.scenarios) - {"mlserver_peer"}:
                        warm = warm_up_broker(stack, records, plan)
                        results["parameters"]["broker_warm_up"] = warm
                    context = Context(stack=stack, plan=plan, records=records)
                    for index, name in enumerate(plan.scenarios, start=1):
                        if name in STACKLESS:
                            continue
                        progress(f"[{index}/{len(plan.scenarios)}] {name}")
                        scenarios[name] = _run_scenario(name, partial(RUNNERS[name], context))
                    progress("stopping the broker and the registry")
    except KeyboardInterrupt:
        interrupted = True
        progress("interrupted: everything the bench started has been stopped")
    results["run_seconds"] = round(time.monotonic() - started, 1)
    if interrupted and not scenarios:
        return 130
    results["summary"] = summarise(scenarios)
    results["notes"] = notes_for(results)
    if interrupted:
        results["notes"].append("Interrupted before every scenario had run.")
    markdown = render_markdown(results)
    stamp = started_at.strftime("%Y%m%d-%H%M%S")
    failed = any(scenario_failed(result) for result in scenarios.values())
    complete = (
        not (interrupted or failed or plan.quick or args.profile) and plan.scenarios == SCENARIOS
    )
    written = write_results(results, markdown, stamp, as_latest=complete)
    print(markdown)
    progress("results: " + ", ".join(str(path.relative_to(REPO_ROOT)) for path in written))
    if not complete:
        progress("   (only complete, unprofiled full runs replace latest.json and latest.md)")
    if interrupted:
        return 130
    checks_failed = any(
        target["met"] is False and "exactly one ok prediction" in target["target"]
        for target in results["summary"]["targets"]
    )
    return 1 if failed or checks_failed else 0


if __name__ == "__main__":
    sys.exit(main())
