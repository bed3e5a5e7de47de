"""The ``Trace`` dataclass: one run of one method with one seed, checkpointed."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trace:
    """Checkpointed record of one run.

    All per-checkpoint arrays have shape (K,) and are aligned with ``t``.

    Attributes
    ----------
    method : dict
        ``Method.describe()`` of the method that ran.
    claims : tuple of str
        Statements the method claims.
    seed : int
        Seed of the sample sequence; every method gets the same sequence for a seed.
    steps : int
        Number of steps T.
    batch_size : int
    t : ndarray of int64
        Checkpoint steps, a geometric grid in [1, T] that contains T.
    gap_last : ndarray
        f(x_t) - f_star.
    gap_avg : ndarray
        f(xbar_t) - f_star with xbar_t = (1/t) sum_{k<t} x_k.
    gap_tol : ndarray
        Float64 rounding bound of the gap values (absolute).
    dist : ndarray
        ||x_t - x_star||.
    anchor_dist : ndarray
        ||z_t - x_star|| (equal to ``dist`` when the method has no anchor).
    g2_sum : ndarray
        sum_{k<=t} ||g_k||^2.
    gamma : ndarray, shape (K, 3)
        min, mean and max step size since the previous checkpoint.
    avg_err, avg_tol : ndarray
        ||x_t - mean(z_0..z_t)|| and its rounding slack (the I2 identity).
    monotone : dict
        Worst step of the S1/I1 comparison: ``worst_ratio`` (excess / slack),
        ``worst_step``, ``worst_lhs``, ``worst_rhs``, ``worst_tol``, ``violations``
        (steps with excess > slack), ``zero_gradients``, ``min_slack``.
    seconds : float
        Wall time of the compiled loop.
    sampling : str
        How samples were drawn: ``uniform``, ``shuffle`` or ``cyclic``.
    """

    method: dict
    claims: tuple
    seed: int
    steps: int
    batch_size: int
    t: np.ndarray
    gap_last: np.ndarray
    gap_avg: np.ndarray
    gap_tol: np.ndarray
    dist: np.ndarray
    anchor_dist: np.ndarray
    g2_sum: np.ndarray
    gamma: np.ndarray
    avg_err: np.ndarray
    avg_tol: np.ndarray
    monotone: dict
    seconds: float
    sampling: str = "uniform"

    @property
    def label(self):
        """Method label."""
        return self.method["label"]
