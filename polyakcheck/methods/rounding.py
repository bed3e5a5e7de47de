"""Float64 rounding slack for the almost-sure statements S1 and I1.

S1 and I1 compare two squared distances that the method computes in float64. In exact
arithmetic the inequality

    ||z_{t+1} - x_star||^2 <= ||z_t - x_star||^2 - (s_t)_+^2 / ||g_t||^2

holds on every step, because z_{t+1} is the projection of z_t onto the half-space
H_t = {y : s_t + <g_t, y - z_t> <= 0} and x_star lies in H_t by convexity of f_xi. The
oracle certificate does not enter: ``f_i_star`` is evaluated at the same ``x_star`` the
check measures against, so x_star is in H_t exactly, whatever its distance to the true
minimizer. What remains is rounding, bounded with the standard model
fl(a op b) = (a op b)(1 + e), |e| <= u = 2^-53, and gamma_k = k u / (1 - k u) for a sum of
k terms (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., sec. 3.1):

1. The computed numerator s_t and gradient g_t carry errors e_s and e_g, so the computed
   half-space may miss x_star by delta = (e_s + ||e_g|| ||z_t - x_star||) / ||g_t||.
   Projecting onto a half-space that misses a point by delta adds at most
   4 delta ||z_t - x_star|| + 4 delta^2 to the squared distance of the result.
2. Forming z_{t+1} = z_t - gamma_t g_t perturbs it by at most
   e_z = 2 u (||z_t|| + gamma_t ||g_t||) in norm, which changes the squared distance by
   at most 2 ||z_{t+1} - x_star|| e_z + e_z^2.
3. Each squared norm over d coordinates has relative error gamma_d.

The slack is the sum of these terms with e_s and ||e_g|| bounded by gamma_{d+s+4} times
the magnitude of the summed terms (s = batch size), and then doubled. The doubling covers
second-order terms that the first-order bounds above drop, so the slack stays an upper
bound on the rounding error rather than an estimate of it.
"""

import math

from numba import njit

UNIT_ROUNDOFF = 2.0**-53


@njit(cache=True)
def gamma_k(k):
    """Return gamma_k = k u / (1 - k u), the relative error bound of a k-term sum."""
    ku = k * UNIT_ROUNDOFF
    return ku / (1.0 - ku)


@njit(cache=True)
def monotone_slack(
    gamma_sum, gamma_norm, value_magnitude, grad_magnitude, inv_g_norm, dist_now,
    dist_next, z_norm, step_norm, decrease,
):
    """Bound the float64 rounding error of one S1/I1 comparison.

    Parameters
    ----------
    gamma_sum, gamma_norm : float
        gamma_k for k = d + s + 4 (the terms of s_t and g_t, s the batch size) and for
        k = d + 2 (the squared norms); the loops compute them once per run.
    value_magnitude : float
        Sum of the magnitudes of the terms in the computed numerator s_t
        (f_S(z_t), f_S(x_star) and the inner product).
    grad_magnitude : float
        Magnitude scale of the summed terms of g_t, same units as ||g_t||.
    inv_g_norm : float
        1 / ||g_t|| (the gradient is nonzero).
    dist_now, dist_next : float
        ||z_t - x_star|| and ||z_{t+1} - x_star||.
    z_norm, step_norm : float
        ||z_t|| and ||gamma_t g_t||.
    decrease : float
        The computed (s_t)_+^2 / ||g_t||^2.

    Returns
    -------
    float
        Slack in units of squared distance.
    """
    e_s = gamma_sum * value_magnitude
    e_g = gamma_sum * grad_magnitude
    delta = (e_s + e_g * dist_now) * inv_g_norm
    offset_term = 4.0 * delta * dist_now + 4.0 * delta * delta
    e_z = 2.0 * UNIT_ROUNDOFF * (z_norm + step_norm)
    update_term = 2.0 * dist_next * e_z + e_z * e_z
    norm_term = gamma_norm * (dist_now * dist_now + dist_next * dist_next + decrease)
    return 2.0 * (offset_term + update_term + norm_term)


@njit(cache=True)
def average_slack(d, t, max_anchor_norm):
    """Bound the rounding drift of the running average x_t = mean(z_0..z_t).

    The recursion x_{t+1} = (lam x_t + z_{t+1}) / (1 + lam) with lam = t + 1 adds at most
    3 u (||x_t|| + ||z_{t+1}||) per step, and the reference mean computed as a running sum
    adds gamma_{t+1} max_k ||z_k||. Both are bounded by max_k ||z_k||, so after t steps
    the two differ by at most (6 t + gamma_{t+1} / u) u max_k ||z_k|| times sqrt(d) for the
    norm over d coordinates.
    """
    return (
        (6.0 * t * UNIT_ROUNDOFF + gamma_k(t + 1)) * max_anchor_norm * math.sqrt(d)
        + 1e-300
    )
