"""Bounds checks on the arrays a loaded model's compiled predict code indexes blindly.

Trees, neighbour indexes, support-vector machines and sparse matrices are walked by compiled
code that trusts their indices and shapes, so a file whose arrays disagree crashes (or
corrupts, or hangs) every process that predicts with it. skops only checks types, so the
arrays are checked here once a model is loaded and before anything predicts with it.
"""

from __future__ import annotations

from collections.abc import Callable
from types import UnionType
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.ensemble import StackingClassifier, StackingRegressor
from sklearn.ensemble._forest import BaseForest
from sklearn.ensemble._gb import BaseGradientBoosting
from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.neighbors import BallTree, KDTree, KNeighborsClassifier, RadiusNeighborsClassifier
from sklearn.svm._base import BaseLibSVM
from sklearn.tree import BaseDecisionTree
from sklearn.tree._tree import Tree

from shared.model_structure.arrays import check_sparse, check_support_vectors
from shared.model_structure.common import InvalidModelStructure
from shared.model_structure.ensembles import check_ensemble_trees, check_stacking
from shared.model_structure.neighbours import check_binary_tree, check_neighbour_labels
from shared.model_structure.trees import (
    check_boosted_predictors,
    check_predictor_layout,
    check_tree,
    check_tree_width,
)

__all__ = ["InvalidModelStructure", "check_model_structure"]

MAX_OBJECTS_VISITED = 1_000_000


def check_model_structure(root: object) -> None:
    """Walk everything the model holds and check each part compiled code indexes blindly."""
    for item in _reachable(root):
        for kind, check in _CHECKS:
            if isinstance(item, kind):
                check(item)


def _reachable(root: object) -> list[object]:
    """Objects reachable through attributes, containers and object arrays (bounded)."""
    seen: set[int] = set()
    found: list[object] = []
    pending: list[object] = [root]
    while pending:
        item = pending.pop()
        if id(item) in seen or isinstance(item, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(item))
        if len(seen) > MAX_OBJECTS_VISITED:
            raise InvalidModelStructure(f"the model holds over {MAX_OBJECTS_VISITED} objects")
        found.append(item)
        if isinstance(item, np.ndarray):
            if item.dtype == object:
                pending.extend(item.ravel().tolist())
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            pending.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            pending.extend(vars(item).values())
    return found


_CHECKS: tuple[tuple[type | UnionType, Callable[[Any], None]], ...] = (
    (Tree, check_tree),
    (KDTree | BallTree, check_binary_tree),
    (BaseDecisionTree, check_tree_width),
    (BaseForest | BaseGradientBoosting, check_ensemble_trees),
    (TreePredictor, check_predictor_layout),
    (BaseHistGradientBoosting, check_boosted_predictors),
    (BaseLibSVM, check_support_vectors),
    (sparse.spmatrix | sparse.sparray, check_sparse),
    (KNeighborsClassifier | RadiusNeighborsClassifier, check_neighbour_labels),
    (StackingClassifier | StackingRegressor, check_stacking),
)
