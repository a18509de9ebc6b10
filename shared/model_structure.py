"""Bounds checks on the index arrays of loaded trees, which scikit-learn trusts blindly.

A decision tree or a KD/ball tree walks node arrays in compiled code without checking the
indices, so a file whose child or feature indices point outside the arrays crashes (or
loops forever in) every process that predicts with it. skops only checks types, so the
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
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import BaseHistGradientBoosting
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.neighbors import BallTree, KDTree, KNeighborsClassifier, RadiusNeighborsClassifier
from sklearn.svm._base import BaseLibSVM
from sklearn.tree import BaseDecisionTree
from sklearn.tree._tree import Tree

MAX_OBJECTS_VISITED = 1_000_000
TREE_LEAF = -1
BITSET_WORDS = 8
STACKABLE_METHODS = frozenset({"predict", "predict_proba", "decision_function"})


class InvalidModelStructure(ValueError):
    """A loaded model's internal arrays are inconsistent: predicting would be unsafe."""


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
    if not isinstance(tree, Tree):
        return
    width = _width(estimator, "a fitted tree")
    if tree.n_features != width:
        raise InvalidModelStructure(
            f"a tree reads {tree.n_features} features but its estimator takes {width}"
        )


def _width(estimator: object, what: str) -> int:
    """The number of input columns the estimator checks; refused when it checks none."""
    width = getattr(estimator, "n_features_in_", None)
    if not isinstance(width, int | np.integer) or width < 1:
        raise InvalidModelStructure(f"{what} does not record how many features it takes")
    return int(width)


def _check_ensemble_trees(ensemble: BaseForest | BaseGradientBoosting) -> None:
    """Forests and boosting hand X to their trees unchecked: every tree must take X's width."""
    width = _width(ensemble, f"a fitted {type(ensemble).__name__}")
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
        if not isinstance(tree, BaseDecisionTree) or _width(tree, "a tree") != width:
            raise InvalidModelStructure(
                f"an ensemble's tree does not take the ensemble's {width} features"
            )


def _check_support_vectors(model: BaseLibSVM) -> None:
    """libsvm walks its arrays by the per-class support counts without checking them."""
    if getattr(model, "_sparse", False):
        raise InvalidModelStructure("support vector models with sparse vectors are refused")
    counts = np.asarray(getattr(model, "_n_support", []))
    vectors = np.asarray(getattr(model, "support_vectors_", np.empty((0, 0))))
    dual = np.asarray(getattr(model, "dual_coef_", np.empty((0, 0))))
    total = len(vectors)
    classes = len(getattr(model, "classes_", [])) or 2
    pairs = classes * (classes - 1) // 2 if hasattr(model, "classes_") else 1
    if (
        counts.ndim != 1
        or np.any(counts < 0)
        or int(counts.sum()) != total
        or (hasattr(model, "classes_") and len(counts) != classes)
        or dual.shape != (max(classes - 1, 1), total)
        or len(np.asarray(getattr(model, "support_", []))) != total
        or len(np.asarray(getattr(model, "intercept_", []))) != pairs
        or vectors.ndim != 2
        or vectors.shape[1] != _width(model, "a support vector model")
        or len(np.asarray(getattr(model, "_probA", []))) not in (0, pairs)
        or len(np.asarray(getattr(model, "_probB", []))) != len(getattr(model, "_probA", []))
    ):
        raise InvalidModelStructure("a support vector model's arrays do not fit together")


_COMPRESSED_SPARSE = sparse.csr_matrix | sparse.csc_matrix | sparse.csr_array | sparse.csc_array


def _check_neighbour_labels(model: KNeighborsClassifier | RadiusNeighborsClassifier) -> None:
    """Neighbour voting adds to class_scores[_y[neighbour]] in compiled code, unchecked."""
    fitted = np.asarray(getattr(model, "_fit_X", np.empty((0, 0))))
    labels = np.asarray(getattr(model, "_y", np.empty(0)))
    classes = getattr(model, "classes_", [])
    per_output = classes if getattr(model, "outputs_2d_", False) else [classes]
    width = _width(model, "a fitted neighbours classifier")
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


def _check_stacking(model: StackingClassifier | StackingRegressor) -> None:
    """Stacking calls each method named in the file on its estimators."""
    methods = getattr(model, "stack_method_", [])
    if any(method not in STACKABLE_METHODS for method in methods):
        raise InvalidModelStructure("a stacking model names a method it may not call")


def _check_sparse(matrix: object) -> None:
    """Compressed sparse indices are used unchecked by scipy's compiled products."""
    if isinstance(matrix, _COMPRESSED_SPARSE):
        try:
            matrix.check_format(full_check=True)
        except ValueError as invalid:
            raise InvalidModelStructure(f"a sparse matrix is inconsistent: {invalid}") from None
    else:
        raise InvalidModelStructure(
            f"sparse matrices in {type(matrix).__name__} format are refused (CSR or CSC only)"
        )


def _check_binary_tree(index: KDTree | BallTree) -> None:
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
    width = _width(model, "a fitted histogram gradient boosting model")
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
        flags = np.zeros(width, dtype=bool) if categorical is None else np.asarray(categorical)
        if not np.all(flags.astype(bool)[nodes["feature_idx"][on_category]]):
            raise InvalidModelStructure("a boosted tree splits by category on a numeric feature")
        bitsets = min(len(predictor.raw_left_cat_bitsets), len(predictor.binned_left_cat_bitsets))
        if np.any(nodes["bitset_idx"][on_category] >= bitsets):
            raise InvalidModelStructure("a boosted tree points at a category set it lacks")


_CHECKS: tuple[tuple[type | UnionType, Callable[[Any], None]], ...] = (
    (Tree, _check_tree),
    (KDTree | BallTree, _check_binary_tree),
    (BaseDecisionTree, _check_tree_width),
    (BaseForest | BaseGradientBoosting, _check_ensemble_trees),
    (TreePredictor, _check_predictor_layout),
    (BaseHistGradientBoosting, _check_boosted_predictors),
    (BaseLibSVM, _check_support_vectors),
    (sparse.spmatrix | sparse.sparray, _check_sparse),
    (KNeighborsClassifier | RadiusNeighborsClassifier, _check_neighbour_labels),
    (StackingClassifier | StackingRegressor, _check_stacking),
)
