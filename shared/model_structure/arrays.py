"""Support-vector machines and sparse matrices: arrays libsvm and scipy index unchecked."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.svm._base import BaseLibSVM

from shared.model_structure.common import InvalidModelStructure, recorded_width


def check_support_vectors(model: BaseLibSVM) -> None:
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
        or vectors.shape[1] != recorded_width(model, "a support vector model")
        or len(np.asarray(getattr(model, "_probA", []))) not in (0, pairs)
        or len(np.asarray(getattr(model, "_probB", []))) != len(getattr(model, "_probA", []))
    ):
        raise InvalidModelStructure("a support vector model's arrays do not fit together")


_COMPRESSED_SPARSE = sparse.csr_matrix | sparse.csc_matrix | sparse.csr_array | sparse.csc_array


def check_sparse(matrix: object) -> None:
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
