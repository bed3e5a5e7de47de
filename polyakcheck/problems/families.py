"""Loss families: phi(m, b) of the margin m = a_i^T x, with what each one satisfies.

Every family here is a generalized linear loss f_i(x) = phi(a_i^T x, b_i) + reg ||x||^2 / 2
with phi convex in m. The table ``FAMILIES`` holds, for each family, the facts that the
constants and the checkers read: the labels it accepts, sup |phi'| and sup |phi''| over
all margins (inf when unbounded), and machine-readable assumptions:

- ``convex``: every f_i is convex (all families here).
- ``smooth_globally``: phi' is Lipschitz on all of R, so f_i is L_max-smooth on R^d;
  the S4 corollaries need this.
- ``lipschitz_globally``: sup |phi'| < inf, so f_i is Lipschitz on R^d when reg = 0.
- ``locally_smooth_only``: phi'' is finite everywhere but unbounded (Poisson), so only
  the local constants on the ball B_D apply.

The vectorized numpy forms below mirror the Numba kernels of ``losses`` and are used
outside the compiled loops (oracle, constants, checkpoint gaps).
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import expit


@dataclass(frozen=True)
class Family:
    """Facts about one loss family.

    Attributes
    ----------
    name : str
    code : int
        Loss code of the Numba kernels.
    formula : str
        phi(m, b) in plain text.
    labels : str
        ``"real"``, ``"pm1"`` (labels in {-1, +1}), ``"nonneg"`` (counts >= 0) or
        ``"class"`` (class indices 0, ..., K-1).
    phi1_max : float
        sup over m of |phi'(m, b)|; inf when unbounded.
    phi2_max : float
        sup over m of |phi''(m, b)|; inf when unbounded or when phi has kinks.
    smooth_globally, lipschitz_globally, locally_smooth_only : bool
    has_kinks : bool
        phi is not differentiable at some margins; the oracle certifies with the
        distance from 0 to the subdifferential instead of the gradient norm.
    """

    name: str
    code: int
    formula: str
    labels: str
    phi1_max: float
    phi2_max: float
    smooth_globally: bool
    lipschitz_globally: bool
    locally_smooth_only: bool = False
    has_kinks: bool = False

    @property
    def assumptions(self):
        """Machine-readable assumptions as a dict of bool."""
        return {
            "convex": True,
            "smooth_globally": self.smooth_globally,
            "lipschitz_globally": self.lipschitz_globally,
            "locally_smooth_only": self.locally_smooth_only,
            "nonsmooth": self.has_kinks,
        }


INF = float("inf")

FAMILIES = {
    f.name: f
    for f in (
        Family("least_squares", 0, "(m - b)^2 / 2", "real", INF, 1.0, True, False),
        Family("logistic", 1, "log(1 + exp(-b m))", "pm1", 1.0, 0.25, True, True),
        Family("squared_hinge", 2, "max(0, 1 - b m)^2 / 2", "pm1", INF, 1.0, True, False),
        Family("hinge", 3, "max(0, 1 - b m)", "pm1", 1.0, INF, False, True,
               has_kinks=True),
        Family("absolute", 4, "|m - b|", "real", 1.0, INF, False, True, has_kinks=True),
        Family("huber", 5, "(m - b)^2 / 2 if |m - b| <= delta else "
               "delta (|m - b| - delta / 2)", "real", INF, 1.0, True, True),
        Family("poisson", 6, "exp(m) - b m", "nonneg", INF, INF, False, False,
               locally_smooth_only=True),
        # Vector margin m = W a_i with one row w_k per class; x stacks the rows.
        # ||p - e_b|| <= sqrt(2) and the Hessian of log-sum-exp has norm <= 1/2.
        Family("multinomial", 7, "log sum_k exp(m_k) - m_b (softmax cross-entropy)",
               "class", float(np.sqrt(2.0)), 0.5, True, True),
    )
}

# Families whose margin is a vector (one entry per class) rather than a scalar.
VECTOR_MARGIN_FAMILIES = ("multinomial",)

# Default of the one loss parameter (Huber's delta); other families ignore it.
DEFAULT_LOSS_PARAM = {"huber": 1.0}


def phi_np(loss, M, b, param=1.0):
    """Return phi(M, b) elementwise; M has any shape broadcastable against b."""
    if loss == "least_squares":
        return 0.5 * (M - b) ** 2
    if loss == "logistic":
        return np.logaddexp(0.0, -b * M)
    if loss == "squared_hinge":
        return 0.5 * np.maximum(0.0, 1.0 - b * M) ** 2
    if loss == "hinge":
        return np.maximum(0.0, 1.0 - b * M)
    if loss == "absolute":
        return np.abs(M - b)
    if loss == "huber":
        r = np.abs(M - b)
        return np.where(r <= param, 0.5 * r**2, param * (r - 0.5 * param))
    if loss == "poisson":
        return np.exp(M) - b * M
    raise ValueError(f"unknown loss {loss!r}; use one of {sorted(FAMILIES)}")


def dphi_np(loss, M, b, param=1.0):
    """Return phi'(M, b), a subgradient at kinks (the one the Numba kernels use)."""
    if loss == "least_squares":
        return M - b
    if loss == "logistic":
        return -b * expit(-b * M)
    if loss == "squared_hinge":
        return -b * np.maximum(0.0, 1.0 - b * M)
    if loss == "hinge":
        return np.where(b * M < 1.0, -b, 0.0)
    if loss == "absolute":
        return np.sign(M - b)
    if loss == "huber":
        return np.clip(M - b, -param, param)
    if loss == "poisson":
        return np.exp(M) - b
    raise ValueError(f"unknown loss {loss!r}; use one of {sorted(FAMILIES)}")


def d2phi_np(loss, M, b, param=1.0):
    """Return phi''(M, b) where it exists (0 on the flat pieces of kinked losses)."""
    M = np.asarray(M, dtype=float)
    if loss == "least_squares":
        return np.ones_like(M * b)
    if loss == "logistic":
        s = expit(-b * M)
        return s * (1.0 - s)
    if loss == "squared_hinge":
        return np.where(b * M < 1.0, 1.0, 0.0) * np.ones_like(b)
    if loss in ("hinge", "absolute"):
        return np.zeros_like(M * b)
    if loss == "huber":
        return np.where(np.abs(M - b) <= param, 1.0, 0.0)
    if loss == "poisson":
        return np.exp(M) * np.ones_like(b)
    raise ValueError(f"unknown loss {loss!r}; use one of {sorted(FAMILIES)}")


def dphi_abs_max(loss, lo, hi, b, param=1.0):
    """Return sup |phi'(m, b)| over m in [lo, hi], elementwise (exact).

    phi' is monotone nondecreasing in m for every convex phi, so the supremum of its
    absolute value sits at one of the two ends of the interval.
    """
    return np.maximum(np.abs(dphi_np(loss, lo, b, param)), np.abs(dphi_np(loss, hi, b, param)))


def d2phi_max(loss, lo, hi, b, param=1.0):
    """Return sup phi''(m, b) over m in [lo, hi], elementwise.

    Exact for these families: phi'' is constant on pieces (least squares, Huber,
    squared hinge), monotone in m (Poisson), or unimodal with its peak 1/4 at b m = 0
    (logistic).
    """
    if loss == "logistic":
        inside = (lo <= 0.0) & (hi >= 0.0)
        ends = np.maximum(d2phi_np(loss, lo, b), d2phi_np(loss, hi, b))
        return np.where(inside, 0.25, ends)
    if loss == "poisson":
        return np.exp(hi) * np.ones_like(b)
    if loss == "huber":
        # phi'' = 1 on |m - b| <= delta: the interval meets that band unless it lies
        # wholly outside on one side.
        meets = (hi >= b - param) & (lo <= b + param)
        return np.where(meets, 1.0, 0.0)
    if loss == "squared_hinge":
        # phi'' = 1 where b m < 1.
        lowest = np.minimum(b * lo, b * hi)
        return np.where(lowest < 1.0, 1.0, 0.0)
    if loss in ("hinge", "absolute"):
        return np.zeros_like(b * lo)
    return np.ones_like(b * lo)


def margin_infimum(loss, b, param=1.0):
    """Return inf over m of phi(m, b), elementwise (the reg = 0, a_i != 0 case)."""
    b = np.asarray(b, dtype=float)
    if loss == "poisson":
        safe = np.where(b > 0, b, 1.0)
        return np.where(b > 0, b - b * np.log(safe), 0.0)
    return np.zeros_like(b)
