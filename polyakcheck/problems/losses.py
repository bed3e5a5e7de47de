"""Numba kernels of the per-sample losses, dense and sparse (CSR).

Every sample loss has the form f_i(x) = phi(a_i^T x, b_i) + (reg / 2) ||x||^2 with phi
convex in the margin m = a_i^T x; ``families`` lists the families, their formulas and
their assumptions. ``param`` is the one loss parameter (Huber's delta), ignored by the
other families. At a kink the kernels return one fixed subgradient: phi'(m) = 0 for
hinge at b m = 1 and for absolute loss at m = b.
"""

import math

import numpy as np
from numba import njit

from polyakcheck.problems.families import FAMILIES

# NOTE: Numba's on-disk cache keys the loops of methods/kernel.py on that file alone,
# so after editing a kernel here, delete the *.nbi and *.nbc files under __pycache__ or
# the cached loops keep calling the old version.
LEAST_SQUARES = 0
LOGISTIC = 1
SQUARED_HINGE = 2
HINGE = 3
ABSOLUTE = 4
HUBER = 5
POISSON = 6
MULTINOMIAL = 7

LOSS_CODES = {name: fam.code for name, fam in FAMILIES.items()}

# Only the reassociation and FMA-contraction flags: reductions vectorize, and NaN and
# Inf keep their IEEE behaviour (see methods/kernel.py for why the rounding slack
# stays valid).
FASTMATH = {"reassoc", "contract"}
PHI2_MAX = {name: fam.phi2_max for name, fam in FAMILIES.items()}


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
def phi(loss, m, b, param):
    """Return phi(m, b) for the loss code ``loss``."""
    if loss == LEAST_SQUARES:
        r = m - b
        return 0.5 * r * r
    if loss == LOGISTIC:
        return _log1pexp(-b * m)
    if loss == SQUARED_HINGE:
        h = 1.0 - b * m
        return 0.5 * h * h if h > 0.0 else 0.0
    if loss == HINGE:
        h = 1.0 - b * m
        return h if h > 0.0 else 0.0
    if loss == ABSOLUTE:
        return abs(m - b)
    if loss == HUBER:
        r = abs(m - b)
        return 0.5 * r * r if r <= param else param * (r - 0.5 * param)
    return math.exp(m) - b * m


@njit(cache=True)
def dphi(loss, m, b, param):
    """Return d phi / d m at ``m`` (a fixed subgradient at kinks)."""
    if loss == LEAST_SQUARES:
        return m - b
    if loss == LOGISTIC:
        return -b * _sigmoid(-b * m)
    if loss == SQUARED_HINGE:
        h = 1.0 - b * m
        return -b * h if h > 0.0 else 0.0
    if loss == HINGE:
        return -b if b * m < 1.0 else 0.0
    if loss == ABSOLUTE:
        r = m - b
        if r > 0.0:
            return 1.0
        if r < 0.0:
            return -1.0
        return 0.0
    if loss == HUBER:
        r = m - b
        return min(max(r, -param), param)
    return math.exp(m) - b


@njit(cache=True, fastmath=FASTMATH)
def _squared_norm(x):
    acc = 0.0
    for j in range(x.shape[0]):
        acc += x[j] * x[j]
    return acc


@njit(cache=True)
def sample_values(loss, A, b, reg, x, param=1.0):
    """Return f_i(x) for every sample of dense A, shape (n,)."""
    n = A.shape[0]
    out = np.empty(n)
    half_reg_sq = 0.5 * reg * np.dot(x, x)
    for i in range(n):
        out[i] = phi(loss, np.dot(A[i], x), b[i], param) + half_reg_sq
    return out


@njit(cache=True)
def sample_gradients(loss, A, b, reg, x, param=1.0):
    """Return the (sub)gradients of every f_i at x for dense A, shape (n, d)."""
    n, d = A.shape
    out = np.empty((n, d))
    for i in range(n):
        s = dphi(loss, np.dot(A[i], x), b[i], param)
        for j in range(d):
            out[i, j] = s * A[i, j] + reg * x[j]
    return out


@njit(cache=True, fastmath=FASTMATH)
def _margin(sparse, A, data, indices, indptr, i, x):
    # Plain loops: np.dot on a row view calls BLAS, whose call overhead exceeds the
    # arithmetic for rows of a few hundred entries.
    acc = 0.0
    if sparse:
        for p in range(indptr[i], indptr[i + 1]):
            acc += data[p] * x[indices[p]]
        return acc
    for j in range(x.shape[0]):
        acc += A[i, j] * x[j]
    return acc


@njit(cache=True, fastmath=FASTMATH)
def _add_row(sparse, A, data, indices, indptr, i, coef, g):
    if sparse:
        for p in range(indptr[i], indptr[i + 1]):
            g[indices[p]] += coef * data[p]
    else:
        row = A[i]
        for j in range(g.shape[0]):
            g[j] += coef * row[j]


@njit(cache=True, fastmath=FASTMATH)
def _finish_batch(g, x, reg, batch_size, x_norm, value, value_mag, grad_mag):
    """Turn the batch sums into means and add the ridge term to each output."""
    inv = 1.0 / batch_size
    for j in range(g.shape[0]):
        g[j] = g[j] * inv + reg * x[j]
    half_reg_sq = 0.5 * reg * x_norm * x_norm
    return (
        value * inv + half_reg_sq,
        value_mag * inv + half_reg_sq,
        grad_mag * inv + reg * x_norm,
    )


@njit(cache=True, fastmath=FASTMATH)
def _batch_multinomial(A, b, reg, row_norm, x, batch, g):
    """``batch_value_grad`` for the multinomial loss on dense rows.

    x stacks the class rows w_0, ..., w_{K-1} of W (K = len(x) / p): x[k p + j] = W[k, j].
    f_i(x) = log sum_k exp(w_k^T a_i) - w_{b_i}^T a_i + reg ||x||^2 / 2, with gradient
    block k equal to (softmax_k - [k == b_i]) a_i + reg w_k.
    """
    p = A.shape[1]
    K = x.shape[0] // p
    s = batch.shape[0]
    margins = np.empty(K)
    g[:] = 0.0
    value = 0.0
    value_mag = 0.0
    grad_mag = 0.0
    x_norm = math.sqrt(_squared_norm(x))
    for q in range(s):
        i = batch[q]
        label = int(b[i])
        top = -np.inf
        for k in range(K):
            acc = 0.0
            for j in range(p):
                acc += A[i, j] * x[k * p + j]
            margins[k] = acc
            top = max(top, acc)
        total = 0.0
        for k in range(K):
            total += math.exp(margins[k] - top)
        lse = top + math.log(total)
        value += lse - margins[label]
        # Each margin is a p-term dot product with error up to gamma_p ||a_i|| ||x||,
        # and log-sum-exp and the label margin each move by at most that much.
        value_mag += abs(lse) + abs(margins[label]) + 2.0 * row_norm[i] * x_norm
        coef_sq = 0.0
        for k in range(K):
            coef = math.exp(margins[k] - lse) - (1.0 if k == label else 0.0)
            coef_sq += coef * coef
            for j in range(p):
                g[k * p + j] += coef * A[i, j]
        grad_mag += (math.sqrt(coef_sq) + row_norm[i] * x_norm) * row_norm[i]
    return _finish_batch(g, x, reg, s, x_norm, value, value_mag, grad_mag)


@njit(cache=True, fastmath=FASTMATH)
def batch_value_grad(
    loss, param, sparse, A, data, indices, indptr, b, reg, row_norm, phi2_max, x,
    batch, g,
):
    """Evaluate f_S(x) = mean_{i in S} f_i(x) and write its (sub)gradient into ``g``.

    Parameters
    ----------
    loss : int
        Loss code.
    param : float
        Loss parameter (Huber's delta).
    sparse : bool
        Read rows from the CSR arrays (data, indices, indptr) instead of dense ``A``.
    A : ndarray, shape (n, d), or shape (0, d) when sparse
    data, indices, indptr : CSR arrays of the data matrix (empty when dense)
    b : ndarray, shape (n,)
    reg : float
        L2 regularization strength.
    row_norm : ndarray, shape (n,)
        ||a_i|| for every sample.
    phi2_max : float
        sup |phi''| over all margins, used for smooth losses with bounded curvature;
        Poisson uses exp(m) at the computed margin and kinked losses use 0.
    x : ndarray, shape (d,)
    batch : ndarray of int64, shape (s,)
        Sample indices of the minibatch S.
    g : ndarray, shape (d,)
        Output buffer for the (sub)gradient of f_S at x.

    Returns
    -------
    value : float
        f_S(x).
    value_magnitude : float
        mean_i (|phi_i| + |phi_i'| ||a_i|| ||x||) + reg ||x||^2 / 2: the scale of the
        summed terms, so gamma_{d+s} times it bounds the rounding error of ``value``.
    grad_magnitude : float
        mean_i (|phi_i'| + c_i ||a_i|| ||x||) ||a_i|| + reg ||x|| with c_i the local
        curvature |phi''(m_i)| (or ``phi2_max`` where it is finite): the same for the
        gradient, including the effect of the rounded margin on phi'.
    """
    if loss == MULTINOMIAL:
        return _batch_multinomial(A, b, reg, row_norm, x, batch, g)
    s = batch.shape[0]
    g[:] = 0.0
    value = 0.0
    value_mag = 0.0
    grad_mag = 0.0
    x_norm = math.sqrt(_squared_norm(x))
    for k in range(s):
        i = batch[k]
        m = _margin(sparse, A, data, indices, indptr, i, x)
        p = phi(loss, m, b[i], param)
        dp = dphi(loss, m, b[i], param)
        value += p
        kinked = loss == HINGE or loss == ABSOLUTE
        # At a kink a rounded margin may select the subgradient of the other side; the
        # step then uses a valid subgradient at a point whose margin differs by the
        # rounding error, which costs at most the Lipschitz constant 1 times that
        # error in the value, so the magnitude uses 1 in place of |phi'|.
        slope = 1.0 if kinked else abs(dp)
        value_mag += abs(p) + slope * row_norm[i] * x_norm
        if kinked:
            curvature = 0.0
        elif loss == POISSON:
            curvature = math.exp(m)
        else:
            curvature = phi2_max
        grad_mag += (abs(dp) + curvature * row_norm[i] * x_norm) * row_norm[i]
        _add_row(sparse, A, data, indices, indptr, i, dp, g)
    return _finish_batch(g, x, reg, s, x_norm, value, value_mag, grad_mag)
