"""What every structure check shares: its error and the width a model says it takes."""

from __future__ import annotations

import numpy as np


class InvalidModelStructure(ValueError):
    """A loaded model's internal arrays are inconsistent: predicting would be unsafe."""


def recorded_width(estimator: object, what: str) -> int:
    """The number of input columns the estimator checks; refused when it checks none."""
    width = getattr(estimator, "n_features_in_", None)
    if not isinstance(width, int | np.integer) or width < 1:
        raise InvalidModelStructure(f"{what} does not record how many features it takes")
    return int(width)
