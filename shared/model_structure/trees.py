"""Decision trees and histogram-boosted trees: node arrays compiled code walks unchecked."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.tree import BaseDecisionTree
from sklearn.tree._tree import Tree

from shared.model_structure.common import InvalidModelStructure, recorded_width

TREE_LEAF = -1
BITSET_WORDS = 8


def check_tree(tree: Tree) -> None:
    state: dict[str, Any] = tree.__getstate__()
    nodes = state["nodes"]
    count = int(state["node_count"])
    if len(nodes) != count or count < 1:
        raise InvalidModelStructure(f"a tree lists {len(nodes)} nodes but counts {count}")
    left = nodes["left_child"]
    right = nodes["right_child"]
    feature = nodes["feature"]
    is_leaf = left == TREE_LEAF
    if np.any(is_leaf != (right == TREE_LEAF)):
        raise InvalidModelStructure("a tree node has exactly one child")
    split = np.flatnonzero(~is_leaf)
    # Children come after their parent in scikit-learn's node order, which also rules
    # out cycles that would make prediction loop forever.
    for children in (left[split], right[split]):
        if np.any(children <= split) or np.any(children >= count):
            raise InvalidModelStructure("a tree node points at a child outside the tree")
    if np.any(feature[split] < 0) or np.any(feature[split] >= tree.n_features):
        raise InvalidModelStructure(
            f"a tree node splits on a feature outside the tree's {tree.n_features}"
        )


def check_tree_width(estimator: BaseDecisionTree) -> None:
    tree = getattr(estimator, "tree_", None)
    if not isinstance(tree, Tree):
        return
    width = recorded_width(estimator, "a fitted tree")
    if tree.n_features != width:
        raise InvalidModelStructure(
            f"a tree reads {tree.n_features} features but its estimator takes {width}"
        )


def check_predictor_layout(predictor: TreePredictor) -> None:
    nodes = getattr(predictor, "nodes", None)
    if not isinstance(nodes, np.ndarray) or nodes.dtype != PREDICTOR_RECORD_DTYPE:
        raise InvalidModelStructure("a boosted tree's nodes do not have scikit-learn's layout")
    if nodes.ndim != 1 or len(nodes) < 1:
        raise InvalidModelStructure("a boosted tree has no node list")
    for name in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
        bitsets = getattr(predictor, name, None)
        if (
            not isinstance(bitsets, np.ndarray)
            or bitsets.dtype != np.uint32
            or bitsets.ndim != 2
            or bitsets.shape[1] != BITSET_WORDS
        ):
            raise InvalidModelStructure(f"a boosted tree's {name} have the wrong shape")


def check_boosted_predictors(model: BaseHistGradientBoosting) -> None:
    """Node indices of every boosted tree, against the model's width and bitsets."""
    width = recorded_width(model, "a fitted histogram gradient boosting model")
    binner = getattr(model, "_bin_mapper", None)
    categorical = getattr(binner, "is_categorical_", None)
    if categorical is not None and len(categorical) != int(width):
        raise InvalidModelStructure("the binner's categorical flags do not match the features")
    known_categories = getattr(binner, "known_categories", None) or []
    if known_categories and len(known_categories) != width:
        raise InvalidModelStructure("the binner's known categories do not match the features")
    for known in known_categories:
        # Each known category sets a bit in a 256-bit set, unchecked.
        if known is not None and np.any((np.asarray(known) < 0) | (np.asarray(known) >= 256)):
            raise InvalidModelStructure("a known category is outside 0..255")
    for predictor in _flattened(getattr(model, "_predictors", [])):
        if not isinstance(predictor, TreePredictor):
            continue
        check_predictor_layout(predictor)
        nodes = predictor.nodes
        count = len(nodes)
        split = np.flatnonzero(nodes["is_leaf"] == 0)
        for children in (nodes["left"][split], nodes["right"][split]):
            if np.any(children <= split) or np.any(children >= count):
                raise InvalidModelStructure("a boosted tree points at a child outside the tree")
        features = nodes["feature_idx"][split]
        if np.any(features < 0) or np.any(features >= int(width)):
            raise InvalidModelStructure(
                f"a boosted tree splits on a feature outside the model's {width}"
            )
        on_category = split[nodes["is_categorical"][split] != 0]
        flags = np.zeros(width, dtype=bool) if categorical is None else np.asarray(categorical)
        if not np.all(flags.astype(bool)[nodes["feature_idx"][on_category]]):
            raise InvalidModelStructure("a boosted tree splits by category on a numeric feature")
        bitsets = min(len(predictor.raw_left_cat_bitsets), len(predictor.binned_left_cat_bitsets))
        if np.any(nodes["bitset_idx"][on_category] >= bitsets):
            raise InvalidModelStructure("a boosted tree points at a category set it lacks")


def _flattened(nested: Any) -> Iterable[object]:
    """The items of lists of lists (boosting keeps one list of trees per iteration)."""
    if isinstance(nested, list | tuple):
        for item in nested:
            yield from _flattened(item)
    else:
        yield nested
