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

Two loops share the step logic: ``run_loop`` for any batch size and for sparse rows, and
``run_loop_single`` for dense rows and batches of one sample, which never forms g_t:
with g_t = phi'(m) a_i + reg x_t every inner product the step needs is a combination of
a_i^T x_t, a_i^T z_t, ||a_i||^2 (precomputed) and running sums of x and z that the
update pass accumulates for the next step. It reads the sampled row twice per step, as
plain SGD does, and checks S1/I1 with the same rounding slack.

Both loops release the GIL (``nogil``), so runs with different seeds proceed in
parallel threads, one per core (``verify`` does this). Both loops enable only the
``reassoc`` and ``contract`` fast-math flags, so reductions
vectorize and fuse into FMAs while NaN and Inf keep their IEEE behaviour. Neither flag
invalidates the rounding slack: the bound gamma_k |a|^T |b| on a k-term dot product holds
for any summation order, and a fused multiply-add rounds once where two operations
round twice.
"""

import math

import numpy as np
from numba import njit

from polyakcheck.methods.rounding import average_slack, gamma_k, monotone_slack
from polyakcheck.problems.losses import (
    ABSOLUTE, FASTMATH, HINGE, POISSON, batch_value_grad, dphi, phi,
)

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
def _new_outputs(K, d):
    monotone = np.zeros(MONO_SIZE)
    monotone[MONO_WORST_RATIO] = -np.inf
    monotone[MONO_WORST_STEP] = -1.0
    monotone[MONO_MIN_SLACK] = np.inf
    # segment: min, max, sum and count of gamma since the previous checkpoint.
    segment = np.array([np.inf, -np.inf, 0.0, 0.0])
    return (
        np.empty((K, d)), np.empty((K, d)), np.empty((K, d)), np.empty(K),
        np.empty((K, 3)), np.zeros(K), np.zeros(K), monotone, segment,
    )


@njit(cache=True)
def _record_checkpoint(k, t, x, z, x_sum, z_sum, g2sum, segment, track_mean,
                       max_z_norm, cp_x, cp_xbar, cp_z, cp_g2sum, cp_gamma,
                       cp_avg_err, cp_avg_tol):
    d = x.shape[0]
    cp_x[k] = x
    cp_z[k] = z
    if t == 0:
        cp_xbar[k] = x
    else:
        for j in range(d):
            cp_xbar[k, j] = x_sum[j] / t
    cp_g2sum[k] = g2sum
    if segment[3] > 0:
        cp_gamma[k, 0] = segment[0]
        cp_gamma[k, 1] = segment[2] / segment[3]
        cp_gamma[k, 2] = segment[1]
    else:
        cp_gamma[k, :] = np.nan
    if track_mean:
        err = 0.0
        for j in range(d):
            r = x[j] - z_sum[j] / (t + 1)
            err += r * r
        cp_avg_err[k] = math.sqrt(err)
    cp_avg_tol[k] = average_slack(d, t, max_z_norm)
    segment[0] = np.inf
    segment[1] = -np.inf
    segment[2] = 0.0
    segment[3] = 0.0


@njit(cache=True)
def _step_size(step_rule, f_x, f_target_S, gz, gg, positive_part, step_size,
               step_scale, max_step_size, segment):
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
    segment[0] = min(segment[0], gamma)
    segment[1] = max(segment[1], gamma)
    segment[2] += gamma
    segment[3] += 1.0
    return gamma


@njit(cache=True)
def _lam(lam_rule, lam_const, t):
    # lam_{t+1} of the update from step t.
    if lam_rule == LAM_NONE:
        return 0.0
    if lam_rule == LAM_T:
        return float(t + 1) + lam_const
    return lam_const


@njit(cache=True)
def _record_monotone(monotone, t, gamma, weight_decay, gg, s_true, dist_now, dist_sq,
                     value_scale, grad_mag, z_norm, gamma_sum, gamma_norm):
    """Compare both sides of S1/I1 for step t and update the worst-step record."""
    if gg <= 0.0:
        monotone[MONO_ZERO_GRADIENTS] += 1.0
        return
    g_norm = math.sqrt(gg)
    inv_g_norm = 1.0 / g_norm
    dist_next = math.sqrt(dist_sq)
    decrease = 0.0
    if s_true > 0.0:
        scaled = s_true * inv_g_norm
        decrease = scaled * scaled
    rhs = dist_now * dist_now - decrease
    tol = monotone_slack(
        gamma_sum, gamma_norm, value_scale, grad_mag, inv_g_norm, dist_now, dist_next,
        z_norm, abs(gamma) * g_norm, decrease,
    )
    # The slack underflows to 0 when every term is below the smallest normal float.
    # Flooring it at the smallest positive float keeps the ratio defined and still
    # flags any excess.
    tol = max(tol, 5e-324)
    excess = dist_sq - rhs
    # A step that does not move z (gamma = 0 and no decay) meets the bound with
    # equality when s_t <= 0, up to rounding within the slack. Such a step carries no
    # information about the margin, so only a violation counts from it. The
    # comparison excess > worst * tol avoids a division per step.
    moved = gamma != 0.0 or weight_decay != 0.0
    if (moved or excess > tol) and excess > monotone[MONO_WORST_RATIO] * tol:
        monotone[MONO_WORST_RATIO] = excess / tol
        monotone[MONO_WORST_STEP] = t
        monotone[MONO_WORST_LHS] = dist_sq
        monotone[MONO_WORST_RHS] = rhs
        monotone[MONO_WORST_TOL] = tol
    if moved and tol - excess < monotone[MONO_MIN_SLACK]:
        monotone[MONO_MIN_SLACK] = tol - excess
    if excess > tol:
        monotone[MONO_VIOLATIONS] += 1.0


@njit(cache=True, fastmath=FASTMATH, nogil=True)
def run_loop(
    loss, param, sparse, A, data, indices, indptr, b, reg, row_norm, phi2_max,
    f_target, f_i_star, f_i_star_mag, x_star, x0, samples,
    step_rule, step_size, step_scale, positive_part, max_step_size,
    lam_rule, lam_const, weight_decay, track_mean, checkpoints,
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
    track_mean : bool
        Keep the running sum of z for the I2 check (methods that claim I2).
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
    (cp_x, cp_xbar, cp_z, cp_g2sum, cp_gamma, cp_avg_err, cp_avg_tol, monotone,
     segment) = _new_outputs(K, d)

    x = x0.copy()
    z = x0.copy()
    g = np.empty(d)
    x_sum = np.zeros(d)
    z_sum = z.copy()
    max_z_norm = 0.0
    g2sum = 0.0
    k = 0
    keep = 1.0 - weight_decay
    gamma_sum = gamma_k(d + s + 4)
    gamma_norm = gamma_k(d + 2)
    # ||z_t - x_star|| of one step is the new distance of the step before, since
    # nothing moves z in between, so each step computes it once.
    dist_now = _dist(z, x_star)

    for t in range(T + 1):
        batch = samples[t]
        f_x, value_mag, grad_mag = batch_value_grad(
            loss, param, sparse, A, data, indices, indptr, b, reg, row_norm, phi2_max,
            x, batch, g,
        )
        gg = 0.0
        gz = 0.0
        zz = 0.0
        for j in range(d):
            gg += g[j] * g[j]
            gz += g[j] * (z[j] - x[j])
            zz += z[j] * z[j]
        g2sum += gg
        z_norm = math.sqrt(zz)
        max_z_norm = max(max_z_norm, z_norm)

        if k < K and checkpoints[k] == t:
            _record_checkpoint(k, t, x, z, x_sum, z_sum, g2sum, segment, track_mean,
                               max_z_norm, cp_x, cp_xbar, cp_z, cp_g2sum, cp_gamma,
                               cp_avg_err, cp_avg_tol)
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
        gamma = _step_size(step_rule, f_x, f_target_S, gz, gg, positive_part,
                           step_size, step_scale, max_step_size, segment)

        # One pass for the update: z, its new distance to x_star, x, and the sums.
        lam = _lam(lam_rule, lam_const, t)
        inv = 1.0 / (1.0 + lam)
        dist_sq = 0.0
        for j in range(d):
            zj = keep * z[j] - gamma * g[j]
            z[j] = zj
            r = zj - x_star[j]
            dist_sq += r * r
            x_sum[j] += x[j]
            x[j] = (lam * x[j] + zj) * inv
            if track_mean:
                z_sum[j] += zj

        # S1 / I1 with the oracle's f_i(x_star), whatever the step used.
        value_scale = value_mag + f_star_mag_S + abs(gz) + math.sqrt(gg) * z_norm
        _record_monotone(monotone, t, gamma, weight_decay, gg, f_x - f_star_S + gz,
                         dist_now, dist_sq, value_scale, grad_mag, z_norm, gamma_sum,
                         gamma_norm)
        dist_now = math.sqrt(dist_sq)

    return (
        cp_x, cp_xbar, cp_z, cp_g2sum, cp_gamma, cp_avg_err, cp_avg_tol, monotone,
    )


@njit(cache=True, fastmath=FASTMATH)
def _update(z, x, x_sum, row, x_star, keep, step_a, step_x, lam, inv):
    """Apply z <- keep z - step_a row - step_x x and x <- (lam x + z) inv in one pass.

    Returns ||z - x_star||^2, ||x||^2 and x^T z of the new iterates; adds the old x
    to ``x_sum``.
    """
    dist_sq = 0.0
    xx = 0.0
    xz = 0.0
    for j in range(z.shape[0]):
        xj = x[j]
        zj = keep * z[j] - step_a * row[j] - step_x * xj
        z[j] = zj
        r = zj - x_star[j]
        dist_sq += r * r
        x_sum[j] += xj
        xj = (lam * xj + zj) * inv
        x[j] = xj
        xx += xj * xj
        xz += xj * zj
    return dist_sq, xx, xz


@njit(cache=True, fastmath=FASTMATH)
def _update_with_mean(z, x, x_sum, z_sum, row, x_star, keep, step_a, step_x, lam, inv):
    """``_update`` that also adds the new z to ``z_sum`` (for the I2 check)."""
    dist_sq = 0.0
    xx = 0.0
    xz = 0.0
    for j in range(z.shape[0]):
        xj = x[j]
        zj = keep * z[j] - step_a * row[j] - step_x * xj
        z[j] = zj
        z_sum[j] += zj
        r = zj - x_star[j]
        dist_sq += r * r
        x_sum[j] += xj
        xj = (lam * xj + zj) * inv
        x[j] = xj
        xx += xj * xj
        xz += xj * zj
    return dist_sq, xx, xz


@njit(cache=True, fastmath=FASTMATH, nogil=True)
def run_loop_single(
    loss, param, A, b, reg, row_norm, phi2_max,
    f_target, f_i_star, f_i_star_mag, x_star, x0, samples,
    step_rule, step_size, step_scale, positive_part, max_step_size,
    lam_rule, lam_const, weight_decay, track_mean, checkpoints,
):
    """Run one method with dense rows and batches of one sample.

    Same parameters and outputs as ``run_loop`` without the CSR arrays. With
    g = c a_i + reg x (c = phi'(a_i^T x)), the step uses

        ||g||^2 = c^2 ||a_i||^2 + 2 c reg a_i^T x + reg^2 ||x||^2,
        <g, z - x> = c (a_i^T z - a_i^T x) + reg (x^T z - ||x||^2),

    where a_i^T x and a_i^T z come from one pass over the row and ||x||^2 and x^T z
    from the update pass of the step before.
    """
    d = x0.shape[0]
    T = samples.shape[0] - 1
    K = checkpoints.shape[0]
    (cp_x, cp_xbar, cp_z, cp_g2sum, cp_gamma, cp_avg_err, cp_avg_tol, monotone,
     segment) = _new_outputs(K, d)

    x = x0.copy()
    z = x0.copy()
    x_sum = np.zeros(d)
    z_sum = z.copy()
    max_z_norm = 0.0
    g2sum = 0.0
    k = 0
    keep = 1.0 - weight_decay
    gamma_sum = gamma_k(d + 5)
    gamma_norm = gamma_k(d + 2)
    kinked = loss == HINGE or loss == ABSOLUTE
    dist_now = _dist(z, x_star)
    # ||z|| enters only the rounding slack, where the upper bound
    # ||z - x_star|| + ||x_star|| serves as well and costs no pass.
    x_star_norm = math.sqrt(np.dot(x_star, x_star))
    xx = np.dot(x, x)
    xz = xx

    for t in range(T + 1):
        i = samples[t, 0]
        row = A[i]
        m = 0.0
        mz = 0.0
        for j in range(d):
            m += row[j] * x[j]
            mz += row[j] * z[j]
        c = dphi(loss, m, b[i], param)
        norm_a = row_norm[i]
        x_norm = math.sqrt(xx)
        grad_scale = abs(c) * norm_a + reg * x_norm
        gg = c * c * norm_a * norm_a + 2.0 * c * reg * m + reg * reg * xx
        if reg > 0.0 and gg < 64.0 * gamma_k(d + 4) * grad_scale * grad_scale:
            # c a_i and reg x nearly cancel, so the expanded form has lost its
            # relative accuracy; sum the squares of g's coordinates instead.
            gg = 0.0
            for j in range(d):
                gj = c * row[j] + reg * x[j]
                gg += gj * gj
        gz = c * (mz - m) + reg * (xz - xx)
        g2sum += gg
        z_norm = dist_now + x_star_norm
        max_z_norm = max(max_z_norm, z_norm)

        if k < K and checkpoints[k] == t:
            _record_checkpoint(k, t, x, z, x_sum, z_sum, g2sum, segment, track_mean,
                               max_z_norm, cp_x, cp_xbar, cp_z, cp_g2sum, cp_gamma,
                               cp_avg_err, cp_avg_tol)
            k += 1
        if t == T:
            break

        p = phi(loss, m, b[i], param)
        f_x = p + 0.5 * reg * xx
        slope = 1.0 if kinked else abs(c)
        value_mag = abs(p) + slope * norm_a * x_norm + 0.5 * reg * xx
        if kinked:
            curvature = 0.0
        elif loss == POISSON:
            curvature = math.exp(m)
        else:
            curvature = phi2_max
        grad_mag = (abs(c) + curvature * norm_a * x_norm) * norm_a + reg * x_norm
        gamma = _step_size(step_rule, f_x, f_target[i], gz, gg, positive_part,
                           step_size, step_scale, max_step_size, segment)

        lam = _lam(lam_rule, lam_const, t)
        inv = 1.0 / (1.0 + lam)
        step_a = gamma * c
        step_x = gamma * reg
        if track_mean:
            dist_sq, xx, xz = _update_with_mean(
                z, x, x_sum, z_sum, row, x_star, keep, step_a, step_x, lam, inv
            )
        else:
            dist_sq, xx, xz = _update(z, x, x_sum, row, x_star, keep, step_a, step_x,
                                      lam, inv)

        # The expanded <g, z - x> subtracts products of norms up to
        # grad_scale (||z|| + ||x||), which sets the scale of its rounding error.
        value_scale = (value_mag + f_i_star_mag[i] + abs(gz)
                       + grad_scale * (z_norm + x_norm))
        _record_monotone(monotone, t, gamma, weight_decay, gg, f_x - f_i_star[i] + gz,
                         dist_now, dist_sq, value_scale, grad_mag, z_norm, gamma_sum,
                         gamma_norm)
        dist_now = math.sqrt(dist_sq)

    return (
        cp_x, cp_xbar, cp_z, cp_g2sum, cp_gamma, cp_avg_err, cp_avg_tol, monotone,
    )
