"""Two drift processes share the groups: partitions move between them twice mid-stream,
and the state moves with them (nothing forgotten, nothing counted twice, one alert)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.drift.conftest import FEATURES, MODEL
from tests.integration.drift.support import gaussian_rows, requests_for

pytestmark = [pytest.mark.kafka]


async def test_state_follows_its_partitions_through_rebalances(drift_factory: Any) -> None:
    first = gaussian_rows(3000, features=FEATURES, seed=21)
    second = gaussian_rows(3000, features=FEATURES, seed=22, shift={"x5": -1.0})
    third = gaussian_rows(1500, features=FEATURES, seed=23, shift={"x5": -1.0})
    async with drift_factory(instance_id="drift-a") as a:
        await a.send_requests(requests_for(MODEL, first))
        await a.until_measured(MODEL, 3000)
        async with drift_factory(instance_id="drift-b") as b:  # joins: partitions split
            await b.send_requests(requests_for(MODEL, second, start=3000))
            await b.until_measured(MODEL, 6000)
            await a.service.stop()  # leaves: b owns everything
            await b.send_requests(requests_for(MODEL, third, start=6000))
            await b.until_measured(MODEL, 7500)
            assert b.measured_events(MODEL) == 7500
            alerts = await b.alerts()
    assert [(x.status, x.feature) for x in alerts] == [("open", "x5")]
    assert (
        alerts[0].evidence["levels"]["mean_down"] >= alerts[0].evidence["thresholds"]["mean_down"]
    )
