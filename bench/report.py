"""Progress lines while the bench runs; the JSON and Markdown results afterwards."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import orjson

from bench.drift_concept_summary import drift_concept_tables
from bench.drift_data import drift_data_table
from bench.drift_throughput_summary import drift_throughput_rows, drift_throughput_table

_STARTED = time.monotonic()
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def progress(message: str) -> None:
    """One progress line, prefixed with the time since the bench started."""
    elapsed = time.monotonic() - _STARTED
    print(f"[{int(elapsed // 60):02d}:{elapsed % 60:04.1f}] {message}", flush=True)


def write_results(
    results: dict[str, Any], markdown: str, stamp: str, *, as_latest: bool
) -> list[Path]:
    """bench/results/<stamp>.json and .md, and with `as_latest` also latest.json and
    latest.md (only complete full runs replace the figures the README quotes)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n"
    text = markdown.encode()
    outputs = [(RESULTS_DIR / f"{stamp}.json", data), (RESULTS_DIR / f"{stamp}.md", text)]
    if as_latest:
        outputs += [(RESULTS_DIR / "latest.json", data), (RESULTS_DIR / "latest.md", text)]
    written = []
    for path, content in outputs:
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_bytes(content)
        temporary.replace(path)
        written.append(path)
    return written


# -- Markdown -------------------------------------------------------------------------------


def _n(value: Any, digits: int = 0) -> str:
    """A number for a table: thousands separators, '-' when absent."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _cpu(cpu: dict[str, float], *names: str) -> str:
    parts = [f"{name.replace('_', ' ')} {cpu[name]:.1f}" for name in names if name in cpu]
    return ", ".join(parts) if parts else "-"


def _cpu_all(cpu: dict[str, float]) -> str:
    return _cpu(cpu, *cpu)


def render_markdown(results: dict[str, Any]) -> str:
    scenarios: dict[str, Any] = results["scenarios"]
    summary: dict[str, Any] = results["summary"]
    versions: dict[str, Any] = results["versions"]
    machine: dict[str, Any] = results["machine"]
    out: list[str] = ["## Benchmarks", ""]
    mode = "quick run" if results["parameters"]["quick"] else "full run"
    dirty = " (with uncommitted changes)" if versions["git_dirty"] else ""
    out.append(
        f"{results['started_at']} · {mode} in {results['run_seconds']:.0f} s · commit "
        f"`{versions['git_commit'][:12]}`{dirty}"
        f" · {machine['cpu_count']} CPUs ({machine['cpu_model']}) · Kafka {versions['kafka']} · "
        f"aiokafka {versions['aiokafka']} · MLServer {versions.get('mlserver', '-')} · "
        f"Python {versions['python']} · scikit-learn {versions['scikit_learn']}"
    )
    out.append("")
    out.extend(_scenario_table(scenarios, summary))
    out.append("")
    out.extend(_targets_table(summary))
    latency = scenarios.get("latency_1000rps")
    if latency and "error" not in latency:
        out.append("")
        out.extend(_latency_section(latency))
    drift = scenarios.get("drift")
    if drift and "error" not in drift:
        out.extend(["", "Drift process against one inference worker (20 features):", ""])
        out.extend(drift_throughput_table(drift))
    drift_data = scenarios.get("drift-data")
    if drift_data and "error" not in drift_data:
        out.extend(["", "Data drift, delays in events (detection rate, median, p90):", ""])
        out.extend(drift_data_table(drift_data))
    concept = scenarios.get("drift-concept")
    if concept and "error" not in concept:
        out.append("")
        out.extend(drift_concept_tables(concept))
    if summary.get("per_cpu_second"):
        out.append("")
        out.extend(_efficiency_section(summary["per_cpu_second"], scenarios.get("mlserver_peer")))
    out.append("")
    out.append("Notes:")
    out.extend(f"- {note}" for note in results["notes"])
    return "\n".join(out) + "\n"


def _scenario_table(scenarios: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    rows: list[list[str]] = []
    for name, result in scenarios.items():  # in the order they ran
        if "error" in result:
            rows.append(
                [name, "-", "-", "-", "-", "-", "-", f"**failed**: {result['error'][:160]}"]
            )
            continue
        if name == "scaling":
            for run in result["runs"]:
                rows.append(_throughput_row(f"scaling: {run['workers']} worker(s)", run, ""))
            continue
        if name == "feedback":
            rows.extend(_feedback_rows(result))
            continue
        if name == "drift":
            rows.extend(drift_throughput_rows(result))
            continue
        if name in ("drift-data", "drift-concept"):
            rows.append([name, "-", _n(result["seconds"], 1), "-", "-", "-", "-", "see below"])
            continue
        if name == "mlserver_peer":
            best = result["best"]
            rows.append(
                [
                    "mlserver_peer (best run)",
                    _n(best["requests"]),
                    _n(best["seconds"], 1),
                    _n(best["per_second"]),
                    f"mlserver {best['cpu_seconds']:.1f}, "
                    f"load generator {best['load_generator_cpu_seconds']:.1f}",
                    "-",
                    _other(best),
                    f"{best['connections']} connections, {best['config'].split(' (')[0]}, "
                    f"p99 {best['latency_p99_ms']} ms",
                ]
            )
            continue
        if name == "latency_1000rps":
            to_prediction = result["publish_to_prediction"]
            rows.append(
                [
                    name,
                    _n(result["messages"]),
                    _n(result["seconds"], 1),
                    f"{_n(result['achieved_rate'])} (paced)",
                    _cpu(result["cpu_seconds"], "worker", "delivery", "receiver", "bench_process"),
                    _n(result["cpu_seconds"].get("broker"), 1),
                    _other(result),
                    f"p99 to prediction {to_prediction['p99_ms']} ms, to webhook "
                    f"{result['publish_to_webhook']['p99_ms']} ms",
                ]
            )
            continue
        note = ""
        if name == "e2e_at_least_once" and summary.get("e2e_vs_raw_loop") is not None:
            note = f"{summary['e2e_vs_raw_loop']:.2f}x raw_loop"
            if "paired_raw_loop" in result:
                note += " (median round, each against a raw loop run just before it)"
        if name == "e2e_exactly_once" and summary.get("exactly_once_vs_at_least_once"):
            note = f"{summary['exactly_once_vs_at_least_once']:.2f}x at-least-once"
        if name == "raw_loop":
            note = "no model: produce + consume in one process"
        rows.append(_throughput_row(name, result, note))
    return _table(
        [
            "scenario",
            "messages",
            "seconds",
            "per second",
            "CPU s",
            "broker CPU s",
            "other load",
            "notes",
        ],
        rows,
        "lrrrrrrl",
    )


def _feedback_rows(result: dict[str, Any]) -> list[list[str]]:
    """Per store: the ingest (messages = predictions, each with its request), the join
    (messages = feedback) and, where measured, the RSS with many predictions retained."""
    rows: list[list[str]] = []
    for backend, figures in result["backends"].items():
        if "error" in figures:
            failure = f"**failed**: {figures['error'][:160]}"
            rows.append([f"feedback ({backend})", "-", "-", "-", "-", "-", "-", failure])
            continue
        ingest, join = figures["ingest"], figures["join"]
        rows.append(
            [
                f"feedback ingest ({backend})",
                _n(ingest["measured_records"] // 2),
                _n(ingest["seconds"], 2),
                _n(ingest["predictions_per_second"]),
                _cpu(ingest["cpu_seconds"], "feedback", "postgresql", "bench_process"),
                _n(ingest["cpu_seconds"].get("broker"), 1),
                _other(ingest),
                f"{ingest['ratio_to_worker']:.2f}x the worker's "
                f"{figures['worker']['per_second']:,.0f} predictions/s (run just before); "
                f"{ingest['records_per_second']:,.0f} records/s (request + prediction); "
                f"{ingest['cpu_us_per_message']['feedback']:.0f} µs feedback CPU per "
                f"prediction; RSS {ingest['store']['rss_mb']:,.0f} MB",
            ]
        )
        rows.append(
            [
                f"feedback join ({backend})",
                _n(join["joined"]),
                _n(join["seconds"], 2),
                _n(join["joined_per_second"]),
                _cpu(join["cpu_seconds"], "feedback", "postgresql", "bench_process"),
                _n(join["cpu_seconds"].get("broker"), 1),
                _other(join),
                f"{join['cpu_us_per_message']['feedback']:.0f} µs feedback CPU per label; "
                f"{join['labels']:,} labels, {join['dead_letters']} dead letters",
            ]
        )
        retained = figures.get("retained")
        if retained:
            store = retained["store"]
            rows.append(
                [
                    f"feedback retained ({backend})",
                    _n(store["rows"]["predictions"]),
                    _n(retained["seconds"], 1),
                    "-",
                    "-",
                    "-",
                    "-",
                    f"RSS {store['rss_mb']:,.0f} MB (peak {store['peak_rss_mb']:,.0f} MB), "
                    f"database {store['database_mb']:,.0f} MB",
                ]
            )
    return rows


def _other(result: dict[str, Any]) -> str:
    """Cores other processes on the machine used during the measurement."""
    other = result.get("other_processes_cores_busy")
    return "-" if other is None else f"{other:.2f} cores"


def _throughput_row(name: str, result: dict[str, Any], note: str) -> list[str]:
    check = result.get("check", {})
    cache = result.get("cache", {})
    extras = [note] if note else []
    if check:
        extras.append(
            "every request answered once, ok"
            if check.get("every_request_answered_once") and not check.get("not_ok")
            else f"**check failed**: {check}"
        )
    if cache.get("hit_rate") is not None:
        extras.append(f"cache hit rate {cache['hit_rate']:.0%}")
    return [
        name,
        _n(result["messages"]),
        _n(result["seconds"], 2),
        _n(result["per_second"]),
        _cpu(result["cpu_seconds"], "workers", "bench_process"),
        _n(result["cpu_seconds"].get("broker"), 1),
        _other(result),
        "; ".join(extras),
    ]


def _targets_table(summary: dict[str, Any]) -> list[str]:
    rows = []
    for target in summary["targets"]:
        met = target["met"]
        rows.append(
            [
                target["target"],
                target["measured"],
                "-" if met is None else ("yes" if met else "**no**"),
            ]
        )
    return _table(["target", "measured", "met"], rows, "lll")


def _bucket_bound(le: str) -> float:
    return math.inf if le == "+Inf" else float(le)


def _latency_section(latency: dict[str, Any]) -> list[str]:
    out = [
        f"Latency at {_n(latency['achieved_rate'])} requests/s for {latency['seconds']:.0f} s "
        "(one worker, webhooks through the delivery service to a signature-verifying "
        "receiver in its own process):",
        "",
    ]
    rows = []
    alone = latency.get("worker_alone", {})
    for label, stats in (
        ("publish → prediction read", latency["publish_to_prediction"]),
        ("publish → webhook received", latency.get("publish_to_webhook")),
        ("worker-reported (created_at → answer)", latency["worker_reported_latency"]),
        (
            "worker alone, no callbacks, no delivery: publish → prediction read",
            alone.get("publish_to_prediction"),
        ),
        ("worker alone: worker-reported", alone.get("worker_reported_latency")),
    ):
        if not stats:
            continue
        rows.append(
            [
                label,
                _n(stats["count"]),
                _n(stats["p50_ms"], 1),
                _n(stats["p95_ms"], 1),
                _n(stats["p99_ms"], 1),
                _n(stats["max_ms"], 1),
            ]
        )
    out.extend(_table(["path", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows, "lrrrrr"))
    for label, phase in (("with delivery", latency), ("worker alone", alone)):
        histogram = phase.get("worker_batch_size_histogram") or {}
        if histogram:
            ordered = sorted(histogram.items(), key=lambda item: _bucket_bound(item[0]))
            buckets = ", ".join(f"≤{le}: {count}" for le, count in ordered if count)
            out.extend(
                ["", f"Worker micro-batch sizes {label} (batches per size bucket): {buckets}."]
            )
    if alone:
        out.extend(
            [
                "",
                f"CPU seconds with delivery: {_cpu_all(latency['cpu_seconds'])}; "
                f"worker alone: {_cpu_all(alone['cpu_seconds'])}.",
            ]
        )
    return out


def _efficiency_section(per_cpu: dict[str, Any], peer: dict[str, Any] | None) -> list[str]:
    out = [
        "Predictions per CPU-second (predictions/s ÷ CPU cores busy; the load generators' "
        "CPU is excluded on both sides):",
        "",
    ]
    rows = [
        [entry["system"], _n(entry["per_second"]), _n(entry["cores_busy"], 2), _n(entry["value"])]
        for entry in per_cpu["rows"]
    ]
    out.extend(_table(["system", "predictions/s", "cores busy", "per CPU-second"], rows, "lrrr"))
    if peer and "runs" in peer:
        runs = ", ".join(
            f"{run['config'].split(' (')[0]} c={run['connections']}: {run['per_second']:,.0f}/s "
            f"at {run['per_cpu_second']:,.0f}/CPU-s"
            for run in peer["runs"]
        )
        out.extend(["", f"All MLServer runs: {runs}."])
    return out
