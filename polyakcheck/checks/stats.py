"""Confidence limits for a mean over independent seeds, and the verdict rule.

Method: the one-sided Student t interval for the mean of m independent runs,
mean +- t_{1 - alpha_k, m - 1} s / sqrt(m), at each of K checkpoints with
alpha_k = alpha / K (Bonferroni), so that the family of K one-sided statements holds
with probability at least 1 - alpha. The t interval is exact for Gaussian samples and
asymptotically valid otherwise; the gaps it is applied to are nonnegative and skewed, so
with few seeds the stated level is approximate.
"""

import numpy as np
from scipy import stats

from polyakcheck.checks.verdict import HOLDS, INCONCLUSIVE, VIOLATED


def one_sided_limits(samples, alpha_each):
    """Return mean, lower and upper one-sided confidence limits per column.

    Parameters
    ----------
    samples : ndarray, shape (m, K)
        One row per seed.
    alpha_each : float
        One-sided error level of each limit.

    Returns
    -------
    mean, lower, upper : ndarray, shape (K,)
        With m = 1 the limits are -inf and +inf: one run gives no confidence limit for a mean.
    """
    samples = np.asarray(samples, dtype=np.float64)
    m = samples.shape[0]
    mean = samples.mean(axis=0)
    if m < 2:
        inf = np.full_like(mean, np.inf)
        return mean, -inf, inf
    half = stats.t.ppf(1.0 - alpha_each, m - 1) * samples.std(axis=0, ddof=1) / np.sqrt(m)
    return mean, mean - half, mean + half


def bernstein_upper(samples, alpha, value_range):
    """Return an empirical Bernstein upper confidence limit of the mean, per column.

    For independent samples in [0, R], with probability at least 1 - alpha,
    E X <= mean + sqrt(2 V ln(2/alpha) / m) + 7 R ln(2/alpha) / (3 (m - 1)), with V the
    unbiased sample variance (Maurer and Pontil, "Empirical Bernstein Bounds and
    Sample Variance Penalization", COLT 2009, Theorem 4). Unlike the t limit it stays
    valid when every sample happens to be equal.

    Parameters
    ----------
    samples : ndarray, shape (m, K)
    alpha : float
    value_range : ndarray or float, shape (K,)
        An upper bound R on every sample of each column.
    """
    samples = np.asarray(samples, dtype=np.float64)
    m = samples.shape[0]
    if m < 2:
        return np.full(samples.shape[1], np.inf)
    log_term = np.log(2.0 / alpha)
    variance = samples.var(axis=0, ddof=1)
    return (
        samples.mean(axis=0)
        + np.sqrt(2.0 * variance * log_term / m)
        + 7.0 * np.asarray(value_range) * log_term / (3.0 * (m - 1))
    )


def decide(lower, upper, tol, bound_lower, bound_upper):
    """Apply the verdict rule at K checkpoints.

    Violated when at some checkpoint the lower limit, less the rounding tolerance,
    exceeds the largest plausible bound. Holds when at every checkpoint the upper limit,
    plus the tolerance, is at most the smallest plausible bound. Inconclusive otherwise.

    Returns
    -------
    status : str
    worst : int
        Index of the checkpoint that decided the status (the largest excess for a
        violation, the smallest relative slack otherwise).
    margin : float
        Relative slack (bound - limit) / bound at ``worst``.
    """
    lower, upper, tol = map(np.asarray, (lower, upper, tol))
    bound_lower, bound_upper = np.asarray(bound_lower), np.asarray(bound_upper)
    scale = np.maximum(np.abs(bound_upper), np.finfo(float).tiny)
    excess = (lower - tol - bound_upper) / scale
    if np.any(excess > 0):
        worst = int(np.argmax(excess))
        return VIOLATED, worst, float(-excess[worst])
    slack = (bound_lower - upper - tol) / scale
    worst = int(np.argmin(slack))
    status = HOLDS if np.all(slack >= 0) else INCONCLUSIVE
    return status, worst, float(slack[worst])
