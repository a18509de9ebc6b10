"""Bounds checks on the index arrays of loaded trees, which scikit-learn trusts blindly.

A decision tree or a KD/ball tree walks node arrays in compiled code without checking the
indices, so a file whose child or feature indices point outside the arrays crashes (or
loops forever in) every process that predicts with it. skops only checks types, so the
arrays are checked here once a model is loaded and before anything predicts with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.neighbors import BallTree, KDTree
from sklearn.tree import BaseDecisionTree
from sklearn.tree._tree import Tree

MAX_OBJECTS_VISITED = 1_000_000
TREE_LEAF = -1
BITSET_WORDS = 8


class InvalidModelStructure(ValueError):
    """A loaded model's internal arrays are inconsistent: predicting would be unsafe."""


def check_model_structure(root: object) -> None:
    """Walk everything the model holds and check every tree and neighbour index in it."""
    for item in _reachable(root):
        if isinstance(item, Tree):
            _check_tree(item)
        elif isinstance(item, KDTree | BallTree):
            _check_binary_tree(item)
        elif isinstance(item, BaseDecisionTree):
            _check_tree_width(item)
        elif isinstance(item, TreePredictor):
            _check_predictor_layout(item)
        elif isinstance(item, BaseHistGradientBoosting):
            _check_boosted_predictors(item)


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


def _check_tree(tree: Tree) -> None:
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


def _check_tree_width(estimator: BaseDecisionTree) -> None:
    tree = getattr(estimator, "tree_", None)
    width = getattr(estimator, "n_features_in_", None)
    if isinstance(tree, Tree) and width is not None and tree.n_features > int(width):
        raise InvalidModelStructure(
            f"a tree reads {tree.n_features} features but its estimator takes {width}"
        )


def _check_binary_tree(index: KDTree | BallTree) -> None:
    state = index.__getstate__()
    data, order, node_data, node_bounds = state[0], state[1], state[2], state[3]
    levels, node_count = int(state[5]), int(state[6])
    rows = len(data)
    if not np.array_equal(np.sort(order), np.arange(rows)):
        raise InvalidModelStructure("a neighbour index does not order exactly its own rows")
    if levels < 1 or levels > 64 or node_count != 2**levels - 1:
        raise InvalidModelStructure("a neighbour index has an inconsistent number of nodes")
    if len(node_data) != node_count or node_bounds.shape[1:] != (node_count, data.shape[1]):
        raise InvalidModelStructure("a neighbour index's node arrays do not match its size")
    start, end = node_data["idx_start"], node_data["idx_end"]
    if np.any(start < 0) or np.any(end > rows) or np.any(start > end):
        raise InvalidModelStructure("a neighbour index node points outside its rows")


def _check_predictor_layout(predictor: TreePredictor) -> None:
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


def _check_boosted_predictors(model: BaseHistGradientBoosting) -> None:
    """Node indices of every boosted tree, against the model's width and bitsets."""
    width = getattr(model, "n_features_in_", None)
    if width is None:
        return
    binner = getattr(model, "_bin_mapper", None)
    categorical = getattr(binner, "is_categorical_", None)
    if categorical is not None and len(categorical) != int(width):
        raise InvalidModelStructure("the binner's categorical flags do not match the features")
    for known in getattr(binner, "known_categories", None) or []:
        # Each known category sets a bit in a 256-bit set, unchecked.
        if known is not None and np.any((np.asarray(known) < 0) | (np.asarray(known) >= 256)):
            raise InvalidModelStructure("a known category is outside 0..255")
    for predictor in _reachable(getattr(model, "_predictors", [])):
        if not isinstance(predictor, TreePredictor):
            continue
        _check_predictor_layout(predictor)
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
        bitsets = min(len(predictor.raw_left_cat_bitsets), len(predictor.binned_left_cat_bitsets))
        if np.any(nodes["bitset_idx"][on_category] >= bitsets):
            raise InvalidModelStructure("a boosted tree points at a category set it lacks")
