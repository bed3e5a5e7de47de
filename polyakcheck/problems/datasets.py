"""Real data sets as ``Problem`` instances: scikit-learn's bundled sets and svmlight files.

Nothing here downloads: the bundled loaders read files that ship inside scikit-learn.
Each bundled set serves the loss families of one kind:

- regression (least_squares, absolute, huber, poisson): diabetes (n=442, d=10) and
  linnerud (n=20, d=3).
- binary classification (logistic, squared_hinge, hinge), labels in {-1, +1}:
  breast_cancer (n=569, d=30, benign +1, malignant -1), digits (n=1797, d=64, even
  digits +1, odd digits -1), wine (n=178, d=13, class 0 +1, classes 1 and 2 -1) and
  iris (n=150, d=4, setosa +1, the other two species -1).

Features are standardized to zero mean and unit variance (constant columns, such as
the always-blank pixels of digits, stay zero). Real regression targets are
standardized the same way, so objective values are in units of the target's variance.
Poisson needs counts instead:

- diabetes: the raw disease-progression score (25 to 346) divided by
  ``DIABETES_COUNT_DIVISOR`` = 50 and rounded to the nearest integer, counts 0 to 7.
- linnerud: the number of chin-ups (1 to 17), the first of the three exercise
  variables, as the target, with the three physiological variables (weight, waist,
  pulse) as features. The other families use the exercise variables as features and
  the weight, the first physiological variable, as the target.
"""

import os
from pathlib import Path

import numpy as np
from sklearn import datasets as sk_datasets

from polyakcheck.problems.families import FAMILIES
from polyakcheck.problems.problem import Problem

REGRESSION_FAMILIES = ("least_squares", "absolute", "huber", "poisson")
CLASSIFICATION_FAMILIES = ("logistic", "squared_hinge", "hinge")
MULTICLASS_SETS = ("digits", "wine", "iris")

# Loss families that each bundled set supports; the first one is its default.
COMPATIBLE = {
    "diabetes": list(REGRESSION_FAMILIES),
    "linnerud": list(REGRESSION_FAMILIES),
    "breast_cancer": list(CLASSIFICATION_FAMILIES),
    "digits": list(CLASSIFICATION_FAMILIES) + ["multinomial"],
    "wine": list(CLASSIFICATION_FAMILIES) + ["multinomial"],
    "iris": list(CLASSIFICATION_FAMILIES) + ["multinomial"],
}

# Names of the bundled sets.
BUNDLED = tuple(COMPATIBLE)

# Default L2 strength of the classification families. Unregularized logistic regression
# on standardized breast-cancer data has its minimizer far out (the classes are almost
# separable), and iris and wine are separable, so a small ridge term keeps x_star
# finite and D moderate.
DEFAULT_LOGISTIC_REG = 1e-2

DIABETES_COUNT_DIVISOR = 50.0


def load_dataset(name, loss=None, reg=None, loss_param=None):
    """Return the bundled data set or svmlight file ``name`` as a ``Problem``.

    Parameters
    ----------
    name : str or path
        A name of ``BUNDLED``, or the path of an existing svmlight / LIBSVM file
        (read by ``load_svmlight``).
    loss : str or None
        Loss family; None takes the set's default, the first entry of
        ``COMPATIBLE[name]`` (least_squares for the regression sets, logistic for the
        classification sets). For a file, None takes logistic when the labels have
        exactly two distinct values and least_squares otherwise.
    reg : float or None
        L2 strength; None takes ``DEFAULT_LOGISTIC_REG`` for the classification
        families and 0 for the regression families.
    loss_param : float or None
        Huber's delta (default 1.0, in units of the standardized target).

    Raises
    ------
    ValueError
        If ``name`` is neither bundled nor an existing file, or if ``loss`` is not
        compatible with the set; the message lists the compatible families.
    """
    if name not in COMPATIBLE:
        if isinstance(name, (str, os.PathLike)) and Path(name).is_file():
            return load_svmlight(name, loss=loss, reg=reg, loss_param=loss_param)
        raise ValueError(
            f"unknown data set {name!r}: it is neither a bundled set ({', '.join(BUNDLED)}) "
            "nor the path of an existing svmlight file"
        )
    if loss is None:
        loss = COMPATIBLE[name][0]
    _check_compatible(name, loss)
    if name == "diabetes":
        X, y = sk_datasets.load_diabetes(return_X_y=True)
        if loss == "poisson":
            y = np.round(y / DIABETES_COUNT_DIVISOR)
    elif name == "linnerud":
        exercise, physiological = sk_datasets.load_linnerud(return_X_y=True)
        if loss == "poisson":
            X, y = physiological, exercise[:, 0]
        else:
            X, y = exercise, physiological[:, 0]
    elif loss == "multinomial":
        X, y = _load_multiclass(name)
    else:
        X, y = _load_classification(name)
    if loss in REGRESSION_FAMILIES and loss != "poisson":
        y = _standardize(y[:, None])[:, 0]
    return Problem(
        name, loss, _standardize(X), np.asarray(y, dtype=np.float64),
        reg=_default_reg(loss) if reg is None else reg, loss_param=loss_param,
    )


def load_diabetes(reg=0.0):
    """Least squares on scikit-learn's diabetes set: n=442, d=10."""
    return load_dataset("diabetes", loss="least_squares", reg=reg)


def load_breast_cancer(reg=DEFAULT_LOGISTIC_REG):
    """L2-regularized logistic regression on breast cancer: n=569, d=30, labels +-1."""
    return load_dataset("breast_cancer", loss="logistic", reg=reg)


def load_svmlight(path, loss, reg=None, dense=False, loss_param=None):
    """Read an svmlight / LIBSVM file into a ``Problem``.

    The features are used as stored, not standardized, so that sparse data stay
    sparse. For the classification families the labels must take exactly two values,
    and the smaller one maps to -1 and the larger one to +1: 0/1, 1/2 and -1/+1 files
    all work. Regression families take the labels as targets.

    Parameters
    ----------
    path : str or path
    loss : str or None
        Loss family; None takes logistic when the labels have exactly two distinct
        values and least_squares otherwise.
    reg : float or None
        L2 strength; None takes ``DEFAULT_LOGISTIC_REG`` for the classification
        families and 0 for the regression families.
    dense : bool, default False
        Return A as a dense ndarray instead of a scipy.sparse CSR matrix (always dense
        for the multinomial loss, whose kernel reads dense rows).
    loss_param : float or None
        Huber's delta.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be parsed, if ``loss`` is unknown, or if a classification
        family gets labels with other than two distinct values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"svmlight file not found: {path}")
    try:
        X, y = sk_datasets.load_svmlight_file(str(path), dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"could not parse svmlight file {path}: {exc}") from exc
    classes = np.unique(y)
    if loss is None:
        loss = "logistic" if classes.size == 2 else "least_squares"
    if loss not in FAMILIES:
        raise ValueError(f"unknown loss {loss!r}; use one of {sorted(FAMILIES)}")
    if FAMILIES[loss].labels == "pm1":
        if classes.size != 2:
            listed = ", ".join(f"{value:g}" for value in classes[:10])
            raise ValueError(
                f"{loss} needs two classes, but {path} has {classes.size} distinct "
                f"labels ({listed}{', ...' if classes.size > 10 else ''}). Binarize the "
                "labels first, for example one class against the rest, or use a "
                f"regression family ({', '.join(REGRESSION_FAMILIES)})"
            )
        y = np.where(y == classes[1], 1.0, -1.0)
    if loss == "multinomial":
        # Class indices 0..K-1 in the order of the sorted labels; the multinomial
        # kernel reads dense rows, so the matrix is densified.
        y = np.searchsorted(classes, y).astype(np.float64)
        dense = True
    A = X.toarray() if dense else X.tocsr()
    return Problem(
        path.stem, loss, A, y, reg=_default_reg(loss) if reg is None else reg,
        loss_param=loss_param,
    )


def _load_classification(name):
    """Return the features and the +-1 labels of a bundled classification set."""
    if name == "breast_cancer":
        X, y = sk_datasets.load_breast_cancer(return_X_y=True)
        return X, 2.0 * y - 1.0
    if name == "digits":
        X, y = sk_datasets.load_digits(return_X_y=True)
        return X, np.where(y % 2 == 0, 1.0, -1.0)
    loader = sk_datasets.load_wine if name == "wine" else sk_datasets.load_iris
    X, y = loader(return_X_y=True)
    return X, np.where(y == 0, 1.0, -1.0)


def _load_multiclass(name):
    """Return the features and the class indices 0..K-1 of a multiclass set."""
    loader = {"digits": sk_datasets.load_digits, "wine": sk_datasets.load_wine,
              "iris": sk_datasets.load_iris}[name]
    X, y = loader(return_X_y=True)
    return X, y.astype(np.float64)


def _check_compatible(name, loss):
    if loss not in COMPATIBLE[name]:
        kind = "unknown loss" if loss not in FAMILIES else "loss"
        raise ValueError(
            f"{kind} {loss!r} is not compatible with data set {name!r}; compatible "
            f"families: {', '.join(COMPATIBLE[name])}"
        )


def _default_reg(loss):
    if loss in CLASSIFICATION_FAMILIES or loss == "multinomial":
        return DEFAULT_LOGISTIC_REG
    return 0.0


def _standardize(X):
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    std[std == 0] = 1.0
    return (X - X.mean(axis=0)) / std
