"""A dataset snapshot of labelled examples: CSV bytes that hash the same for the same data.

Rows are ordered by request id and columns by name, so exporting the same labels twice
gives the same bytes and the same SHA-256, and the registry stores the snapshot once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Example:
    request_id: str
    inputs: Mapping[str, Any]
    label: Any


def trainable(strength: str, by_reviewer: bool, *, train_on_weak: bool) -> bool:
    """A weak signal's guess trains a model only once reviewed, or if the policy says so."""
    return strength == "label" or by_reviewer or train_on_weak


def to_csv(examples: Sequence[Example], target: str) -> bytes:
    """A header of the features (sorted) and the target, then one row per example."""
    features = sorted({name for example in examples for name in example.inputs} - {target})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*features, target])
    for example in sorted(examples, key=lambda example: example.request_id):
        writer.writerow([_cell(example.inputs.get(name)) for name in features] + [example.label])
    return buffer.getvalue().encode()


def _cell(value: Any) -> Any:
    return "" if value is None else value
