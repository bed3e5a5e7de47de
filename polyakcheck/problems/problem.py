"""The ``Problem`` dataclass: a convex finite sum f(x) = (1/n) sum_i f_i(x)."""

from dataclasses import dataclass, field

import numpy as np

from polyakcheck.problems.losses import LOSS_CODES, PHI2_MAX

# Assumptions that each loss family satisfies, in machine-readable form. A checker
# reads these to reject a bound whose assumptions fail for the instance.
ASSUMPTIONS = {
    "least_squares": {
        "convex": True,
        "smooth_globally": True,
        "lipschitz_globally": False,
    },
    "logistic": {
        "convex": True,
        "smooth_globally": True,
        "lipschitz_globally": True,
    },
}


@dataclass(frozen=True)
class Problem:
    """A convex finite sum of generalized linear losses.

    f_i(x) = phi(a_i^T x, b_i) + (reg / 2) ||x||^2 and f = (1/n) sum_i f_i.

    Attributes
    ----------
    name : str
        Label used in reports, for example ``"diabetes"``.
    loss : str
        One of ``LOSS_CODES``: ``"least_squares"`` or ``"logistic"``.
    A : ndarray, shape (n, d), float64, C-contiguous
        Rows a_i.
    b : ndarray, shape (n,), float64
        Targets; for ``"logistic"`` the labels in {-1, +1}.
    reg : float
        L2 regularization strength, >= 0.
    x0 : ndarray, shape (d,)
        Starting point of every method.
    """

    name: str
    loss: str
    A: np.ndarray
    b: np.ndarray
    reg: float = 0.0
    x0: np.ndarray = field(default=None)

    def __post_init__(self):
        validate_problem_inputs(self.loss, self.A, self.b, self.reg, self.x0)
        A = np.ascontiguousarray(self.A, dtype=np.float64)
        b = np.ascontiguousarray(self.b, dtype=np.float64)
        x0 = self.x0
        x0 = np.zeros(A.shape[1]) if x0 is None else np.array(x0, dtype=np.float64)
        for arr in (A, b, x0):
            arr.setflags(write=False)
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "x0", x0)
        object.__setattr__(self, "reg", float(self.reg))

    @property
    def n(self):
        """Number of samples."""
        return self.A.shape[0]

    @property
    def d(self):
        """Dimension."""
        return self.A.shape[1]

    @property
    def loss_code(self):
        """Integer code of the loss for the Numba kernels."""
        return LOSS_CODES[self.loss]

    @property
    def assumptions(self):
        """Machine-readable assumptions of the loss family (dict of bool)."""
        return dict(ASSUMPTIONS[self.loss])

    @property
    def row_norms(self):
        """||a_i|| for every sample, shape (n,)."""
        return np.sqrt(np.einsum("ij,ij->i", self.A, self.A))

    @property
    def L_max(self):
        """max_i smoothness constant of f_i: max_i sup|phi''| ||a_i||^2 + reg."""
        return float(PHI2_MAX[self.loss] * np.max(self.row_norms**2) + self.reg)

    def values(self, X):
        """Return f_i(x) for each row x of ``X``, shape (k, n) for X of shape (k, d)."""
        X = np.atleast_2d(X)
        M = X @ self.A.T
        if self.loss == "least_squares":
            V = 0.5 * (M - self.b) ** 2
        else:
            V = np.logaddexp(0.0, -self.b * M)
        return V + 0.5 * self.reg * np.sum(X * X, axis=1)[:, None]

    def objective(self, X):
        """Return f(x) for each row x of ``X``, shape (k,)."""
        return self.values(X).mean(axis=1)


def validate_problem_inputs(loss, A, b, reg, x0):
    """Raise ``ValueError`` or ``TypeError`` naming the invalid value and the fix."""
    if loss not in LOSS_CODES:
        raise ValueError(
            f"unknown loss {loss!r}; use one of {sorted(LOSS_CODES)}"
        )
    if not hasattr(A, "shape") or np.ndim(A) != 2:
        raise ValueError(
            f"data matrix A must be 2-D with shape (n, d), got ndim={np.ndim(A)}; "
            "reshape a single feature with A.reshape(-1, 1)"
        )
    n, d = np.shape(A)
    if n == 0:
        raise ValueError("data matrix A has zero samples (n=0); pass at least one row")
    if d == 0:
        raise ValueError("data matrix A has zero features (d=0); pass at least one column")
    if np.ndim(b) != 1 or np.shape(b)[0] != n:
        raise ValueError(
            f"targets b must have shape ({n},) to match A with {n} rows, "
            f"got shape {np.shape(b)}"
        )
    A_arr = np.asarray(A)
    b_arr = np.asarray(b)
    if not np.issubdtype(A_arr.dtype, np.number) or not np.issubdtype(
        b_arr.dtype, np.number
    ):
        raise TypeError(
            f"A and b must be numeric arrays, got dtypes {A_arr.dtype} and {b_arr.dtype}"
        )
    bad = ~np.isfinite(A_arr)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"data matrix A contains {int(bad.sum())} non-finite values "
            f"(first at row {i}, column {j}: {A_arr[i, j]}); drop or impute them"
        )
    bad = ~np.isfinite(b_arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"targets b contain {int(bad.sum())} non-finite values "
            f"(first at index {i}: {b_arr[i]}); drop or impute them"
        )
    if loss == "logistic":
        labels = np.unique(b_arr)
        if not np.all(np.isin(labels, (-1.0, 1.0))):
            raise ValueError(
                f"logistic labels must be -1 or +1, got values {labels[:5].tolist()}; "
                "map a 0/1 label y to 2*y - 1"
            )
    if not np.isfinite(reg) or reg < 0:
        raise ValueError(f"regularization reg must be finite and >= 0, got {reg!r}")
    if x0 is not None:
        if np.shape(x0) != (d,):
            raise ValueError(
                f"starting point x0 must have shape ({d},), got shape {np.shape(x0)}"
            )
        if not np.all(np.isfinite(x0)):
            raise ValueError("starting point x0 contains non-finite values")
