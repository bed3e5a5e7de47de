"""Constants of an instance that the bounds use: D, G_D, L_max, sigma*^2, Delta*, (A, B).

Every value comes with a sentence saying how it was obtained, which the report shows.
All constants are for the minibatch distribution of the run: b samples drawn uniformly
with replacement.
"""

import numpy as np

from polyakcheck.problems.losses import PHI2_MAX


def _sigmoid(u):
    return 0.5 * (1.0 + np.tanh(0.5 * u))


def local_lipschitz(problem, x_star, radius):
    """Return G_D >= sup over ||x - x_star|| <= radius of max_i ||grad f_i(x)||.

    For f_i(x) = phi(a_i^T x) + reg ||x||^2 / 2 the margin a_i^T x ranges over
    a_i^T x_star +- radius ||a_i|| on the ball, so sup |phi'| on that interval is exact;
    the ridge term adds at most reg (||x_star|| + radius). A minibatch gradient is a mean
    of sample gradients, so the same G_D bounds it.
    """
    m_star = problem.A @ x_star
    reach = radius * problem.row_norms
    if problem.loss == "least_squares":
        phi1 = np.abs(m_star - problem.b) + reach
    else:
        # |phi'(m)| = sigmoid(-b m) is largest where b m is smallest on the interval.
        phi1 = _sigmoid(-(problem.b * m_star - reach))
    ridge = problem.reg * (np.linalg.norm(x_star) + radius)
    return float(np.max(phi1 * problem.row_norms) + ridge)


def sample_infima(problem):
    """Return a lower bound on inf_x f_i(x) for every sample, shape (n,).

    Least squares: the closed form b_i^2 reg / (2 (reg + ||a_i||^2)) (0 when reg = 0
    and a_i != 0). Logistic: 0 without regularization (the infimum is approached as
    ||x|| grows); with reg > 0 the problem is one-dimensional along b_i a_i, solved by
    bisection on h'(s) = 0 for h(s) = log(1 + exp(-s ||a_i||)) + reg s^2 / 2, and
    reported as h(s) - h'(s)^2 / (2 reg), a lower bound because h is reg-strongly convex.
    """
    norms = problem.row_norms
    reg = problem.reg
    if problem.loss == "least_squares":
        if reg == 0.0:
            return np.where(norms > 0, 0.0, 0.5 * problem.b**2)
        return 0.5 * problem.b**2 * reg / (reg + norms**2)
    if reg == 0.0:
        return np.zeros(problem.n)
    lo = np.zeros(problem.n)
    hi = norms / reg + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        slope = -norms * _sigmoid(-mid * norms) + reg * mid
        lo = np.where(slope < 0, mid, lo)
        hi = np.where(slope < 0, hi, mid)
    s = 0.5 * (lo + hi)
    h = np.logaddexp(0.0, -s * norms) + 0.5 * reg * s**2
    slope = -norms * _sigmoid(-s * norms) + reg * s
    return h - slope**2 / (2.0 * reg)


def gradient_noise(problem, x_star, batch_size):
    """Return sigma*^2 = E ||grad f_S(x_star)||^2 for a batch of b samples with replacement.

    With the sample gradients g_i at x_star, mean g and single-sample variance
    sigma_1^2 = mean ||g_i||^2: E ||mean of b draws||^2 = ||g||^2 (1 - 1/b) + sigma_1^2 / b,
    exact even when the certificate leaves a small ||g||.
    """
    m_star = problem.A @ x_star
    if problem.loss == "least_squares":
        phi1 = m_star - problem.b
    else:
        phi1 = -problem.b * _sigmoid(-problem.b * m_star)
    G = phi1[:, None] * problem.A + problem.reg * x_star
    sigma1 = float(np.mean(np.sum(G * G, axis=1)))
    mean_sq = float(np.sum(G.mean(axis=0) ** 2))
    return mean_sq * (1.0 - 1.0 / batch_size) + sigma1 / batch_size, sigma1


def instance_constants(problem, solution, batch_size):
    """Compute every constant the bounds use, each with how it was obtained.

    Returns
    -------
    dict
        Name -> {"value": float, "how": str}. Names: ``D``, ``G_D``, ``L_max``,
        ``sigma_star_sq``, ``Delta_star``, ``grad_norm_at_x_star``, and the (A, B) pairs
        ``A_S3``, ``B_S3``, ``A_S4a``, ``B_S4a``, ``A_S4b``, ``B_S4b``.
    """
    x_star = solution.x_star
    D = float(np.linalg.norm(problem.x0 - x_star))
    G_D = local_lipschitz(problem, x_star, D)
    L_max = problem.L_max
    sigma_sq, sigma1 = gradient_noise(problem, x_star, batch_size)
    infima = sample_infima(problem)
    delta_star = max(float(solution.f_star - infima.mean()), 0.0)
    r = float(solution.grad_norm)
    phi2 = PHI2_MAX[problem.loss]
    consts = {
        "D": (D, "||x0 - x_star||_2 with the oracle's x_star"),
        "G_D": (
            G_D,
            "max_i sup |phi'| over the margin interval a_i^T x_star +- D ||a_i||, "
            "times ||a_i||, plus reg (||x_star|| + D): exact for the loss term",
        ),
        "L_max": (
            L_max,
            f"max_i sup|phi''| ||a_i||^2 + reg with sup|phi''| = {phi2}",
        ),
        "sigma_star_sq": (
            sigma_sq,
            f"E||grad f_S(x_star)||^2 for batches of {batch_size} drawn with "
            f"replacement (single sample: {sigma1:.6g})",
        ),
        "Delta_star": (
            delta_star,
            "f_star - mean_i inf f_i, inf f_i in closed form (least squares) or a "
            "certified lower bound from a 1-D bisection (logistic); single-sample "
            "value, valid but loose for batches",
        ),
        "grad_norm_at_x_star": (r, "oracle certificate ||grad f(x_star)||"),
        "A_S3": (0.0, "Lipschitz corollary: A = 0"),
        "B_S3": (G_D**2, "B = G_D^2"),
        "A_S4a": (2 * L_max, "self-bounding: A = 2 L_max"),
        "B_S4a": (2 * L_max * delta_star, "B = 2 L_max Delta*"),
        "A_S4b": (4 * L_max, "A = 4 L_max"),
        "B_S4b": (
            2 * sigma_sq + 4 * L_max * r * D,
            "B = 2 sigma*^2 + 4 L_max ||grad f(x_star)|| D; the second term covers "
            "the certificate's residual gradient (0 at an exact minimizer)",
        ),
    }
    return {k: {"value": float(v), "how": how} for k, (v, how) in consts.items()}
