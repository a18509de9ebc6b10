"""The bench's pure helpers: Prometheus parsing, CPU arithmetic, verdicts, the wrk script."""

from __future__ import annotations

import pytest

from bench.load import _lua_script
from bench.measure import cpu_breakdown, histogram_counts, parse_prometheus, subtract, sum_samples
from bench.run import Plan, _settled
from bench.summary import summarise

METRICS = """\
# HELP modelbus_inference_records_total Records consumed from requests.
# TYPE modelbus_inference_records_total counter
modelbus_inference_records_total 120
modelbus_inference_batch_size_records_bucket{le="1"} 2
modelbus_inference_batch_size_records_bucket{le="10"} 5
modelbus_inference_batch_size_records_bucket{le="+Inf"} 9
modelbus_inference_predictions_total{model="m",version="1",variant="production",status="ok"} 7
"""
HISTOGRAM = "modelbus_inference_batch_size_records"


def test_prometheus_samples_keep_their_labels() -> None:
    samples = parse_prometheus(METRICS)

    assert samples["modelbus_inference_records_total"] == 120
    key = (
        "modelbus_inference_predictions_total"
        '{model="m",version="1",variant="production",status="ok"}'
    )
    assert samples[key] == 7


def test_histogram_buckets_are_de_accumulated_and_summed_over_workers() -> None:
    one = parse_prometheus(METRICS)

    assert histogram_counts([one], HISTOGRAM) == {"1": 2, "10": 3, "+Inf": 4}
    assert histogram_counts([one, one], HISTOGRAM) == {"1": 4, "10": 6, "+Inf": 8}


def test_counter_deltas_between_scrapes() -> None:
    before = {"hits": 2.0, "misses": 10.0}
    after = {"hits": 2.0, "misses": 60.0, "new": 1.0}

    delta = subtract(after, before)

    assert delta == {"hits": 0.0, "misses": 50.0, "new": 1.0}
    assert sum_samples([delta, delta], "misses") == 100.0


def test_cpu_breakdown_charges_the_rest_of_the_machine_to_other_processes() -> None:
    breakdown = cpu_breakdown(
        {"workers": 2.0, "broker": 1.0}, seconds=2.0, messages=10_000, machine=3.5
    )

    assert breakdown["cores_busy"] == {"workers": 1.0, "broker": 0.5}
    assert breakdown["cores_busy_total"] == 1.5
    assert breakdown["cpu_us_per_message"] == {"workers": 200.0, "broker": 100.0}
    assert breakdown["other_processes_cores_busy"] == 0.25


def test_broker_warm_up_settles_only_when_recent_passes_agree() -> None:
    assert not _settled([40.0, 30.0, 28.0])
    assert _settled([20.0, 19.0, 21.0])
    assert not _settled([20.0])


def test_plan_refuses_unknown_scenarios_and_quick_runs_are_smaller() -> None:
    with pytest.raises(SystemExit):
        Plan.from_args(False, "raw_loop,nope")
    quick = Plan.from_args(True, "scaling, raw_loop")

    assert quick.scenarios == ("raw_loop", "scaling")
    assert quick.messages < Plan.from_args(False, None).messages


def _throughput(per_second: float, **extra: object) -> dict[str, object]:
    return {
        "per_second": per_second,
        "seconds": 2.0,
        "answered": 20_000,
        "cpu_seconds": {"workers": 1.0, "broker": 1.0},
        "check": {"every_request_answered_once": True, "missing": 0, "duplicates": 0, "not_ok": 0},
        **extra,
    }


def test_summary_holds_e2e_to_half_the_transport_ceiling() -> None:
    met = summarise(
        {"raw_loop": {"per_second": 30_000.0}, "e2e_at_least_once": _throughput(16_000)}
    )
    missed = summarise(
        {"raw_loop": {"per_second": 40_000.0}, "e2e_at_least_once": _throughput(16_000)}
    )

    assert met["targets"][0]["met"] is True
    assert missed["targets"][0]["met"] is False
    assert missed["e2e_vs_raw_loop"] == 0.4


def test_summary_compares_predictions_per_cpu_second_with_the_peer() -> None:
    peer_run = {
        "per_second": 1_000.0,
        "per_cpu_second": 1_000.0,
        "cores_busy": 1.0,
        "connections": 16,
        "config": "parallel_workers=1 (default)",
    }
    summary = summarise(
        {
            "e2e_at_least_once": _throughput(10_000),
            "mlserver_peer": {"best": peer_run, "most_cpu_efficient": peer_run, "runs": []},
        }
    )

    ratios = summary["per_cpu_second"]["ratios"]
    assert ratios["worker_vs_peer_best"] == 20.0  # 20,000 predictions / 1 worker CPU second
    assert ratios["worker_and_broker_vs_peer_best"] == 10.0


def test_wrk_script_rotates_every_body_and_reports_json() -> None:
    script = _lua_script("/v2/models/m/infer", [b'{"a":1}', b'{"b":2}'])

    assert '[==[{"a":1}]==]' in script and '[==[{"b":2}]==]' in script
    assert 'wrk.path = "/v2/models/m/infer"' in script
    assert "BENCH_RESULT" in script and "summary.errors.status" in script


def test_summary_reports_the_relay_as_the_two_hop_ceiling() -> None:
    relay = {"per_second": 20_000.0, "cpu_us_per_message": {"relay": 15.0}}
    alo = _throughput(
        10_000,
        paired_raw_loop={"per_second": 40_000.0},
        paired_relay=relay,
        rounds=[{"ratio": 0.25, "relay_ratio": 0.5}],
    )

    summary = summarise({"e2e_at_least_once": alo})

    assert summary["relay_vs_raw_loop"] == 0.5
    assert summary["e2e_vs_relay"] == 0.5
    reported = [t for t in summary["targets"] if "relay" in t["target"]]
    assert [t["met"] for t in reported] == [None, None]
    assert "20,000 vs 40,000" in reported[0]["measured"]
