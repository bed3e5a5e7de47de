"""Per-sample loss kernels for generalized linear finite sums.

Every sample loss has the form

    f_i(x) = phi(a_i^T x, b_i) + (reg / 2) ||x||^2,

with ``phi`` convex in the margin ``m = a_i^T x``. The kernels below are Numba
compiled and are shared by the oracle, the method loops and the checkers, so that
every part of the toolkit evaluates the same f_i.

Loss codes (``LOSS_CODES``):

- ``least_squares``: phi(m, b) = (m - b)^2 / 2.
- ``logistic``: phi(m, b) = log(1 + exp(-b m)), labels b in {-1, +1}.
"""

import math

import numpy as np
from numba import njit

LEAST_SQUARES = 0
LOGISTIC = 1

LOSS_CODES = {"least_squares": LEAST_SQUARES, "logistic": LOGISTIC}

# Upper bound on |phi''| over all margins, used for L_max = max_i PHI2_MAX ||a_i||^2 + reg.
PHI2_MAX = {"least_squares": 1.0, "logistic": 0.25}


@njit(cache=True)
def _log1pexp(u):
    # log(1 + exp(u)) without overflow for large u and without cancellation for small u.
    if u > 0.0:
        return u + math.log1p(math.exp(-u))
    return math.log1p(math.exp(u))


@njit(cache=True)
def _sigmoid(u):
    if u >= 0.0:
        return 1.0 / (1.0 + math.exp(-u))
    e = math.exp(u)
    return e / (1.0 + e)


@njit(cache=True)
def phi(loss, m, b):
    """Return phi(m, b) for the loss code ``loss``."""
    if loss == LEAST_SQUARES:
        r = m - b
        return 0.5 * r * r
    return _log1pexp(-b * m)


@njit(cache=True)
def dphi(loss, m, b):
    """Return d phi / d m at margin ``m``."""
    if loss == LEAST_SQUARES:
        return m - b
    return -b * _sigmoid(-b * m)


@njit(cache=True)
def d2phi(loss, m, b):
    """Return d^2 phi / d m^2 at margin ``m``."""
    if loss == LEAST_SQUARES:
        return 1.0
    s = _sigmoid(-b * m)
    return s * (1.0 - s)


@njit(cache=True)
def sample_values(loss, A, b, reg, x):
    """Return f_i(x) for every sample, shape (n,)."""
    n = A.shape[0]
    out = np.empty(n)
    half_reg_sq = 0.5 * reg * np.dot(x, x)
    for i in range(n):
        out[i] = phi(loss, np.dot(A[i], x), b[i]) + half_reg_sq
    return out


@njit(cache=True)
def sample_gradients(loss, A, b, reg, x):
    """Return the gradients of every f_i at x, shape (n, d)."""
    n, d = A.shape
    out = np.empty((n, d))
    for i in range(n):
        s = dphi(loss, np.dot(A[i], x), b[i])
        for j in range(d):
            out[i, j] = s * A[i, j] + reg * x[j]
    return out


@njit(cache=True)
def batch_value_grad(loss, A, b, reg, row_norm, phi2_max, x, batch, g):
    """Evaluate f_S(x) = mean_{i in S} f_i(x) and write its gradient into ``g``.

    Parameters
    ----------
    loss : int
        Loss code.
    A : ndarray, shape (n, d)
    b : ndarray, shape (n,)
    reg : float
        L2 regularization strength.
    row_norm : ndarray, shape (n,)
        ||a_i|| for every sample.
    phi2_max : float
        sup |phi''| over all margins.
    x : ndarray, shape (d,)
    batch : ndarray of int64, shape (s,)
        Sample indices of the minibatch S.
    g : ndarray, shape (d,)
        Output buffer for grad f_S(x).

    Returns
    -------
    value : float
        f_S(x).
    value_magnitude : float
        mean_i (|phi_i| + |phi_i'| ||a_i|| ||x||) + reg ||x||^2 / 2: the scale of the
        summed terms, so gamma_{d+s} times it bounds the rounding error of ``value``.
    grad_magnitude : float
        mean_i (|phi_i'| ||a_i|| + phi2_max ||a_i||^2 ||x||) + reg ||x||: the same for
        the gradient, including the effect of the rounded margin on phi'.
    """
    d = A.shape[1]
    s = batch.shape[0]
    g[:] = 0.0
    value = 0.0
    value_mag = 0.0
    grad_mag = 0.0
    x_norm = math.sqrt(np.dot(x, x))
    for k in range(s):
        i = batch[k]
        m = np.dot(A[i], x)
        p = phi(loss, m, b[i])
        dp = dphi(loss, m, b[i])
        value += p
        value_mag += abs(p) + abs(dp) * row_norm[i] * x_norm
        grad_mag += (abs(dp) + phi2_max * row_norm[i] * x_norm) * row_norm[i]
        for j in range(d):
            g[j] += dp * A[i, j]
    inv = 1.0 / s
    for j in range(d):
        g[j] = g[j] * inv + reg * x[j]
    half_reg_sq = 0.5 * reg * x_norm * x_norm
    return (
        value * inv + half_reg_sq,
        value_mag * inv + half_reg_sq,
        grad_mag * inv + reg * x_norm,
    )


def full_value(loss, A, b, reg, x):
    """Return f(x) = (1/n) sum_i f_i(x) (numpy, float64)."""
    code = LOSS_CODES[loss]
    return float(np.mean(sample_values(code, A, b, reg, np.ascontiguousarray(x))))


def full_gradient(loss, A, b, reg, x):
    """Return grad f(x), shape (d,)."""
    code = LOSS_CODES[loss]
    return sample_gradients(code, A, b, reg, np.ascontiguousarray(x)).mean(axis=0)
