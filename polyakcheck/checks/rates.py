"""Fitted convergence rates: the slope of log(gap) against log(t) over the tail.

The bounds of S2-S4 and I3-I5 decay like t^(-1/2) in general and like t^(-1) under
interpolation (Delta* = 0) for a smooth loss. A bound is an upper bound, so a measured
slope steeper than the theoretical exponent is expected; a slope confidently shallower
than it, on checkpoints above the float64 floor, means the measured gap decays more
slowly than the bound, which a finite horizon can show before the bound itself is
crossed.

Interval: percentile bootstrap over seeds (resample the m runs with replacement,
recompute the seed mean and the least-squares slope), ``BOOTSTRAP_RESAMPLES`` draws from
a fixed generator so the interval is reproducible.
"""

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
TAIL_FRACTION = 0.5
# Checkpoints whose mean gap is below this multiple of the rounding tolerance are
# dropped from the fit: there the gap measures rounding, not convergence.
FLOOR_FACTOR = 100.0


def theoretical_exponent(constants, assumptions):
    """Return -1 under interpolation for a globally smooth loss, else -1/2."""
    interpolating = constants["Delta_star"]["value"] == 0.0
    if interpolating and assumptions.get("smooth_globally", False):
        return -1.0
    return -0.5


def _slope(log_t, log_gap):
    centered = log_t - log_t.mean()
    return float(centered @ (log_gap - log_gap.mean()) / (centered @ centered))


def fit_rate(traces, quantity, exponent, level=0.95, seed=0):
    """Fit the tail slope of the seed-mean of ``quantity`` with a bootstrap interval.

    Parameters
    ----------
    traces : list of Trace
        Runs of one method on one grid.
    quantity : str
        ``"gap_avg"`` or ``"gap_last"``.
    exponent : float
        Theoretical exponent to compare with.
    level : float
        Two-sided level of the bootstrap interval.

    Returns
    -------
    dict
        ``method``, ``quantity``, ``slope``, ``lower``, ``upper``, ``exponent``,
        ``points`` (checkpoints used), ``t_range``, ``slower`` (True when the whole
        interval lies above the exponent), and ``note``.
    """
    t = traces[0].t.astype(float)
    values = np.stack([getattr(tr, quantity) for tr in traces])
    tol = np.max(np.stack([tr.gap_tol for tr in traces]), axis=0)
    mean = values.mean(axis=0)
    start = int(len(t) * (1.0 - TAIL_FRACTION))
    keep = np.zeros(len(t), dtype=bool)
    keep[start:] = True
    keep &= mean > FLOOR_FACTOR * tol
    result = {
        "method": traces[0].label, "quantity": quantity, "exponent": exponent,
        "points": int(keep.sum()), "level": level,
    }
    if keep.sum() < 3:
        result.update(slope=float("nan"), lower=float("nan"), upper=float("nan"),
                      slower=False, t_range=[],
                      note="fewer than 3 tail checkpoints above the float64 floor")
        return result
    log_t = np.log(t[keep])
    slope = _slope(log_t, np.log(mean[keep]))
    rng = np.random.default_rng(seed)
    m = values.shape[0]
    draws = np.empty(BOOTSTRAP_RESAMPLES)
    for k in range(BOOTSTRAP_RESAMPLES):
        sample = values[rng.integers(0, m, m)][:, keep].mean(axis=0)
        draws[k] = _slope(log_t, np.log(np.maximum(sample, np.finfo(float).tiny)))
    alpha = 1.0 - level
    lower, upper = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    slower = bool(lower > exponent)
    result.update(
        slope=slope, lower=float(lower), upper=float(upper), slower=slower,
        t_range=[float(t[keep][0]), float(t[keep][-1])],
        note="decays more slowly than the bound's rate" if slower else
        "consistent with the bound's rate",
    )
    return result
