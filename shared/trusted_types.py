"""The reviewed list of types a model file may name beyond what skops trusts itself.

skops trusts plain data, numpy arrays and dtypes, numpy ufuncs and scikit-learn's public
estimators; it reports every other type a file names. Each name below was reviewed: a
scikit-learn support class that fitted estimators hold, rebuilt from data without running
code the file chooses. A name is trusted only if it is in this list, never by its module,
because skops calls a trusted type with arguments taken from the file: one
`numpy.lib._npyio_impl.NpzFile` unpickles a file on disk.
"""

from __future__ import annotations

from collections.abc import Iterable

# Cython trees and neighbour indexes: their node arrays are bounds-checked after loading
# (shared.model_structure), since scikit-learn indexes them without checks.
_INDEXES = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
)

# Distance metrics of neighbour models; PyFuncDistance64 (a Python callable) is left out.
_DISTANCE_METRICS = tuple(
    f"sklearn.metrics._dist_metrics.{name}64"
    for name in (
        "EuclideanDistance",
        "SEuclideanDistance",
        "ManhattanDistance",
        "ChebyshevDistance",
        "MinkowskiDistance",
        "MahalanobisDistance",
        "HammingDistance",
        "CanberraDistance",
        "BrayCurtisDistance",
        "JaccardDistance",
        "MatchingDistance",
        "DiceDistance",
        "KulsinskiDistance",
        "RogersTanimotoDistance",
        "RussellRaoDistance",
        "SokalMichenerDistance",
        "SokalSneathDistance",
        "HaversineDistance",
    )
)

_LOSSES = tuple(
    f"sklearn._loss.loss.{name}"
    for name in (
        "HalfSquaredError",
        "AbsoluteError",
        "PinballLoss",
        "HuberLoss",
        "HalfPoissonLoss",
        "HalfGammaLoss",
        "HalfTweedieLoss",
        "HalfTweedieLossIdentity",
        "HalfBinomialLoss",
        "ExponentialLoss",
        "HalfMultinomialLoss",
    )
)

_KERNELS = tuple(
    f"sklearn.gaussian_process.kernels.{name}"
    for name in (
        "ConstantKernel",
        "WhiteKernel",
        "RBF",
        "Matern",
        "RationalQuadratic",
        "ExpSineSquared",
        "DotProduct",
        "Sum",
        "Product",
        "Exponentiation",
        "CompoundKernel",
        "Hyperparameter",
    )
)

_ESTIMATOR_PARTS = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.utils._bunch.Bunch",
)

SUPPORT_TYPES: frozenset[str] = frozenset(
    (*_INDEXES, *_DISTANCE_METRICS, *_LOSSES, *_KERNELS, *_ESTIMATOR_PARTS)
)


def refused_types(reported: Iterable[str], extra_trusted: Iterable[str] = ()) -> list[str]:
    """The reported type names that are neither reviewed here nor trusted by the operator."""
    allowed = SUPPORT_TYPES | frozenset(extra_trusted)
    return sorted({name for name in reported if name not in allowed})
