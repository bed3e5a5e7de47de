"""The compiled loop shared by SPS*, IAM and the SGD baselines.

All four methods are one recursion on an anchor z and an iterate x:

    z_{t+1} = z_t - gamma_t g_t,
    x_{t+1} = (lam_{t+1} x_t + z_{t+1}) / (1 + lam_{t+1}),

with g_t = grad f_S(x_t) on the minibatch S = samples[t]. The step is either Polyak's

    gamma_t = (f_S(x_t) - f_S(x_star) + <g_t, z_t - x_t>)_+ / ||g_t||^2

or a constant. With lam = 0 the anchor and the iterate coincide (SPS* or plain SGD);
lam_t = t makes x_t the mean of z_0..z_t (IAM in theory); a constant lam with a constant
step is SGD with heavy-ball momentum beta = lam / (1 + lam) and learning rate
step / (1 + lam).

The whole run is one call, so a trace costs no Python per step. The loop keeps
checkpoints on a given grid plus running statistics, never the d x T history.
"""

import math

import numpy as np
from numba import njit

from polyakcheck.methods.rounding import average_slack, monotone_slack
from polyakcheck.problems.losses import batch_value_grad

STEP_POLYAK = 0
STEP_CONSTANT = 1

LAM_NONE = 0
LAM_T = 1
LAM_CONSTANT = 2

# Layout of the ``monotone`` output vector.
MONO_WORST_RATIO = 0
MONO_WORST_STEP = 1
MONO_WORST_LHS = 2
MONO_WORST_RHS = 3
MONO_WORST_TOL = 4
MONO_VIOLATIONS = 5
MONO_ZERO_GRADIENTS = 6
MONO_MIN_SLACK = 7
MONO_SIZE = 8


@njit(cache=True)
def _dist(u, v):
    acc = 0.0
    for j in range(u.shape[0]):
        r = u[j] - v[j]
        acc += r * r
    return math.sqrt(acc)


@njit(cache=True)
def run_loop(
    loss, param, sparse, A, data, indices, indptr, b, reg, row_norm, phi2_max,
    f_target, f_i_star, f_i_star_mag, x_star, x0, samples,
    step_rule, step_size, step_scale, positive_part, max_step_size,
    lam_rule, lam_const, weight_decay, checkpoints,
):
    """Run one method for ``T = samples.shape[0] - 1`` steps.

    Parameters
    ----------
    loss, param, sparse, A, data, indices, indptr, b, reg, row_norm, phi2_max
        The problem, as for ``batch_value_grad`` (dense A or CSR arrays).
    f_target : ndarray, shape (n,)
        Values the Polyak step uses in place of f_i(x_star); equal to ``f_i_star`` for
        SPS* and IAM, shifted or noisy for negative controls and lower-bound variants.
    f_i_star : ndarray, shape (n,)
        The oracle's f_i(x_star), used by the S1/I1 check only.
    f_i_star_mag : ndarray, shape (n,)
        Magnitude of the terms summed in each f_i_star, for the rounding slack.
    x_star, x0 : ndarray, shape (d,)
    samples : ndarray of int64, shape (T + 1, s)
        Minibatch indices; row t is the batch drawn at x_t. Row T is used only for the
        gradient g_T at the last iterate that the bound I3 needs.
    step_rule : int
        ``STEP_POLYAK`` or ``STEP_CONSTANT``.
    step_size : float
        The constant step on z (``STEP_CONSTANT`` only).
    step_scale : float
        Multiplies every step (1 for all real methods; negative controls use 2).
    positive_part : bool
        Clip the Polyak numerator at 0 (False only in a negative control).
    max_step_size : float
        Cap on gamma_t (inf for none).
    lam_rule : int
        ``LAM_NONE`` (x = z), ``LAM_T`` (lam_t = t) or ``LAM_CONSTANT``.
    lam_const : float
        lam for ``LAM_CONSTANT``; for ``LAM_T`` an offset added to t (0 for IAM, a
        negative control shifts it).
    weight_decay : float
        Decoupled anchor decay: z_{t+1} = (1 - weight_decay) z_t - gamma_t g_t.
    checkpoints : ndarray of int64, shape (K,)
        Strictly increasing steps in [0, T] at which the state is recorded.

    Returns
    -------
    cp_x, cp_xbar, cp_z : ndarray, shape (K, d)
        x_t, the average (1/t) sum_{k<t} x_k (x_0 at t = 0), and z_t at each checkpoint.
    cp_g2sum : ndarray, shape (K,)
        sum_{k<=t} ||g_k||^2, including g_t drawn at x_t.
    cp_gamma : ndarray, shape (K, 3)
        min, mean and max of gamma over the steps since the previous checkpoint.
    cp_avg_err, cp_avg_tol : ndarray, shape (K,)
        ||x_t - mean(z_0..z_t)|| and its rounding slack (meaningful for ``LAM_T``).
    monotone : ndarray, shape (MONO_SIZE,)
        Worst S1/I1 step: see the ``MONO_*`` indices.
    """
    d = x0.shape[0]
    T = samples.shape[0] - 1
    s = samples.shape[1]
    K = checkpoints.shape[0]

    x = x0.copy()
    z = x0.copy()
    g = np.empty(d)
    x_sum = np.zeros(d)
    z_sum = np.zeros(d)
    max_z_norm = 0.0
    g2sum = 0.0

    cp_x = np.empty((K, d))
    cp_xbar = np.empty((K, d))
    cp_z = np.empty((K, d))
    cp_g2sum = np.empty(K)
    cp_gamma = np.empty((K, 3))
    cp_avg_err = np.zeros(K)
    cp_avg_tol = np.zeros(K)
    monotone = np.zeros(MONO_SIZE)
    monotone[MONO_WORST_RATIO] = -np.inf
    monotone[MONO_WORST_STEP] = -1.0
    monotone[MONO_MIN_SLACK] = np.inf

    seg_min = np.inf
    seg_max = -np.inf
    seg_sum = 0.0
    seg_count = 0
    k = 0

    # The distance ||z_t - x_star|| of one step is the "next" distance of the step
    # before, since nothing moves z in between, so each step computes it once.
    dist_now = _dist(z, x_star)
    track_mean = lam_rule == LAM_T
    for j in range(d):
        z_sum[j] = z[j]

    for t in range(T + 1):
        batch = samples[t]
        f_x, value_mag, grad_mag = batch_value_grad(
            loss, param, sparse, A, data, indices, indptr, b, reg, row_norm, phi2_max,
            x, batch, g,
        )
        # One pass for the reductions the step needs.
        gg = 0.0
        gz = 0.0
        zz = 0.0
        for j in range(d):
            gg += g[j] * g[j]
            gz += g[j] * (z[j] - x[j])
            zz += z[j] * z[j]
        g2sum += gg
        z_norm = math.sqrt(zz)
        if z_norm > max_z_norm:
            max_z_norm = z_norm

        if k < K and checkpoints[k] == t:
            cp_x[k] = x
            cp_z[k] = z
            if t == 0:
                cp_xbar[k] = x
            else:
                for j in range(d):
                    cp_xbar[k, j] = x_sum[j] / t
            cp_g2sum[k] = g2sum
            if seg_count > 0:
                cp_gamma[k, 0] = seg_min
                cp_gamma[k, 1] = seg_sum / seg_count
                cp_gamma[k, 2] = seg_max
            else:
                cp_gamma[k, :] = np.nan
            if track_mean:
                err = 0.0
                for j in range(d):
                    r = x[j] - z_sum[j] / (t + 1)
                    err += r * r
                cp_avg_err[k] = math.sqrt(err)
            cp_avg_tol[k] = average_slack(d, t, max_z_norm)
            seg_min = np.inf
            seg_max = -np.inf
            seg_sum = 0.0
            seg_count = 0
            k += 1
        if t == T:
            break

        f_target_S = 0.0
        f_star_S = 0.0
        f_star_mag_S = 0.0
        for q in range(s):
            i = batch[q]
            f_target_S += f_target[i]
            f_star_S += f_i_star[i]
            f_star_mag_S += f_i_star_mag[i]
        f_target_S /= s
        f_star_S /= s
        f_star_mag_S /= s
        g_norm = math.sqrt(gg)

        if step_rule == STEP_POLYAK:
            numerator = f_x - f_target_S + gz
            if positive_part and numerator < 0.0:
                numerator = 0.0
            gamma = numerator / gg if gg > 0.0 else 0.0
        else:
            gamma = step_size
        gamma *= step_scale
        if gamma > max_step_size:
            gamma = max_step_size

        seg_sum += gamma
        seg_count += 1
        if gamma < seg_min:
            seg_min = gamma
        if gamma > seg_max:
            seg_max = gamma

        # One pass for the update: z, its new distance to x_star, x, and the sums.
        keep = 1.0 - weight_decay
        if lam_rule == LAM_NONE:
            lam = 0.0
        elif lam_rule == LAM_T:
            lam = float(t + 1) + lam_const
        else:
            lam = lam_const
        inv = 1.0 / (1.0 + lam)
        dist_sq = 0.0
        for j in range(d):
            zj = keep * z[j] - gamma * g[j]
            z[j] = zj
            r = zj - x_star[j]
            dist_sq += r * r
            x_sum[j] += x[j]
            if lam_rule == LAM_NONE:
                x[j] = zj
            else:
                x[j] = (lam * x[j] + zj) * inv
            if track_mean:
                z_sum[j] += zj
        dist_next = math.sqrt(dist_sq)

        # S1 / I1 with the oracle's f_i(x_star), whatever the step used.
        s_true = f_x - f_star_S + gz
        if gg > 0.0:
            decrease = s_true * s_true / gg if s_true > 0.0 else 0.0
            lhs = dist_sq
            rhs = dist_now * dist_now - decrease
            value_scale = value_mag + f_star_mag_S + abs(gz) + g_norm * z_norm
            tol = monotone_slack(
                d, s, value_scale, grad_mag, g_norm, dist_now, dist_next,
                z_norm, abs(gamma) * g_norm, decrease,
            )
            excess = lhs - rhs
            ratio = excess / tol
            # A step that does not move z (gamma = 0 and no decay) meets the bound
            # with equality when s_t <= 0; it says nothing about the margin, so only
            # a violation counts from it.
            moved = gamma != 0.0 or weight_decay != 0.0
            if (moved or excess > 0.0) and ratio > monotone[MONO_WORST_RATIO]:
                monotone[MONO_WORST_RATIO] = ratio
                monotone[MONO_WORST_STEP] = t
                monotone[MONO_WORST_LHS] = lhs
                monotone[MONO_WORST_RHS] = rhs
                monotone[MONO_WORST_TOL] = tol
            if moved and tol - excess < monotone[MONO_MIN_SLACK]:
                monotone[MONO_MIN_SLACK] = tol - excess
            if excess > tol:
                monotone[MONO_VIOLATIONS] += 1.0
        else:
            monotone[MONO_ZERO_GRADIENTS] += 1.0
        dist_now = dist_next

    return (
        cp_x, cp_xbar, cp_z, cp_g2sum, cp_gamma, cp_avg_err, cp_avg_tol, monotone,
    )
