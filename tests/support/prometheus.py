"""Read /metrics text with prometheus-client's own parser, as a scraper would."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[str, float]:
    """Every sample as 'name{label="value",...}' (labels in exposition order) -> value."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{name}="{value}"' for name, value in sample.labels.items())
            found[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return found


def kinds(text: str) -> dict[str, str]:
    """Each family's name -> its type (counter, gauge, histogram)."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}
