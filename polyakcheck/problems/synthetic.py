"""Synthetic problems with a controlled condition number, correlation, noise and spread.

``make_synthetic`` draws every random quantity from ``numpy.random.default_rng(seed)``
in a fixed order, whatever the other parameters are. So two calls with the same seed
that differ in one parameter (say the offset scale nu) share the features, x_true and
the noise and offset vectors.
"""

import math
import numbers

import numpy as np
import scipy.linalg

from polyakcheck.problems.families import FAMILIES
from polyakcheck.problems.problem import Problem

REGRESSION_FAMILIES = ("least_squares", "absolute", "huber")
CLASSIFICATION_FAMILIES = ("logistic", "squared_hinge", "hinge")

# Separable labels with interpolate=True get a margin of this multiple of the standard
# deviation of the true scores a_i^T u, with u = x_true / ||x_true||.
SEPARATION_MARGIN = 0.1


def make_synthetic(
    loss="least_squares",
    n=200,
    d=20,
    interpolate=False,
    noise=0.0,
    offset_scale=0.0,
    condition=1.0,
    correlation=0.0,
    reg=0.0,
    seed=0,
    loss_param=None,
    name=None,
):
    """Build a random ``Problem`` of the family ``loss``.

    The rows of A are a_i = S C^(1/2) z_i with z_i standard normal, C the Toeplitz
    correlation matrix C_jk = correlation^|j - k| (its Cholesky factor stands for
    C^(1/2)) and S = diag(s) with s_j = condition^(-j / (2 (d - 1))), a geometric
    sequence from 1 down to 1 / sqrt(condition). So E[a a^T] = S C S, which for
    correlation = 0 has condition number ``condition``. The sample matrix A^T A then
    has a condition number within a factor cond(Z^T Z) of ``condition``, which for
    n > d is near ((1 + sqrt(d / n)) / (1 - sqrt(d / n)))^2 for Gaussian Z
    (Marchenko-Pastur). With correlation != 0, cond(C) multiplies in at most.

    The true coefficients are x_true ~ N(0, I / d), and the scores are m = A x_true.
    The targets depend on the family:

    - least_squares, absolute, huber: b = m + noise * e_noise + offset_scale * e,
      with e_noise and e fixed standard normal vectors. The offsets spread the
      per-sample optimal values: for least squares with n > d and reg = 0,
      f_i(x*) = offset_scale^2 r_i^2 / 2 with r the residual of e against the columns
      of A (noise = 0), so their spread grows as offset_scale^2.
    - poisson: counts b ~ Poisson(exp(m)); with interpolate=True, b = exp(m) instead
      (real, not integer), which every f_i minimizes at x_true.
    - logistic, squared_hinge, hinge: labels b = sign(m) (+1 at 0), each flipped
      independently with probability ``noise``.

    Parameters
    ----------
    loss : str, default "least_squares"
        A family of ``families.FAMILIES``.
    n : int, default 200
        Number of samples, >= 1. Any n relative to d is allowed (n < d, n > d).
    d : int, default 20
        Dimension, >= 1.
    interpolate : bool, default False
        Make x_true minimize every f_i. Regression families: b = A x_true exactly, so
        f_i(x*) = 0 for every i when reg = 0 (noise and offset_scale must be 0).
        Classification families: the rows with b_i a_i^T u < gamma are moved along u
        to b_i a_i^T u = gamma, gamma = SEPARATION_MARGIN * std(A u), so the data are
        separable with that margin (noise must be 0). For hinge and squared hinge
        with reg = 0 this gives f* = 0 and f_i(x*) = 0. Logistic loss has no
        minimizer on separable data unless reg > 0, so it requires reg > 0.
        Poisson: b = exp(A x_true).
    noise : float, default 0.0
        Regression: standard deviation of the Gaussian noise added to b, >= 0.
        Classification: probability of flipping each label, in [0, 0.5]. Not used by
        Poisson, whose counts are random already (must be 0).
    offset_scale : float, default 0.0
        The scale nu of the per-sample offsets nu * e of the regression families,
        >= 0. Must be 0 for the other families.
    condition : float, default 1.0
        Condition number of E[a a^T] for correlation = 0, >= 1 and finite.
    correlation : float, default 0.0
        Correlation rho of neighbouring features, |rho| < 1.
    reg : float, default 0.0
        L2 regularization strength, >= 0.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.
    loss_param : float or None
        Huber's delta.
    name : str or None
        Problem name; None gives ``"synthetic-<loss>-n<n>-d<d>-seed<seed>"``.

    Returns
    -------
    Problem
        Dense A of shape (n, d) and x0 = 0.

    Raises
    ------
    ValueError
        If a parameter is out of range or contradicts another one; the message names
        the parameter and its value.
    """
    _validate(loss, n, d, interpolate, noise, offset_scale, condition, correlation, reg)
    rng = np.random.default_rng(seed)
    standard = rng.standard_normal((n, d))
    x_true = rng.standard_normal(d) / math.sqrt(d)
    noise_vector = rng.standard_normal(n)
    offsets = rng.standard_normal(n)
    flip_draws = rng.random(n)

    correlation_factor = np.linalg.cholesky(scipy.linalg.toeplitz(correlation ** np.arange(d)))
    exponents = np.arange(d) / (2.0 * (d - 1)) if d > 1 else np.zeros(1)
    column_scales = float(condition) ** -exponents
    A = (standard @ correlation_factor.T) * column_scales
    scores = A @ x_true

    if loss in REGRESSION_FAMILIES:
        b = scores + noise * noise_vector + offset_scale * offsets
    elif loss == "poisson":
        # Drawn last, because the Poisson sampler consumes a varying number of draws.
        b = np.exp(scores) if interpolate else rng.poisson(np.exp(scores)).astype(np.float64)
    else:
        b = np.where(scores >= 0, 1.0, -1.0)
        if interpolate:
            A = _push_to_margin(A, b, x_true)
        b = np.where(flip_draws < noise, -b, b)

    if name is None:
        name = f"synthetic-{loss}-n{n}-d{d}-seed{seed}"
    return Problem(name, loss, A, b, reg=reg, loss_param=loss_param)


def _push_to_margin(A, labels, x_true):
    """Move the rows within the margin along u = x_true / ||x_true|| out to it."""
    u = x_true / np.linalg.norm(x_true)
    margin = SEPARATION_MARGIN * float(np.std(A @ u))
    signed = labels * (A @ u)
    shortfall = np.maximum(margin - signed, 0.0)
    return A + (shortfall * labels)[:, None] * u[None, :]


def _validate(loss, n, d, interpolate, noise, offset_scale, condition, correlation, reg):
    if loss not in FAMILIES:
        raise ValueError(f"unknown loss {loss!r}; use one of {sorted(FAMILIES)}")
    if loss == "multinomial":
        # NOTE: no synthetic generator for the vector-margin family yet.
        raise ValueError(
            "make_synthetic does not generate multinomial problems; use "
            "load_dataset('digits' | 'wine' | 'iris', loss='multinomial') or "
            "Problem(name, 'multinomial', A, labels, reg=...)"
        )
    for label, value in (("n", n), ("d", d)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{label} must be an integer >= 1, got {label}={value!r}")
    for label, value in (("noise", noise), ("offset_scale", offset_scale), ("reg", reg)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{label} must be finite and >= 0, got {label}={value!r}")
    if not (np.isfinite(condition) and condition >= 1):
        raise ValueError(f"condition must be finite and >= 1, got condition={condition!r}")
    if not (np.isfinite(correlation) and abs(correlation) < 1):
        raise ValueError(
            f"correlation must satisfy |correlation| < 1, got correlation={correlation!r}"
        )
    if loss in CLASSIFICATION_FAMILIES and noise > 0.5:
        raise ValueError(
            f"noise is a label-flip probability for {loss} and must be <= 0.5, "
            f"got noise={noise!r}"
        )
    if loss == "poisson" and noise != 0:
        raise ValueError(
            f"noise must be 0 for poisson, whose counts are random already, got noise={noise!r}"
        )
    if loss not in REGRESSION_FAMILIES and offset_scale != 0:
        raise ValueError(
            f"offset_scale applies to {', '.join(REGRESSION_FAMILIES)} only, got "
            f"offset_scale={offset_scale!r} for {loss}"
        )
    if interpolate and (noise != 0 or offset_scale != 0):
        raise ValueError(
            f"interpolate=True needs noise=0 and offset_scale=0, got noise={noise!r} "
            f"and offset_scale={offset_scale!r}"
        )
    if interpolate and loss == "logistic" and reg == 0:
        raise ValueError(
            "interpolate=True makes the labels separable, where logistic loss with reg=0 "
            "has no minimizer; pass reg > 0, for example reg=1e-2"
        )
