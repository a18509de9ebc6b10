"""The drift scenario's verdicts, table and note, read from its JSON (bench/results): one
drift process against one inference worker of the same run, and where its CPU goes."""

from __future__ import annotations

from typing import Any

TARGET_RATIO = 1.0
HEADLINE_CONFIGURATION = "requests"
"""The target names `requests`; the deployed configuration (with predictions) is shown
beside it."""


def _configurations(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return list(result["configurations"].items())


def drift_throughput_headline(result: dict[str, Any]) -> str:
    parts = []
    for name, figures in _configurations(result):
        if "error" in figures:
            parts.append(f"{name} failed: {figures['error'][:200]}")
            continue
        drain = figures["drain"]
        parts.append(
            f"{name}: {drain['requests_per_second']:,.0f} requests/s = "
            f"{drain['ratio_to_worker']:.2f}x the worker, "
            f"{drain['drift_cpu_us_per_feature_event']:.2f} µs CPU per feature-event"
        )
    return "; ".join(parts)


def drift_throughput_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One drift process keeps up with one worker, per configuration (the headline one
    is the target; the deployed one, with predictions, is held to the same bar)."""
    targets = []
    for name, figures in _configurations(result):
        label = f"drift throughput ({name}): one drift process ≥ {TARGET_RATIO:.1f}x one "
        label += "inference worker's requests/s (measured just before)"
        if "error" in figures:
            targets.append(
                {"target": label, "measured": f"failed: {figures['error'][:200]}", "met": False}
            )
            continue
        drain, worker = figures["drain"], figures["worker"]
        targets.append(
            {
                "target": label,
                "measured": f"{drain['ratio_to_worker']:.2f}x ({drain['requests_per_second']:,.0f}"
                f" vs {worker['per_second']:,.0f} requests/s); "
                f"{drain['drift_cpu_us_per_request']:.0f} µs drift CPU per request, "
                f"{drain['drift_cpu_us_per_feature_event']:.2f} µs per feature-event"
                f"{_cpu_ratio(drain, worker)}{_shares(drain)}"
                f"{'' if drain['every_record_measured'] else '; NOT every record was measured'}",
                "met": drain["ratio_to_worker"] >= TARGET_RATIO and drain["every_record_measured"],
            }
        )
    return targets


def _cpu_ratio(drain: dict[str, Any], worker: dict[str, Any]) -> str:
    ratio = drain.get("cpu_ratio_to_worker")
    if ratio is None:
        return ""
    return (
        f"; vs the worker's {worker['cpu_us_per_prediction']:.0f} µs per request: "
        f"{ratio:.2f}x on a core each"
    )


def _shares(drain: dict[str, Any]) -> str:
    """'; py-spy: sketcher 61%, judge 4%, fetching 17% of samples' (profiled runs only)."""
    shares = drain.get("profiled_shares")
    if not shares:
        return ""
    parts = ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    return f"; py-spy: {parts} of the process's samples"


def drift_throughput_rows(result: dict[str, Any]) -> list[list[str]]:
    """Rows of the scenarios table (name, messages, seconds, per second, CPU s, broker CPU
    s, other load, notes): messages are requests."""
    rows = []
    for name, figures in _configurations(result):
        if "error" in figures:
            failure = f"**failed**: {figures['error'][:160]}"
            rows.append([f"drift ({name})", "-", "-", "-", "-", "-", "-", failure])
            continue
        drain, worker = figures["drain"], figures["worker"]
        cpu = drain["cpu_seconds"]
        rows.append(
            [
                f"drift ({name})",
                f"{drain['measured_requests']:,}",
                f"{drain['seconds']:,.2f}",
                f"{drain['requests_per_second']:,.0f}",
                f"drift {cpu['drift']:.1f}, bench {cpu['bench_process']:.1f}",
                f"{cpu['broker']:.1f}",
                f"{drain.get('other_processes_cores_busy', 0):.2f} cores",
                f"{drain['ratio_to_worker']:.2f}x the worker's {worker['per_second']:,.0f} "
                f"requests/s (run just before); {drain['drift_cpu_us_per_request']:.0f} µs drift "
                f"CPU per request, {drain['drift_cpu_us_per_feature_event']:.2f} µs per "
                f"feature-event; RSS {drain.get('memory', {}).get('rss_mb', 0):,.0f} MB",
            ]
        )
    return rows


def drift_throughput_table(result: dict[str, Any]) -> list[str]:
    """The README table: rates, ratio, CPU per request and per feature-event, RSS."""
    lines = [
        "| drift process fed | requests/s | worker requests/s | ratio | ratio on a core each "
        "| drift CPU µs/request | µs/feature-event | sketches/s | cores busy: drift, broker, "
        "bench, other | RSS MB (peak) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, figures in _configurations(result):
        if "error" in figures:
            lines.append(f"| {name} | **failed**: {figures['error'][:120]} |" + " - |" * 8)
            continue
        drain, worker = figures["drain"], figures["worker"]
        busy = drain["cores_busy"]
        memory = drain.get("memory", {})
        cpu_ratio = drain.get("cpu_ratio_to_worker")
        lines.append(
            f"| {name} | {drain['requests_per_second']:,.0f} | {worker['per_second']:,.0f} "
            f"| {drain['ratio_to_worker']:.2f}x "
            f"| {'-' if cpu_ratio is None else f'{cpu_ratio:.2f}x'} "
            f"| {drain['drift_cpu_us_per_request']:.1f} "
            f"| {drain['drift_cpu_us_per_feature_event']:.2f} "
            f"| {drain['sketches_per_second']:,.0f} "
            f"| {busy.get('drift', 0):.2f}, {busy.get('broker', 0):.2f}, "
            f"{busy.get('bench_process', 0):.2f}, {drain.get('other_processes_cores_busy', 0):.2f} "
            f"| {memory.get('rss_mb', 0):,.0f} ({memory.get('peak_rss_mb', 0):,.0f}) |"
        )
    return lines


def drift_throughput_note(result: dict[str, Any]) -> str:
    return (
        f"drift (bench/drift_throughput.py): {result['requests']:,} requests of the bench "
        f"model ({result['model_features']} numeric features) are published before one "
        "`modelbus drift run` process starts (sketcher and judge in the one process, "
        "exactly-once, as deployed); 'requests' feeds it requests alone, "
        "'requests+predictions' also the worker's prediction of each (what a deployed drift "
        "process reads per request). requests/s = requests the sketcher committed ÷ the "
        "time from its first commit seen to the moment it and the judge (every sketch "
        "applied) were both done. Right before each, one inference worker answers "
        f"{result['worker_requests']:,} requests of the same model end to end (as in "
        "e2e_at_least_once): the rate compared. 'On a core each' compares CPU per request "
        "alone. CPU per feature-event = the drift process's CPU ÷ (requests x features); "
        f"RSS is VmRSS (peak VmHWM) at the end. All on {result['cpu_count']} cores shared "
        "by the broker, the drift process and the bench (which polls offsets)."
    )
