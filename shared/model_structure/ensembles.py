"""Ensembles that hand their input to their members without checking it again."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import StackingClassifier, StackingRegressor
from sklearn.ensemble._forest import BaseForest
from sklearn.ensemble._gb import BaseGradientBoosting
from sklearn.tree import BaseDecisionTree

from shared.model_structure.common import InvalidModelStructure, recorded_width

STACKABLE_METHODS = frozenset({"predict", "predict_proba", "decision_function"})


def check_ensemble_trees(ensemble: BaseForest | BaseGradientBoosting) -> None:
    """Forests and boosting hand X to their trees unchecked: every tree must take X's width."""
    width = recorded_width(ensemble, f"a fitted {type(ensemble).__name__}")
    trees = getattr(ensemble, "estimators_", None)
    if isinstance(ensemble, BaseGradientBoosting):
        expected = (
            getattr(ensemble, "n_estimators_", None),
            getattr(ensemble, "n_trees_per_iteration_", None),
        )
        if not isinstance(trees, np.ndarray) or trees.dtype != object or trees.shape != expected:
            raise InvalidModelStructure(
                "a gradient boosting model's trees do not form its iterations by classes"
            )
        trees = trees.ravel().tolist()
    for tree in trees if isinstance(trees, list) else []:
        if not isinstance(tree, BaseDecisionTree) or recorded_width(tree, "a tree") != width:
            raise InvalidModelStructure(
                f"an ensemble's tree does not take the ensemble's {width} features"
            )


def check_stacking(model: StackingClassifier | StackingRegressor) -> None:
    """Stacking calls each method named in the file on its estimators."""
    methods = getattr(model, "stack_method_", [])
    if any(method not in STACKABLE_METHODS for method in methods):
        raise InvalidModelStructure("a stacking model names a method it may not call")
