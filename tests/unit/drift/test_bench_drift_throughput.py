"""The drift throughput bench scenario: its verdicts, table and headline are read from its
plain JSON, and CPU per feature-event is the process's CPU over requests x features."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import TopicPartition

from bench.drift_throughput import against_worker, judged, loop_shares, per_feature_event
from bench.drift_throughput_summary import (
    drift_throughput_headline,
    drift_throughput_rows,
    drift_throughput_table,
    drift_throughput_targets,
)
from bench.measure import cpu_breakdown


def configuration(*, requests_per_second: float, drift_cpu: float, measured: bool = True) -> dict:
    seconds = 10.0
    requests = round(requests_per_second * seconds)
    cpu = {"drift": drift_cpu, "broker": 3.0, "bench_process": 0.5}
    drain: dict[str, Any] = {
        "measured_requests": requests,
        "measured_records": 2 * requests,
        "seconds": seconds,
        "requests_per_second": requests_per_second,
        "sketches_per_second": 12.0,
        "every_record_measured": measured,
        "cpu_seconds": cpu,
        "memory": {"rss_mb": 190.0, "peak_rss_mb": 205.0},
        **cpu_breakdown(cpu, seconds=seconds, messages=requests, machine=15.0),
    }
    worker = {"per_second": 10_000.0, "cpu_us_per_prediction": 60.0}
    drain |= per_feature_event(drain, 20) | against_worker(drain, worker)
    return {"worker": worker, "drain": drain}


def result(**configurations: dict) -> dict:
    return orjson.loads(
        orjson.dumps(
            {
                "model_features": 20,
                "requests": 200_000,
                "worker_requests": 50_000,
                "cpu_count": 2,
                "configurations": configurations,
            }
        )
    )


def test_cpu_per_feature_event_divides_by_requests_times_features() -> None:
    drain = configuration(requests_per_second=12_000.0, drift_cpu=6.0)["drain"]

    assert drain["drift_cpu_us_per_request"] == 50.0  # 6 s over 120,000 requests
    assert drain["drift_cpu_us_per_feature_event"] == 2.5
    assert drain["drift_cpu_us_per_record"] == 25.0
    assert drain["ratio_to_worker"] == 1.2
    assert drain["cpu_ratio_to_worker"] == 1.2  # the worker's 60 µs over our 50 µs


def test_the_target_is_met_per_configuration_from_the_json() -> None:
    figures = result(
        requests=configuration(requests_per_second=12_000.0, drift_cpu=6.0),
        **{"requests+predictions": configuration(requests_per_second=8_000.0, drift_cpu=8.0)},
    )

    met = {
        t["target"].split("(")[1].split(")")[0]: t["met"] for t in drift_throughput_targets(figures)
    }

    assert met == {"requests": True, "requests+predictions": False}
    assert "requests: 12,000 requests/s = 1.20x the worker" in drift_throughput_headline(figures)


def test_a_run_that_skipped_records_does_not_meet_the_target() -> None:
    figures = result(
        requests=configuration(requests_per_second=20_000.0, drift_cpu=6.0, measured=False)
    )

    (target,) = drift_throughput_targets(figures)

    assert target["met"] is False and "NOT every record" in target["measured"]


def test_the_tables_show_rates_ratio_cpu_and_memory_and_a_failure_in_place() -> None:
    figures = result(
        requests=configuration(requests_per_second=12_000.0, drift_cpu=6.0),
        **{"requests+predictions": {"error": "TimeoutError: 5 of 10 records still unconsumed"}},
    )

    table = drift_throughput_table(figures)
    rows = drift_throughput_rows(figures)

    assert table[2].startswith("| requests | 12,000 | 10,000 | 1.20x | 1.20x | 50.0 | 2.50 |")
    assert "190 (205)" in table[2]
    assert "**failed**: TimeoutError" in table[3]
    assert rows[0][:4] == ["drift (requests)", "120,000", "10.00", "12,000"]
    assert rows[1][0] == "drift (requests+predictions)" and "failed" in rows[1][-1]
    assert all(line.count("|") == table[0].count("|") for line in table)


def test_the_judge_is_done_when_only_commit_markers_are_left() -> None:
    sketches = TopicPartition("drift-sketches", 0)
    empty = TopicPartition("drift-sketches", 1)
    ends = {sketches: 11, empty: 0}

    assert judged(ends, {sketches: 10})  # offset 10 is the last transaction's marker
    assert not judged(ends, {sketches: 9})
    assert not judged(ends, {})


def test_the_judges_share_is_read_from_the_profile_and_shown_with_the_target() -> None:
    folded = "\n".join(
        [
            "run (x.py:1);GroupConsumer._attempt (c.py:2);SketchProcess.__call__ (k.py:75) 60",
            "run (x.py:1);GroupConsumer._attempt (c.py:2);JudgeProcess.__call__ (k.py:120) 5",
            "run (x.py:1);AIOKafkaConsumer.getmany (a.py:9) 20",
            "run (x.py:1);EpollSelector.select (s.py:4) 15",
        ]
    )
    figures = result(requests=configuration(requests_per_second=12_000.0, drift_cpu=6.0))
    figures["configurations"]["requests"]["drain"]["profiled_shares"] = loop_shares(folded)

    (target,) = drift_throughput_targets(figures)

    assert loop_shares(folded) == {"sketcher": 0.6, "judge": 0.05, "fetching": 0.2}
    assert "py-spy: sketcher 60%, judge 5%, fetching 20%" in target["measured"]
