"""The ``Problem`` dataclass: a convex finite sum f(x) = (1/n) sum_i f_i(x)."""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.special import logsumexp

from polyakcheck.problems.families import (
    DEFAULT_LOSS_PARAM, FAMILIES, d2phi_np, dphi_np, phi_np,
)

# Assumptions that each loss family satisfies, in machine-readable form. A checker
# reads these to reject a bound whose assumptions fail for the instance.
ASSUMPTIONS = {name: fam.assumptions for name, fam in FAMILIES.items()}


@dataclass(frozen=True)
class Problem:
    """A convex finite sum of generalized linear losses.

    f_i(x) = phi(a_i^T x, b_i) + (reg / 2) ||x||^2 and f = (1/n) sum_i f_i.

    Attributes
    ----------
    name : str
        Label used in reports, for example ``"diabetes"``.
    loss : str
        A family of ``families.FAMILIES``: least_squares, logistic, squared_hinge,
        hinge, absolute, huber or poisson.
    A : ndarray of shape (n, d), float64, C-contiguous, or scipy.sparse CSR matrix
        Rows a_i. Sparse data stays sparse in the compiled loops.
    b : ndarray, shape (n,), float64
        Targets: labels in {-1, +1} for logistic and the hinge losses, counts >= 0
        for Poisson, real values otherwise.
    reg : float
        L2 regularization strength, >= 0.
    x0 : ndarray, shape (d,)
        Starting point of every method (zeros by default).
    loss_param : float or None
        Huber's delta (default 1.0); must be None or ignored for other families.
    """

    name: str
    loss: str
    A: np.ndarray
    b: np.ndarray
    reg: float = 0.0
    x0: np.ndarray = field(default=None)
    loss_param: float = None

    def __post_init__(self):
        validate_problem_inputs(self.loss, self.A, self.b, self.reg, self.x0)
        if sp.issparse(self.A):
            A = sp.csr_matrix(self.A, dtype=np.float64)
            A.sum_duplicates()
            A.sort_indices()
            for arr in (A.data, A.indices, A.indptr):
                arr.setflags(write=False)
        else:
            A = np.ascontiguousarray(self.A, dtype=np.float64)
            A.setflags(write=False)
        b = np.ascontiguousarray(self.b, dtype=np.float64)
        x0 = self.x0
        dim = A.shape[1] * _class_count(self.loss, b)
        x0 = np.zeros(dim) if x0 is None else np.array(x0, dtype=np.float64)
        for arr in (b, x0):
            arr.setflags(write=False)
        param = self.loss_param
        if param is None:
            param = DEFAULT_LOSS_PARAM.get(self.loss, 1.0)
        if not (np.isfinite(param) and param > 0):
            raise ValueError(f"loss_param must be finite and > 0, got {param!r}")
        object.__setattr__(self, "loss_param", float(param))
        row_norms = _row_norms(A)
        row_norms.setflags(write=False)
        object.__setattr__(self, "_row_norms", row_norms)
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
        """Dimension of x: the number of features, times the classes for multinomial."""
        return self.A.shape[1] * self.n_classes

    @property
    def n_features(self):
        """Number of features p (columns of A)."""
        return self.A.shape[1]

    @property
    def n_classes(self):
        """Number of classes K of the multinomial loss (1 for the scalar families)."""
        return _class_count(self.loss, self.b)

    @property
    def family(self):
        """The ``families.Family`` of the loss."""
        return FAMILIES[self.loss]

    @property
    def loss_code(self):
        """Integer code of the loss for the Numba kernels."""
        return FAMILIES[self.loss].code

    @property
    def sparse(self):
        """True when A is a scipy.sparse CSR matrix."""
        return sp.issparse(self.A)

    @property
    def assumptions(self):
        """Machine-readable assumptions of the loss family (dict of bool)."""
        return dict(ASSUMPTIONS[self.loss])

    @property
    def row_norms(self):
        """||a_i|| for every sample, shape (n,)."""
        return self._row_norms

    @property
    def L_max(self):
        """max_i smoothness constant of f_i on R^d: max_i sup|phi''| ||a_i||^2 + reg.

        inf for the kinked and the only locally smooth families.
        """
        return float(FAMILIES[self.loss].phi2_max * np.max(self.row_norms**2) + self.reg)

    def kernel_data(self):
        """Return (sparse, A_dense, data, indices, indptr) for the Numba kernels.

        Dense problems pass empty CSR arrays and sparse ones an empty (0, d) matrix,
        so that one compiled signature serves both.
        """
        if self.sparse:
            return (True, np.empty((0, self.d)), self.A.data, self.A.indices.astype(np.int64),
                    self.A.indptr.astype(np.int64))
        empty_i = np.empty(0, dtype=np.int64)
        return False, self.A, np.empty(0), empty_i, empty_i

    def margins(self, X):
        """Return the margins for each row x of ``X``.

        Shape (k, n) with entries a_i^T x for the scalar families, and (k, n, K) with
        entries w_c^T a_i for multinomial, where x stacks the class rows w_c.
        """
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if self.loss == "multinomial":
            W = X.reshape(X.shape[0], self.n_classes, self.n_features)
            return np.einsum("kcp,np->knc", W, self.A)
        return np.asarray(self.A @ X.T).T

    def _class_probabilities(self, M):
        # Softmax over the last axis of multinomial margins, and the one-hot labels.
        P = np.exp(M - logsumexp(M, axis=-1, keepdims=True))
        onehot = np.eye(self.n_classes)[self.b.astype(np.int64)]
        return P, onehot

    def values(self, X):
        """Return f_i(x) for each row x of ``X``, shape (k, n) for X of shape (k, d)."""
        X = np.atleast_2d(X)
        M = self.margins(X)
        if self.loss == "multinomial":
            labels = self.b.astype(np.int64)
            V = logsumexp(M, axis=2) - M[:, np.arange(self.n), labels]
        else:
            V = phi_np(self.loss, M, self.b, self.loss_param)
        return V + 0.5 * self.reg * np.sum(X * X, axis=1)[:, None]

    def dphi(self, M):
        """Return phi'(M) elementwise for margins M of shape (k, n)."""
        return dphi_np(self.loss, M, self.b, self.loss_param)

    def d2phi(self, M):
        """Return phi''(M) elementwise where it exists, shape of M."""
        return d2phi_np(self.loss, M, self.b, self.loss_param)

    def gradients(self, x):
        """Return the (sub)gradient of every f_i at x, shape (n, d) (dense)."""
        x = np.asarray(x, dtype=np.float64)
        if self.loss == "multinomial":
            P, onehot = self._class_probabilities(self.margins(x)[0])
            G = ((P - onehot)[:, :, None] * self.A[:, None, :]).reshape(self.n, self.d)
            return G + self.reg * x
        coef = self.dphi(self.margins(x))[0]
        if self.sparse:
            G = np.asarray(self.A.multiply(coef[:, None]).todense())
        else:
            G = coef[:, None] * self.A
        return G + self.reg * x

    def gradient(self, x):
        """Return the (sub)gradient of f at x, shape (d,)."""
        x = np.asarray(x, dtype=np.float64)
        if self.loss == "multinomial":
            P, onehot = self._class_probabilities(self.margins(x)[0])
            return ((P - onehot).T @ self.A).ravel() / self.n + self.reg * x
        coef = self.dphi(self.margins(x))[0]
        return np.asarray(self.A.T @ coef).ravel() / self.n + self.reg * x

    def objective(self, X):
        """Return f(x) for each row x of ``X``, shape (k,)."""
        return self.values(X).mean(axis=1)


def _class_count(loss, b):
    """Return K = max label + 1 for multinomial, and 1 for the scalar families."""
    if loss == "multinomial":
        return int(np.max(b)) + 1
    return 1


def _row_norms(A):
    if sp.issparse(A):
        return np.sqrt(np.asarray(A.multiply(A).sum(axis=1)).ravel())
    return np.sqrt(np.einsum("ij,ij->i", A, A))


def validate_problem_inputs(loss, A, b, reg, x0):
    """Raise ``ValueError`` or ``TypeError`` naming the invalid value and the fix."""
    if loss not in FAMILIES:
        raise ValueError(
            f"unknown loss {loss!r}; use one of {sorted(FAMILIES)}"
        )
    if not sp.issparse(A):
        try:
            A = np.asarray(A, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                "data matrix A must be a numeric array-like of shape (n, d) or a "
                f"scipy.sparse matrix, got {type(A).__name__}"
            ) from None
    if not sp.issparse(A) and A.ndim != 2:
        hint = "; reshape a single feature with A.reshape(-1, 1)" if A.ndim == 1 else ""
        raise ValueError(
            f"data matrix A must be 2-D with shape (n, d), got shape {A.shape}{hint}"
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
    A_arr = A.data if sp.issparse(A) else np.asarray(A)
    b_arr = np.asarray(b)
    if not np.issubdtype(A_arr.dtype, np.number) or not np.issubdtype(
        b_arr.dtype, np.number
    ):
        raise TypeError(
            f"A and b must be numeric arrays, got dtypes {A_arr.dtype} and {b_arr.dtype}"
        )
    bad = ~np.isfinite(A_arr)
    if bad.any() and sp.issparse(A):
        raise ValueError(
            f"sparse data matrix A contains {int(bad.sum())} non-finite stored values; "
            "drop or impute them"
        )
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
    kind = FAMILIES[loss].labels
    if kind == "pm1":
        labels = np.unique(b_arr)
        if not np.all(np.isin(labels, (-1.0, 1.0))):
            raise ValueError(
                f"{loss} labels must be -1 or +1, got values {labels[:5].tolist()}; "
                "map a 0/1 label y to 2*y - 1"
            )
    if kind == "class":
        if sp.issparse(A):
            raise ValueError(
                "the multinomial loss needs a dense A; convert with A.toarray()"
            )
        if np.any(b_arr < 0) or np.any(b_arr != np.round(b_arr)):
            raise ValueError(
                "multinomial labels must be class indices 0, 1, ..., K-1, got values "
                f"{np.unique(b_arr)[:5].tolist()}"
            )
        if np.max(b_arr) < 1:
            raise ValueError("multinomial labels must name at least 2 classes (0 and 1)")
    if kind == "nonneg" and np.any(b_arr < 0):
        i = int(np.argmax(b_arr < 0))
        raise ValueError(
            f"{loss} targets must be counts >= 0, got b[{i}] = {b_arr[i]}"
        )
    if not np.isfinite(reg) or reg < 0:
        raise ValueError(f"regularization reg must be finite and >= 0, got {reg!r}")
    if x0 is not None:
        dim = d * _class_count(loss, b_arr)
        if np.shape(x0) != (dim,):
            raise ValueError(
                f"starting point x0 must have shape ({dim},), got shape {np.shape(x0)}"
            )
        if not np.all(np.isfinite(x0)):
            raise ValueError("starting point x0 contains non-finite values")
