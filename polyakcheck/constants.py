"""Constants of an instance that the bounds use: D, G_D, L_D, L_max, sigma*^2, Delta*, (A, B).

Every value comes with a sentence saying how it was obtained, which the report shows.
All constants are for the minibatch distribution of the run: b samples drawn uniformly
with replacement.
"""

import numpy as np

from polyakcheck.problems.families import (
    d2phi_max, dphi_abs_max, dphi_np, margin_infimum, phi_np,
)

BISECTION_STEPS = 200


def margin_interval(problem, x_star, radius):
    """Return the range [lo, hi] of a_i^T x over the ball ||x - x_star|| <= radius."""
    m_star = problem.margins(x_star)[0]
    reach = radius * problem.row_norms
    return m_star - reach, m_star + reach


def local_lipschitz(problem, x_star, radius):
    """Return G_D >= sup over ||x - x_star|| <= radius of max_i ||g_i(x)||.

    For f_i(x) = phi(a_i^T x) + reg ||x||^2 / 2 the margin ranges over
    a_i^T x_star +- radius ||a_i|| on the ball, and |phi'| is largest at an end of that
    interval (phi' is monotone), so sup |phi'| ||a_i|| is exact; the ridge term adds at
    most reg (||x_star|| + radius). A minibatch (sub)gradient is a mean of sample
    (sub)gradients, so the same G_D bounds it.
    """
    ridge = problem.reg * (np.linalg.norm(x_star) + radius)
    if problem.loss == "multinomial":
        # ||softmax - e_b|| <= sqrt(2) everywhere: a global bound, not the local sup.
        return float(problem.family.phi1_max * np.max(problem.row_norms) + ridge)
    lo, hi = margin_interval(problem, x_star, radius)
    phi1 = dphi_abs_max(problem.loss, lo, hi, problem.b, problem.loss_param)
    return float(np.max(phi1 * problem.row_norms) + ridge)


def local_smoothness(problem, x_star, radius):
    """Return L_D = max_i sup over the ball of phi''(a_i^T x) ||a_i||^2 + reg.

    inf for kinked losses, whose gradient jumps. For Poisson this is finite although
    L_max is not, which is what makes the local constants matter there.
    """
    if problem.family.has_kinks:
        return float("inf")
    if problem.loss == "multinomial":
        return problem.L_max
    lo, hi = margin_interval(problem, x_star, radius)
    phi2 = d2phi_max(problem.loss, lo, hi, problem.b, problem.loss_param)
    return float(np.max(phi2 * problem.row_norms**2) + problem.reg)


def _sample_objective_1d(problem, s):
    """h_i(s) = phi(s ||a_i|| sign, b_i) + reg s^2 / 2 along the best direction, and h_i'.

    Along x = s u with u a unit vector, only the component along a_i changes phi, and
    the ridge term is smallest with u parallel to a_i, so inf f_i = inf over s in R of
    phi(s ||a_i||, b_i) + reg s^2 / 2.
    """
    norms = problem.row_norms
    m = s * norms
    h = phi_np(problem.loss, m, problem.b, problem.loss_param) + 0.5 * problem.reg * s**2
    dh = norms * dphi_np(problem.loss, m, problem.b, problem.loss_param) + problem.reg * s
    return h, dh


def sample_infima(problem):
    """Return a lower bound on inf_x f_i(x) for every sample, shape (n,).

    Without regularization: inf_m phi(m, b_i) in closed form (0 for every family but
    Poisson, where it is b - b log b for b > 0), or phi(0, b_i) when a_i = 0. With
    reg > 0 the problem is one-dimensional along a_i: bisection on a (sub)gradient of
    the reg-strongly convex h_i(s) = phi(s ||a_i||, b_i) + reg s^2 / 2 brackets the
    minimizer in [lo, hi], and the larger of h_i(s_c) - h_i'(s_c)^2 / (2 reg) (strong
    convexity) and the tangent lines at lo and hi is a lower bound on inf h_i.
    Least squares keeps its closed form b^2 reg / (2 (reg + ||a||^2)). Multinomial
    uses the lower bound 0 (log-sum-exp is at least the label margin).
    """
    if problem.loss == "multinomial":
        # log-sum-exp is at least the label margin, so every f_i >= 0.
        return np.zeros(problem.n)
    norms = problem.row_norms
    reg = problem.reg
    b = problem.b
    at_zero = problem.values(np.zeros(problem.d))[0]
    if reg == 0.0:
        inf = margin_infimum(problem.loss, b, problem.loss_param)
        return np.where(norms > 0, inf, at_zero)
    if problem.loss == "least_squares":
        return 0.5 * b**2 * reg / (reg + norms**2)
    lo = np.full(problem.n, -1.0)
    hi = np.full(problem.n, 1.0)
    for _ in range(60):
        _, d_lo = _sample_objective_1d(problem, lo)
        _, d_hi = _sample_objective_1d(problem, hi)
        if np.all(d_lo <= 0) and np.all(d_hi >= 0):
            break
        lo = np.where(d_lo > 0, 2 * lo, lo)
        hi = np.where(d_hi < 0, 2 * hi, hi)
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        _, slope = _sample_objective_1d(problem, mid)
        lo = np.where(slope < 0, mid, lo)
        hi = np.where(slope < 0, hi, mid)
    s = 0.5 * (lo + hi)
    h, slope = _sample_objective_1d(problem, s)
    strong = h - slope**2 / (2.0 * reg)
    # The bracket [lo, hi] contains the minimizer (a subgradient is < 0 at lo and
    # >= 0 at hi), so the tangent lines at its ends give lower bounds as well. At a
    # kink they stay tight, while the strong-convexity bound uses a one-sided slope
    # and is loose.
    h_lo, slope_lo = _sample_objective_1d(problem, lo)
    h_hi, slope_hi = _sample_objective_1d(problem, hi)
    width = hi - lo
    tangent = np.maximum(h_lo + np.minimum(slope_lo, 0.0) * width,
                         h_hi - np.maximum(slope_hi, 0.0) * width)
    return np.minimum(np.maximum(strong, tangent), at_zero)


def gradient_noise(problem, x_star, batch_size):
    """Return sigma*^2 = E ||g_S(x_star)||^2 for a batch of b samples with replacement.

    With the sample gradients g_i at x_star, mean g and single-sample value
    sigma_1^2 = mean ||g_i||^2: E ||mean of b draws||^2 = ||g||^2 (1 - 1/b) + sigma_1^2 / b,
    exact even when the certificate leaves a small ||g||.
    """
    G = problem.gradients(x_star)
    sigma1 = float(np.mean(np.sum(G * G, axis=1)))
    mean_sq = float(np.sum(G.mean(axis=0) ** 2))
    return mean_sq * (1.0 - 1.0 / batch_size) + sigma1 / batch_size, sigma1


def instance_constants(problem, solution, batch_size):
    """Compute every constant the bounds use, each with how it was obtained.

    Returns
    -------
    dict
        Name -> {"value": float, "how": str}. Names: ``D``, ``G_D``, ``L_D``,
        ``L_max``, ``sigma_star_sq``, ``Delta_star``, ``grad_norm_at_x_star``, and the
        (A, B) pairs ``A_S3``, ``B_S3``, ``A_S4a``, ``B_S4a``, ``A_S4b``, ``B_S4b``
        (the S4 pairs are inf for a loss that is not smooth on all of R^d).
    """
    x_star = solution.x_star
    D = float(np.linalg.norm(problem.x0 - x_star))
    G_D = local_lipschitz(problem, x_star, D)
    L_D = local_smoothness(problem, x_star, D)
    L_max = problem.L_max
    sigma_sq, sigma1 = gradient_noise(problem, x_star, batch_size)
    infima = sample_infima(problem)
    delta_star = max(float(solution.f_star - infima.mean()), 0.0)
    # The certificate is itself computed in float64, so its rounding floor is added.
    r = float(solution.grad_norm) + float(solution.grad_norm_tol)
    smooth = problem.family.smooth_globally
    inf = float("inf")
    consts = {
        "D": (D, "||x0 - x_star||_2 with the oracle's x_star"),
        "G_D": (
            G_D,
            "sqrt(2) max_i ||a_i|| + reg (||x_star|| + D): a global bound of the "
            "softmax gradient" if problem.loss == "multinomial" else
            "max_i sup |phi'| over the margin interval a_i^T x_star +- D ||a_i||, "
            "times ||a_i||, plus reg (||x_star|| + D): exact for the loss term",
        ),
        "L_D": (
            L_D,
            "max_i sup phi'' over the same margin interval times ||a_i||^2, plus reg: "
            "smoothness on the ball B_D (inf for kinked losses)",
        ),
        "L_max": (
            L_max,
            f"max_i sup|phi''| ||a_i||^2 + reg with sup|phi''| = "
            f"{problem.family.phi2_max} over all margins",
        ),
        "sigma_star_sq": (
            sigma_sq,
            f"E||g_S(x_star)||^2 for batches of {batch_size} drawn with "
            f"replacement (single sample: {sigma1:.6g})",
        ),
        "Delta_star": (
            delta_star,
            "f_star - mean_i inf f_i, inf f_i in closed form or a certified lower "
            "bound from a 1-D bisection; the single-sample value, valid but loose for "
            "batches",
        ),
        "grad_norm_at_x_star": (
            r, "oracle certificate ||grad f(x_star)|| plus its float64 rounding floor: "
            "an upper bound on the residual gradient",
        ),
        "A_S3": (0.0, "Lipschitz corollary: A = 0"),
        "B_S3": (G_D**2, "B = G_D^2"),
        "A_S4a": (2 * L_max if smooth else inf, "self-bounding: A = 2 L_max"),
        "B_S4a": (2 * L_max * delta_star if smooth else inf, "B = 2 L_max Delta*"),
        "A_S4b": (4 * L_max if smooth else inf, "A = 4 L_max"),
        "B_S4b": (
            2 * sigma_sq + 4 * L_max * r * D if smooth else inf,
            "B = 2 sigma*^2 + 4 L_max ||grad f(x_star)|| D; the second term covers "
            "the certificate's residual gradient (0 at an exact minimizer)",
        ),
    }
    return {k: {"value": float(v), "how": how} for k, (v, how) in consts.items()}
