"""Neighbour models: KD/ball-tree indexes, metric parameters and voting labels."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.neighbors import BallTree, KDTree, KNeighborsClassifier, RadiusNeighborsClassifier

from shared.model_structure.common import InvalidModelStructure, recorded_width


def check_binary_tree(index: KDTree | BallTree) -> None:
    state = index.__getstate__()
    data, order, node_data, node_bounds = state[0], state[1], state[2], state[3]
    levels, node_count, metric = int(state[5]), int(state[6]), state[11]
    rows = len(data)
    if not np.array_equal(np.sort(order), np.arange(rows)):
        raise InvalidModelStructure("a neighbour index does not order exactly its own rows")
    if levels < 1 or levels > 64 or node_count != 2**levels - 1:
        raise InvalidModelStructure("a neighbour index has an inconsistent number of nodes")
    bound_rows = 2 if isinstance(index, KDTree) else 1  # lower and upper, or centroids
    if len(node_data) != node_count or node_bounds.shape != (
        bound_rows,
        node_count,
        data.shape[1],
    ):
        raise InvalidModelStructure("a neighbour index's node arrays do not match its size")
    start, end = node_data["idx_start"], node_data["idx_end"]
    if np.any(start < 0) or np.any(end > rows) or np.any(start > end):
        raise InvalidModelStructure("a neighbour index node points outside its rows")
    # A query descends from node i to 2i+1 and 2i+2 until a leaf: the last level must be.
    inner = np.flatnonzero(node_data["is_leaf"] == 0)
    if np.any(2 * inner + 2 >= node_count):
        raise InvalidModelStructure("a neighbour index has inner nodes on its last level")
    _check_metric_size(metric, data.shape[1])


def _check_metric_size(metric: object, width: int) -> None:
    """Metrics with per-feature parameters size their buffers from them, not from the data."""
    state: Any = metric.__getstate__()
    _, vector, matrix = state[:3]
    name = type(metric).__name__
    if name.startswith("Mahalanobis") and np.shape(matrix) != (width, width):
        raise InvalidModelStructure("a Mahalanobis metric's matrix does not match the features")
    if name.startswith(("SEuclidean", "Minkowski")) and np.size(vector) not in (1, width):
        raise InvalidModelStructure(f"a {name} metric's weights do not match the features")


def check_neighbour_labels(model: KNeighborsClassifier | RadiusNeighborsClassifier) -> None:
    """Neighbour voting adds to class_scores[_y[neighbour]] in compiled code, unchecked."""
    fitted = np.asarray(getattr(model, "_fit_X", np.empty((0, 0))))
    labels = np.asarray(getattr(model, "_y", np.empty(0)))
    classes = getattr(model, "classes_", [])
    per_output = classes if getattr(model, "outputs_2d_", False) else [classes]
    width = recorded_width(model, "a fitted neighbours classifier")
    if fitted.ndim != 2 or fitted.shape[1] != width:
        raise InvalidModelStructure("a neighbours model's points do not have its width")
    if labels.dtype.kind not in "iu" or len(labels) != len(fitted):
        raise InvalidModelStructure("a neighbours model's labels do not match its points")
    columns = labels.reshape(len(labels), -1)
    if columns.shape[1] != len(per_output):
        raise InvalidModelStructure("a neighbours model's labels do not match its outputs")
    for column, known in zip(columns.T, per_output, strict=True):
        if len(column) and (column.min() < 0 or column.max() >= len(known)):
            raise InvalidModelStructure("a neighbours model's label is not one of its classes")
