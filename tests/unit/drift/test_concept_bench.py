"""The drift-concept bench scenario end to end on a tiny plan: JSON out, targets and the
README tables read back from it."""

from __future__ import annotations

import json

from bench.drift_concept import ConceptPlan, run_drift_concept
from bench.drift_concept_summary import (
    drift_concept_headline,
    drift_concept_tables,
    drift_concept_targets,
)

TINY = ConceptPlan(
    seeds=1,
    onset=1500,
    horizon=500,
    stationary_labels=2000,
    training=500,
    cbpe_reference=1000,
    cbpe_before=3000,
    cbpe_after=1000,
)


def test_a_tiny_run_gives_json_that_the_tables_and_targets_read() -> None:
    result = json.loads(json.dumps(run_drift_concept(TINY)))
    names = {case["case"] for case in result["cases"]}
    assert "Bernoulli error bits 0.12 -> 0.21" in names and len(names) == 5
    for case in result["cases"]:
        assert "river FHDDM (fed 1 = correct)" in case["detectors"]
        assert any(name.startswith("oracle") for name in case["detectors"])
    targets = drift_concept_targets(result)
    assert sum(target["met"] is not None for target in targets) == 5
    tables = "\n".join(drift_concept_tables(result))
    assert "river ADWIN" in tables and "Label-free performance estimate" in tables
    assert "Agrawal function 0 -> 2" in drift_concept_headline(result)
