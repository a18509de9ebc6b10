"""The run's verdicts: ratios between scenarios, targets met or not, and notes that say
what the numbers mean (and where the time went)."""

from __future__ import annotations

import os
from typing import Any

from bench.drift_concept_summary import drift_concept_targets
from bench.drift_data import drift_data_note, drift_data_targets
from bench.drift_throughput_summary import drift_throughput_note, drift_throughput_targets

E2E_TARGET_RATIO = 0.5
LATENCY_P99_TARGET_MS = 50.0
PER_CORE_TARGET_RATIO = 10.0
FEEDBACK_INGEST_TARGET_RATIO = 1.0
FEEDBACK_JOIN_TARGET_PER_SECOND = 10_000
FEEDBACK_RSS_TARGET_MB = 500.0
FEEDBACK_RSS_RETAINED = 1_000_000


def _ok(result: dict[str, Any] | None) -> bool:
    return result is not None and "error" not in result


def summarise(scenarios: dict[str, Any]) -> dict[str, Any]:
    """Ratios between scenarios and the targets they are held to."""
    raw = scenarios.get("raw_loop")
    alo = scenarios.get("e2e_at_least_once")
    eos = scenarios.get("e2e_exactly_once")
    latency = scenarios.get("latency_1000rps")
    peer = scenarios.get("mlserver_peer")
    summary: dict[str, Any] = {"targets": []}
    targets: list[dict[str, Any]] = summary["targets"]

    # The ceiling: the raw loop run just before the end-to-end run (paired rounds), else
    # the standalone raw_loop scenario.
    ceiling = alo.get("paired_raw_loop", raw) if alo is not None and _ok(alo) else None
    if alo is not None and ceiling is not None and _ok(ceiling):
        ratio = round(alo["per_second"] / ceiling["per_second"], 3)
        how = ""
        if "rounds" in alo:
            rounds = ", ".join(f"{entry['ratio']:.2f}x" for entry in alo["rounds"])
            how = f" measured just before; median of rounds {rounds}"
        summary["e2e_vs_raw_loop"] = ratio
        targets.append(
            {
                "target": f"e2e at-least-once ≥ {E2E_TARGET_RATIO}x raw_loop",
                "measured": f"{ratio:.2f}x ({alo['per_second']:,.0f} vs "
                f"{ceiling['per_second']:,.0f} msgs/s{how})",
                "met": ratio >= E2E_TARGET_RATIO,
            }
        )
    relay = alo.get("paired_relay") if alo is not None and _ok(alo) else None
    if alo is not None and relay is not None and _ok(relay) and _ok(ceiling):
        assert ceiling is not None
        rounds = ", ".join(f"{entry['relay_ratio']:.2f}x" for entry in alo["rounds"])
        summary["relay_vs_raw_loop"] = round(relay["per_second"] / ceiling["per_second"], 3)
        summary["e2e_vs_relay"] = round(alo["per_second"] / relay["per_second"], 3)
        targets.append(
            {
                "target": "relay (two hops, no model) vs raw_loop: the transport ceiling of "
                "the end-to-end path (reported, no target)",
                "measured": f"{summary['relay_vs_raw_loop']:.2f}x ({relay['per_second']:,.0f} "
                f"vs {ceiling['per_second']:,.0f} msgs/s; rounds {rounds})",
                "met": None,
            }
        )
        targets.append(
            {
                "target": "e2e at-least-once vs relay: what serving keeps of the two-hop "
                "ceiling (reported, no target)",
                "measured": f"{summary['e2e_vs_relay']:.2f}x ({alo['per_second']:,.0f} vs "
                f"{relay['per_second']:,.0f} msgs/s)",
                "met": None,
            }
        )
    if _ok(alo) and _ok(eos):
        assert alo is not None and eos is not None
        ratio = round(eos["per_second"] / alo["per_second"], 3)
        summary["exactly_once_vs_at_least_once"] = ratio
        targets.append(
            {
                "target": "exactly-once vs at-least-once (reported, no target)",
                "measured": f"{ratio:.2f}x ({eos['per_second']:,.0f} vs "
                f"{alo['per_second']:,.0f} predictions/s)",
                "met": None,
            }
        )
    if _ok(latency):
        assert latency is not None
        p99 = latency["publish_to_prediction"]["p99_ms"]
        targets.append(
            {
                "target": f"p99 publish → prediction < {LATENCY_P99_TARGET_MS:.0f} ms at "
                f"{latency['target_rate']:,}/s",
                "measured": f"{p99} ms (achieved {latency['achieved_rate']:,.0f}/s, "
                f"p50 {latency['publish_to_prediction']['p50_ms']} ms)",
                "met": latency["predictions_complete"] and p99 < LATENCY_P99_TARGET_MS,
            }
        )
        alone = latency.get("worker_alone")
        if alone:
            p99_alone = alone["publish_to_prediction"]["p99_ms"]
            targets.append(
                {
                    "target": f"the same with the worker alone (no callbacks, no delivery "
                    f"service): p99 < {LATENCY_P99_TARGET_MS:.0f} ms",
                    "measured": f"{p99_alone} ms (achieved {alone['achieved_rate']:,.0f}/s, "
                    f"p50 {alone['publish_to_prediction']['p50_ms']} ms)",
                    "met": alone["predictions_complete"] and p99_alone < LATENCY_P99_TARGET_MS,
                }
            )
    for name in ("e2e_at_least_once", "e2e_exactly_once"):
        result = scenarios.get(name)
        if _ok(result):
            assert result is not None
            check = result["check"]
            targets.append(
                {
                    "target": f"{name}: every request id has exactly one ok prediction",
                    "measured": f"missing {check['missing']}, duplicates "
                    f"{check['duplicates']}, not ok {check['not_ok']}",
                    "met": check["every_request_answered_once"] and check["not_ok"] == 0,
                }
            )
    if _ok(alo):
        assert alo is not None
        summary["per_cpu_second"] = _per_cpu_second(alo, peer if _ok(peer) else None)
        ratios = summary["per_cpu_second"].get("ratios")
        if ratios:
            targets.append(
                {
                    "target": f"modelbus ≥ {PER_CORE_TARGET_RATIO:.0f}x MLServer predictions "
                    "per CPU-second",
                    "measured": f"{ratios['worker_vs_peer_best']:.1f}x (worker only); "
                    f"{ratios['worker_and_broker_vs_peer_best']:.1f}x counting the broker",
                    "met": ratios["worker_vs_peer_best"] >= PER_CORE_TARGET_RATIO,
                }
            )
    feedback = scenarios.get("feedback")
    if _ok(feedback):
        assert feedback is not None
        targets.extend(_feedback_targets(feedback))
    drift = scenarios.get("drift")
    if _ok(drift):
        assert drift is not None
        targets.extend(drift_throughput_targets(drift))
    drift_data = scenarios.get("drift-data")
    if _ok(drift_data):
        assert drift_data is not None
        targets.extend(drift_data_targets(drift_data))
    concept = scenarios.get("drift-concept")
    if _ok(concept):
        assert concept is not None
        targets.extend(drift_concept_targets(concept))
    return summary


def _feedback_targets(feedback: dict[str, Any]) -> list[dict[str, Any]]:
    """Per store: ingest against the worker of the same run, the join rate; and the RSS
    with a million predictions retained (held to its target only at that size)."""
    targets: list[dict[str, Any]] = []
    for backend, figures in feedback["backends"].items():
        if "error" in figures:
            targets.append(
                {
                    "target": f"feedback on {backend}",
                    "measured": f"failed: {figures['error'][:200]}",
                    "met": False,
                }
            )
            continue
        ingest, join, worker = figures["ingest"], figures["join"], figures["worker"]
        targets.append(
            {
                "target": f"feedback ingest ({backend}) ≥ {FEEDBACK_INGEST_TARGET_RATIO:.1f}x one "
                "inference worker's predictions/s (measured just before)",
                "measured": f"{ingest['ratio_to_worker']:.2f}x "
                f"({ingest['predictions_per_second']:,.0f} vs {worker['per_second']:,.0f} "
                f"predictions/s){_cpu_ratio(ingest, worker)}",
                "met": ingest["ratio_to_worker"] >= FEEDBACK_INGEST_TARGET_RATIO,
            }
        )
        complete = join["labels"] == join["feedback"] and join["dead_letters"] == 0
        targets.append(
            {
                "target": f"feedback join ({backend}) ≥ {FEEDBACK_JOIN_TARGET_PER_SECOND:,} "
                "feedback/s, one label each",
                "measured": f"{join['joined_per_second']:,.0f}/s "
                f"({join['cpu_us_per_message']['feedback']:.0f} µs of CPU per label; "
                f"{join['labels']:,} labels for {join['feedback']:,} feedback, "
                f"{join['dead_letters']} dead letters)",
                "met": complete and join["joined_per_second"] >= FEEDBACK_JOIN_TARGET_PER_SECOND,
            }
        )
        retained = figures.get("retained")
        if retained:
            store = retained["store"]
            count = store["rows"]["predictions"]
            targets.append(
                {
                    "target": f"feedback RSS ({backend}) < {FEEDBACK_RSS_TARGET_MB:.0f} MB with "
                    f"{FEEDBACK_RSS_RETAINED:,} predictions retained",
                    "measured": f"{store['rss_mb']:,.0f} MB (peak {store['peak_rss_mb']:,.0f}) "
                    f"with {count:,} retained; database {store['database_mb']:,.0f} MB",
                    "met": store["peak_rss_mb"] < FEEDBACK_RSS_TARGET_MB
                    if count >= FEEDBACK_RSS_RETAINED
                    else None,
                }
            )
    return targets


def _cpu_ratio(ingest: dict[str, Any], worker: dict[str, Any]) -> str:
    """'; CPU per prediction 90 µs vs the worker's 45 µs: 0.50x on a core each'."""
    ratio = ingest.get("cpu_ratio_to_worker")
    own = ingest["cpu_us_per_message"]["feedback"]
    if ratio is None:
        return f"; {own:.0f} µs of feedback-process CPU per prediction with its request"
    return (
        f"; CPU per prediction with its request {own:.0f} µs vs the worker's "
        f"{worker['cpu_us_per_prediction']:.0f} µs: {ratio:.2f}x on a core each"
    )


def _per_cpu_second(alo: dict[str, Any], peer: dict[str, Any] | None) -> dict[str, Any]:
    seconds = alo["seconds"]
    answered = alo["answered"]
    worker_cpu = alo["cpu_seconds"]["workers"]
    with_broker = worker_cpu + alo["cpu_seconds"]["broker"]
    rows = [
        {
            "system": "modelbus: 1 worker process (e2e_at_least_once)",
            "per_second": alo["per_second"],
            "cores_busy": round(worker_cpu / seconds, 2),
            "value": round(answered / worker_cpu, 1),
        },
        {
            "system": "modelbus: 1 worker + the Kafka broker",
            "per_second": alo["per_second"],
            "cores_busy": round(with_broker / seconds, 2),
            "value": round(answered / with_broker, 1),
        },
    ]
    table: dict[str, Any] = {"rows": rows}
    if peer is not None:
        best, efficient = peer["best"], peer["most_cpu_efficient"]
        for label, run in (("best run", best), ("most CPU-efficient run", efficient)):
            if label != "best run" and run is best:
                continue
            rows.append(
                {
                    "system": f"MLServer {label}: {run['connections']} connections, "
                    f"{run['config'].split(' (')[0]}",
                    "per_second": run["per_second"],
                    "cores_busy": run["cores_busy"],
                    "value": run["per_cpu_second"],
                }
            )
        table["ratios"] = {
            "worker_vs_peer_best": round(rows[0]["value"] / best["per_cpu_second"], 2),
            "worker_and_broker_vs_peer_best": round(rows[1]["value"] / best["per_cpu_second"], 2),
            "worker_vs_peer_most_efficient": round(
                rows[0]["value"] / efficient["per_cpu_second"], 2
            ),
        }
    return table


PROCESS_NAMES = {
    "workers": "worker",
    "worker": "worker",
    "broker": "broker",
    "bench_process": "bench",
    "delivery": "delivery",
    "feedback": "feedback",
    "drift": "drift",
}


def _label(name: str) -> str:
    return PROCESS_NAMES.get(name, name.replace("_", " "))


def _busy(result: dict[str, Any]) -> str:
    """'worker 0.83, broker 0.60, bench 0.31 (total 1.74)'."""
    parts = [f"{_label(name)} {value:.2f}" for name, value in result["cores_busy"].items()]
    other = result.get("other_processes_cores_busy")
    total = f"total {result['cores_busy_total']:.2f}"
    if other:
        total += f", other load {other:.2f}"
    return ", ".join(parts) + f" ({total})"


def _per_message(result: dict[str, Any]) -> str:
    parts = [
        f"{_label(name)} {value:.0f} µs" for name, value in result["cpu_us_per_message"].items()
    ]
    return ", ".join(parts)


def notes_for(results: dict[str, Any]) -> list[str]:
    """Honest notes: the conditions, the definitions, and what each result is bound by."""
    machine = results["machine"]
    scenarios: dict[str, Any] = results["scenarios"]
    parameters = results["parameters"]
    cores = machine["cpu_count"]
    notes = [
        f"One machine with {cores} CPU cores shared by the Kafka broker, the services under "
        "test and the load generator (the bench process, or wrk), over loopback: absolute "
        "figures are noisy from run to run; compare the ratios of one run.",
        f"Load average when the bench started: {machine['load_average_at_start']} (1, 5, 15 "
        "min). 'Other load' is the CPU the machine spent outside the measured processes during "
        "each measurement (from /proc/stat: other programs, the kernel's own network work); "
        "where it is high, that scenario's figures are depressed.",
        "Requests are random training rows plus small noise: every input is distinct, so the "
        "workers' result cache cannot help (hit rate reported per run, from /metrics).",
        "Throughput = requests / (last prediction read - first request sent). The bench "
        "publishes all requests at once with the platform's producer settings (acks=all, "
        "idempotent, linger 5 ms, batches up to 256 KiB as the worker's), packing them into "
        "one batch per partition by key as the worker does with its outputs (per-record "
        "send() would make the bench the bottleneck), and reads `predictions` in the same "
        "process (read_committed for exactly-once). Each run starts fresh workers on a fresh "
        "topic prefix and warms them up with one request per partition. Before any scenario, "
        "unmeasured raw loops run until the broker's CPU per message settles: a fresh JVM "
        "needs tens of seconds of load before its CPU per message stops falling "
        "(`parameters.broker_warm_up`). The machine's speed still drifts from minute to "
        "minute (the same raw loop ranged 40,000-100,000 msgs/s within one session), so "
        "e2e_at_least_once runs in rounds, each right after a raw loop of its own, and the "
        "round with the median ratio is reported (`rounds` in the JSON).",
    ]
    raw = scenarios.get("raw_loop")
    if _ok(raw):
        assert raw is not None
        notes.append(
            "raw_loop (transport ceiling): the same records produced and consumed in one "
            "Python process (consumer group, commit per batch), no model, one hop. Cores "
            f"busy: {_busy(raw)}."
        )
    alo = scenarios.get("e2e_at_least_once")
    if _ok(alo):
        assert alo is not None
        notes.append(
            "Where the time goes in e2e_at_least_once: cores busy "
            f"{_busy(alo)} of {cores}; CPU per prediction: {_per_message(alo)} (the broker "
            "carries each message twice: request and prediction). "
            + _bottleneck(alo, cores or 1)
            + _what_the_target_needs(alo.get("paired_raw_loop", raw), alo)
        )
        relay = alo.get("paired_relay")
        if _ok(relay):
            notes.append(_relay_note(relay, alo))
    eos = scenarios.get("e2e_exactly_once")
    if _ok(eos) and _ok(alo):
        assert eos is not None and alo is not None
        notes.append(
            "Exactly-once costs mostly broker work (one transaction per micro-batch, "
            "read_committed reads): broker CPU per prediction "
            f"{eos['cpu_us_per_message']['broker']:.0f} µs vs "
            f"{alo['cpu_us_per_message']['broker']:.0f} µs at-least-once; worker "
            f"{eos['cpu_us_per_message']['workers']:.0f} vs "
            f"{alo['cpu_us_per_message']['workers']:.0f} µs."
        )
    latency = scenarios.get("latency_1000rps")
    if _ok(latency):
        assert latency is not None
        notes.extend(_latency_notes(latency))
    notes.append(
        "Predictions per CPU-second = predictions/s ÷ (CPU seconds ÷ wall seconds) of the "
        "serving processes: modelbus = the worker process (and, in a second row, plus the "
        "broker JVM, which also carries the bench's traffic); MLServer = its whole process "
        "tree. The load generator's CPU counts on neither side."
    )
    peer = scenarios.get("mlserver_peer")
    if peer is not None and "error" not in peer:
        notes.append(_peer_note(peer, parameters))
        notes.extend(peer.get("notes", []))
    scaling = scenarios.get("scaling")
    if _ok(scaling):
        assert scaling is not None
        notes.append(_scaling_note(scaling))
    feedback = scenarios.get("feedback")
    if _ok(feedback):
        assert feedback is not None
        notes.extend(_feedback_notes(feedback, cores))
    drift = scenarios.get("drift")
    if _ok(drift):
        assert drift is not None
        notes.append(drift_throughput_note(drift))
    drift_data = scenarios.get("drift-data")
    if _ok(drift_data):
        assert drift_data is not None
        notes.append(drift_data_note(drift_data))
    failed = [name for name, result in scenarios.items() if "error" in result]
    if failed:
        notes.append(f"Failed scenarios: {', '.join(failed)} (see `error` in the JSON).")
    if parameters["quick"]:
        notes.append("Quick run (smaller counts): a smoke test, not figures to publish.")
    if parameters.get("profiled_with_py_spy"):
        notes.append(
            "Profiled run: py-spy sampled the services during the measured windows and "
            f"shared the cores (samples in `{parameters['profiled_with_py_spy']}`); "
            "its figures are slower than an unprofiled run's."
        )
    return notes


def _feedback_notes(feedback: dict[str, Any], cores: int) -> list[str]:
    """How the feedback figures were taken, and where each backend's CPU went."""
    notes = [
        f"feedback: {feedback['pairs']:,} requests with their production predictions (the "
        "bench model's inputs and probabilities, encoded by the gateway's contract and the "
        "worker's own PredictionEncoder) are in `requests` and `predictions` before one "
        "`modelbus feedback run` process starts on an empty store (default feedback policy, "
        f"no registry). Ingest = records committed by its consumer group ÷ the time from "
        "the first commit seen to the last (polled every 50 ms; start-up and the first "
        "batch excluded); predictions/s counts each prediction with its request (two "
        "records). It is compared with one inference worker answering "
        f"{feedback['worker_requests']:,} requests end to end (as in e2e_at_least_once) "
        "right before each ingest, so both rates meet the same state of the machine; the "
        "ratio of CPU per prediction says what the rates would be with a core each. Join = "
        f"{feedback['feedback']:,} explicit labels for stored requests published at once; "
        "joined/s = feedback joined (the service's counter) ÷ the time from the first "
        "feedback sent to the last label on `labels`. RSS is VmRSS (peak: VmHWM) from "
        f"/proc. All on {cores} cores shared by the broker, the feedback process, the "
        "bench (which publishes the feedback and polls offsets during the join) and, for "
        "PostgreSQL, its server: the project's disposable cluster from infra/postgres "
        "(fsync and synchronous_commit off), whose CPU is counted as `postgresql`.",
    ]
    for backend, figures in feedback["backends"].items():
        if "error" in figures:
            continue
        ingest, join = figures["ingest"], figures["join"]
        line = (
            f"feedback on {backend}: ingest cores busy {_busy(ingest)}, CPU per prediction "
            f"{_per_message(ingest)}; join cores busy {_busy(join)}, CPU per label "
            f"{_per_message(join)}. After the ingest the store held "
            f"{ingest['store']['rows']['predictions']:,} predictions in "
            f"{ingest['store']['database_mb']:,.0f} MB, the process "
            f"{ingest['store']['rss_mb']:,.0f} MB resident."
        )
        retained = figures.get("retained")
        if retained:
            store = retained["store"]
            line += (
                f" With {store['rows']['predictions']:,} predictions retained (the rest "
                f"published while it ran, {retained['seconds']:.0f} s): RSS "
                f"{store['rss_mb']:,.0f} MB, peak {store['peak_rss_mb']:,.0f} MB, database "
                f"{store['database_mb']:,.0f} MB."
            )
        notes.append(line)
    return notes


def _relay_note(relay: dict[str, Any], alo: dict[str, Any]) -> str:
    """How the two-hop ceiling compares with the end-to-end run, cost by cost."""
    relay_cost = relay["cpu_us_per_message"]["relay"]
    worker_cost = alo["cpu_us_per_message"]["workers"]
    return (
        "relay (bench/relay.py, run in each round between the raw loop and the end-to-end "
        "run): the end-to-end path with the worker replaced by a process that only consumes "
        "`requests` and answers each record on `predictions` with a minimal ok record "
        "(same Kafka settings, micro-batches, batches in flight and in-order commits as the "
        f"worker), no decoding, validation, model or encoding. It reached "
        f"{relay['per_second']:,.0f} msgs/s; cores busy {_busy(relay)}; CPU per message "
        f"{_per_message(relay)}. The worker spent {worker_cost:.0f} µs per prediction "
        f"against the relay's {relay_cost:.0f} µs: ≈{worker_cost - relay_cost:.0f} µs is "
        "serving (decode and validate the request, predict, encode the answer with its "
        "CloudEvents headers) and the rest is the Kafka clients and the event loop, which "
        "any Python worker on aiokafka pays."
    )


def _bottleneck(result: dict[str, Any], cores: int) -> str:
    """Which limit the run hit: all cores, or one Python process at one core (the broker
    is a multi-threaded JVM, so one core of it is no limit)."""
    busy: dict[str, float] = result["cores_busy"]
    used = result["cores_busy_total"] + (result.get("other_processes_cores_busy") or 0.0)
    if used >= 0.9 * cores:
        return "All cores were busy: the machine was the limit."
    python_processes = {name: value for name, value in busy.items() if name != "broker"}
    name, value = max(python_processes.items(), key=lambda item: item[1])
    if value >= 0.8:
        return (
            f"The {_label(name)} process kept {value:.2f} of one core busy while "
            f"{cores - used:.2f} cores were idle: that single-threaded Python process was the "
            "limit."
        )
    return "Neither one process nor the machine's cores were saturated."


def _what_the_target_needs(raw: dict[str, Any] | None, alo: dict[str, Any]) -> str:
    """The worker CPU per prediction at which one worker would reach half the ceiling."""
    if not _ok(raw):
        return ""
    assert raw is not None
    needed = raw["per_second"] * E2E_TARGET_RATIO
    if alo["per_second"] >= needed:
        return ""
    budget = 1e6 / needed
    costs: dict[str, float] = alo["cpu_us_per_message"]
    total = sum(costs.values())
    cores = alo.get("cpu_count") or os.cpu_count() or 1
    return (
        f" To reach {E2E_TARGET_RATIO}x raw_loop ({needed:,.0f}/s) one worker process would "
        f"have to spend at most ≈{budget:.0f} µs of CPU per prediction (a whole core), "
        f"against {costs['workers']:.0f} µs measured. And all processes together spent "
        f"{total:.0f} µs of CPU per prediction, so {cores} cores cap this machine at "
        f"≈{cores * 1e6 / total:,.0f}/s whatever the schedule; {needed:,.0f}/s would need "
        f"at most {cores * 1e6 / needed:.0f} µs in total, of which the broker and the load "
        f"generator already spent {total - costs['workers']:.0f} µs, leaving the worker "
        f"{cores * 1e6 / needed - (total - costs['workers']):.0f} µs."
        if cores * 1e6 / needed < total
        else f" To reach {E2E_TARGET_RATIO}x raw_loop ({needed:,.0f}/s) one worker process "
        f"would have to spend at most ≈{budget:.0f} µs of CPU per prediction (a whole core), "
        f"against {costs['workers']:.0f} µs measured."
    )


def _peer_note(peer: dict[str, Any], parameters: dict[str, Any]) -> str:
    runs = (
        f"each at {', '.join(str(c) for c in parameters['peer_concurrencies'])} connections "
        f"for {parameters['peer_seconds']:g} s after a 2 s warm-up, load by "
        f"{peer['load_generator']}; the highest-rate run is compared."
    )
    batching = peer.get("adaptive_batching")
    if batching is None:
        return f"{peer['peer']}: {runs}"
    configs = sorted({run["config"] for run in peer["runs"]})
    return (
        f"{peer['peer']}: debug off (no per-request access log), metrics server off, gRPC on "
        "a free port (it cannot be turned off); adaptive batching max_batch_size "
        f"{batching['max_batch_size']}, max_batch_time "
        f"{batching['max_batch_time_seconds'] * 1000:g} ms; one row per request (batching "
        f"across requests is MLServer's job). Configurations: {'; '.join(configs)}; {runs} "
        "uvloop is pinned to 0.21.0 in its venv: with 0.22, MLServer 1.7.1's inference "
        "process dies at start (SeldonIO/MLServer#2286)."
    )


def _latency_notes(latency: dict[str, Any]) -> list[str]:
    notes = []
    alone = latency.get("worker_alone")
    if alone:
        with_delivery = latency["publish_to_prediction"]["p99_ms"]
        without = alone["publish_to_prediction"]["p99_ms"]
        notes.append(
            "Latency was measured twice on the same worker, each phase "
            f"{latency['seconds']:.0f} s at {latency['target_rate']:,}/s in bursts every 5 ms, "
            "after 2 s at the same rate that are not measured. "
            "(1) No callbacks, no delivery service: p99 publish → prediction "
            f"{without} ms (worker-reported {alone['worker_reported_latency']['p99_ms']} ms); "
            f"cores busy {_busy(alone)}. (2) A callback on every request, `modelbus delivery "
            "run` posting signed webhooks to the reference receiver (FastAPI, verifying every "
            "signature), which runs in its own process as a caller's server would: p99 "
            f"{with_delivery} ms (worker-reported "
            f"{latency['worker_reported_latency']['p99_ms']} ms); cores busy {_busy(latency)}."
            + (
                " The difference is contention for the 2 cores, which the delivery service and "
                "the receiver now share with the worker, the broker and the bench, not the "
                "worker's batching: its batches stay small in both phases."
                if with_delivery > without
                else ""
            )
        )
    received = latency.get("webhooks_received", 0)
    drain = latency.get("webhook_drain_seconds_after_last_send")
    if received and drain is not None:
        window = latency["seconds"] + drain
        metrics = latency.get("delivery_metrics", {})
        connects = metrics.get("modelbus_delivery_connect_attempts_total")
        rate = received / window
        behind = rate < 0.98 * latency["target_rate"]
        webhook = latency["publish_to_webhook"]
        notes.append(
            f"The delivery service delivered {received:,} webhooks in {window:.1f} s "
            f"(≈{rate:,.0f}/s while {latency['target_rate']:,} predictions/s arrived"
            + (f"; {connects:,.0f} TCP connections opened" if connects else "")
            + f"); publish → webhook p50 {webhook['p50_ms']:,.0f} ms, p99 "
            f"{webhook['p99_ms']:,.0f} ms"
            + (
                ": it fell behind the arrival rate, so its backlog, and with it the webhook "
                "latency, grew through the phase."
                if behind
                else "."
            )
        )
    return notes


def _scaling_note(scaling: dict[str, Any]) -> str:
    runs = scaling["runs"]
    cores = scaling["cpu_count"]
    rows = "; ".join(
        f"{run['workers']} worker(s): {run['per_second']:,.0f}/s (x{run['speedup_vs_1']:.2f}), "
        f"cores busy {_busy(run)}, worker CPU {run['cpu_us_per_message']['workers']:.0f} µs "
        "per prediction"
        for run in runs
    )
    return (
        f"Scaling on {cores} cores: {rows}. The broker, the bench and every worker share "
        f"these {cores} cores, and one worker alone already keeps about one of them busy, so "
        "more worker processes cannot add throughput here; each extra worker adds its own "
        "fetches, produce requests and commits, and the micro-batches get smaller. Workers "
        "share the partitions evenly (records per worker in the JSON); with more cores or "
        "machines each copy adds its own capacity, which this machine cannot show."
    )
