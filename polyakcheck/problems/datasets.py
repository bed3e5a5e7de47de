"""Real data sets that ship with scikit-learn, as ``Problem`` instances.

Nothing here downloads: every loader reads files bundled inside scikit-learn.
Features are standardized to zero mean and unit variance; regression targets are
standardized the same way, so objective values are in units of the target's variance.
"""

import numpy as np
from sklearn import datasets as sk_datasets

from polyakcheck.problems.problem import Problem

# Default L2 strength of the classification sets. Unregularized logistic regression on
# standardized breast-cancer data has its minimizer far out (the classes are almost
# separable), so a small ridge term keeps x_star finite and D moderate.
DEFAULT_LOGISTIC_REG = 1e-2


def _standardize(X):
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    std[std == 0] = 1.0
    return (X - X.mean(axis=0)) / std


def load_diabetes(reg=0.0):
    """Least squares on scikit-learn's diabetes set: n=442, d=10."""
    X, y = sk_datasets.load_diabetes(return_X_y=True)
    y = (y - y.mean()) / y.std()
    return Problem("diabetes", "least_squares", _standardize(X), y, reg=reg)


def load_breast_cancer(reg=DEFAULT_LOGISTIC_REG):
    """L2-regularized logistic regression on breast cancer: n=569, d=30, labels +-1."""
    X, y = sk_datasets.load_breast_cancer(return_X_y=True)
    return Problem(
        "breast_cancer", "logistic", _standardize(X), 2.0 * y - 1.0, reg=reg
    )


BUNDLED = {"diabetes": load_diabetes, "breast_cancer": load_breast_cancer}


def load_dataset(name, **kwargs):
    """Return the bundled data set ``name`` as a ``Problem``."""
    if name not in BUNDLED:
        raise ValueError(
            f"unknown data set {name!r}; bundled sets are {sorted(BUNDLED)}"
        )
    return BUNDLED[name](**kwargs)
