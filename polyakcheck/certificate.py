"""Certificates for the oracle: optimality of a minimizer, or absence of one.

The oracle certifies x_star with one of two kinds of certificate:

- ``"gradient"`` for the differentiable families (least squares, logistic, squared
  hinge, Huber, Poisson): the norm ||grad f(x)||_2.
- ``"subdifferential distance"`` for the families with kinks (hinge, absolute): the
  distance from 0 to the subdifferential of f at x. Samples whose margin lies within
  a tolerance of the kink may take any slope between the two one-sided derivatives,
  and a small bounded least-squares problem picks the slopes that minimize the norm.

Each certificate comes with its floor: a bound on the float64 rounding error of the
evaluated norm. A norm within ``CERTIFICATE_FACTOR`` times its floor certifies x.

Without regularization, logistic and Poisson loss can lack a minimizer. A direction
along which f decreases forever certifies that: ``separating_direction`` and
``poisson_escape_direction`` find one with a linear program.
"""

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize

from polyakcheck.problems.families import d2phi_max, dphi_abs_max, phi_np

logger = logging.getLogger(__name__)

GRADIENT = "gradient"
SUBDIFFERENTIAL_DISTANCE = "subdifferential distance"

# A certificate norm at or below CERTIFICATE_FACTOR times its rounding floor certifies
# the point. The oracle raises OracleError above it.
CERTIFICATE_FACTOR = 1e3

UNIT_ROUNDOFF = 2.0**-53

# numpy sums a contiguous float64 axis with pairwise summation: blocks of at most 128
# terms are summed with 8 accumulators of at most 16 terms each, and longer arrays are
# split in halves (DOUBLE_pairwise_sum in numpy/_core/src/umath/loops_utils.h.src of
# the numpy 2.x source). Each term of a block then passes through at most 15
# accumulator additions, 3 additions that join the accumulators, and 7 additions of
# the leftover terms.
PAIRWISE_BLOCK_SIZE = 128
PAIRWISE_BLOCK_DEPTH = 15 + 3 + 7

# Kink tolerance of a polished point, in units of the rounding bound of its residuals
# a_i^T x - b_i (see ``residual_rounding_floor``). The active-set polish solves for
# the kink residuals with a backward-stable least-squares solve, which leaves them at
# a small multiple of that bound rather than below it.
KINK_ROUNDING_FACTOR = 16.0

# Margins b_i a_i^T w above -SEPARATION_MARGIN_TOL * max_i b_i a_i^T w count as
# nonnegative in the separability check, which absorbs the rounding of the linear
# program's vertex solution. The Poisson check uses the same tolerance.
# NOTE: data that some w misclassifies only by margins within this tolerance are
# reported as separable, although a minimizer may exist far out.
SEPARATION_MARGIN_TOL = 1e-9


@dataclass(frozen=True)
class Certificate:
    """Optimality certificate of one point.

    Attributes
    ----------
    kind : str
        ``GRADIENT`` or ``SUBDIFFERENTIAL_DISTANCE``.
    norm : float
        ||grad f(x)||_2, or the norm of the subgradient of f at x closest to 0.
    floor : float
        Bound on the float64 rounding error of ``norm``.
    kink_count : int
        Samples treated as sitting at a kink (0 for the gradient certificate).
    kink_tol : float
        Largest per-sample kink tolerance on |a_i^T x - b_i| (0 for the gradient).
    epsilon : float
        The subgradient reported in ``norm`` is an epsilon-subgradient of f at x:
        f(y) >= f(x) + <g, y - x> - epsilon for all y. It is 0 for the gradient and
        for kink samples whose residual is exactly 0, and otherwise at most the mean
        over samples of |residual| times the jump of phi' at the kink.
    kink_rows, kink_slopes : ndarray or None
        Indices of the kink samples and the slopes chosen for them, which form a
        subgradient of norm ``norm`` together with phi' of the other samples. None
        for the gradient certificate.
    """

    kind: str
    norm: float
    floor: float
    kink_count: int = 0
    kink_tol: float = 0.0
    epsilon: float = 0.0
    kink_rows: np.ndarray = field(default=None, repr=False, compare=False)
    kink_slopes: np.ndarray = field(default=None, repr=False, compare=False)

    @property
    def certified(self):
        """True when ``norm <= CERTIFICATE_FACTOR * floor``."""
        return self.norm <= CERTIFICATE_FACTOR * self.floor

    def to_info(self):
        """Return the certificate fields as a JSON-ready dict."""
        return {
            "certificate": self.kind,
            "certificate_norm": float(self.norm),
            "certificate_floor": float(self.floor),
            "kink_count": int(self.kink_count),
            "kink_tol": float(self.kink_tol),
            "epsilon": float(self.epsilon),
        }


def certify(problem, x, kink_tol=None):
    """Return the ``Certificate`` of ``x`` for ``problem``.

    Parameters
    ----------
    problem : Problem
    x : ndarray, shape (d,)
    kink_tol : ndarray of shape (n,) or None
        Per-sample tolerance on |a_i^T x - b_i| within which a sample counts as
        sitting at its kink. Only the kinked families read it. None uses
        ``kink_tolerance(problem, x)``, the tolerance for a polished point.
    """
    if problem.family.has_kinks:
        return subdifferential_certificate(problem, x, kink_tol)
    x = np.asarray(x, dtype=np.float64)
    return Certificate(
        kind=GRADIENT,
        norm=float(np.linalg.norm(gradient(problem, x))),
        floor=gradient_rounding_floor(problem, x),
    )


def mean_of_rows(problem, coefficients):
    """Return (1/n) sum_i c_i a_i, shape (d,), with the summation order the floors assume.

    Dense A is summed with numpy's pairwise summation over the sample axis, which
    allocates a temporary array of the same shape (n, d) as A. Sparse A is summed by
    scipy's CSR transpose product, which adds the terms of each column one after
    another.
    """
    if problem.sparse:
        return np.asarray(problem.A.T @ coefficients).ravel() / problem.n
    # Column-major order makes the sample axis contiguous, so that sum(axis=0) uses
    # pairwise summation. numpy adds the rows of a row-major array one after another.
    per_sample = np.multiply(problem.A, coefficients[:, None], order="F")
    return per_sample.sum(axis=0) / problem.n


def gradient(problem, x):
    """Return grad f(x) = (1/n) sum_i phi'(a_i^T x, b_i) a_i + reg x, shape (d,).

    At a kink of hinge or absolute loss, phi' is the subgradient that
    ``Problem.dphi`` picks.
    """
    x = np.asarray(x, dtype=np.float64)
    slopes = problem.dphi(problem.margins(x))[0]
    return mean_of_rows(problem, slopes) + problem.reg * x


def gradient_rounding_floor(problem, x):
    """Return a bound on the float64 rounding error of ``gradient(problem, x)``.

    The error is measured in the 2-norm. The bound is gamma_k * S with
    gamma_k = k u / (1 - k u), u = 2**-53, and

        S = mean_i(s_i ||a_i|| + c_i ||a_i||^2 ||x||) + reg ||x||,

    the scale of the terms that the gradient sums. The error contributions are:

    - The margin m_i = a_i^T x is a dot product of length at most L (d for dense A,
      the largest number of stored entries in a row for sparse A), so its error is
      at most e_i = gamma_L ||a_i|| ||x||. That moves phi'(m_i) by at most c_i e_i,
      where c_i is the supremum of phi'' over [m_i - e_i, m_i + e_i]
      (``families.d2phi_max``, exact for every family here).
    - phi'(m_i) itself takes at most 4 roundings of terms of magnitude s_i, which is
      |phi'(m_i)| except for Poisson, where phi' = exp(m) - b subtracts two terms and
      s_i = exp(m_i) + b_i. The count 4 is an estimate for the logistic loss: expit
      computes exp, an addition and a division, and exp may be off by about 1 unit
      in the last place.
    - The product phi'(m_i) a_ij takes 1 rounding.
    - The sum over the n samples takes ``summation_depth(problem)`` roundings.
    - The division by n, the product reg x_j and the final addition take 3 roundings.

    So k = L + 8 + summation_depth(problem). Summing the per-component bounds over j
    gives the 2-norm bound because ||sum_i c_i |a_i| ||_2 <= sum_i c_i ||a_i||.

    A gradient norm at or below this value is as small as float64 evaluation of the
    gradient can show, so Newton steps from such a point only move x by rounding
    noise. The bound is a worst case: on the bundled data sets the error measured
    against a long double evaluation is 1e-3 to 1e-5 times the bound
    (tests/test_oracle.py).
    """
    x = np.asarray(x, dtype=np.float64)
    margins = problem.margins(x)[0]
    slopes = problem.dphi(margins[None, :])[0]
    row_norms = problem.row_norms
    x_norm = float(np.linalg.norm(x))
    dot_length = _dot_length(problem)
    margin_error = _gamma(dot_length) * row_norms * x_norm
    curvature = d2phi_max(
        problem.loss, margins - margin_error, margins + margin_error, problem.b,
        problem.loss_param,
    )
    slope_scale = np.abs(slopes)
    if problem.loss == "poisson":
        slope_scale = np.exp(margins) + problem.b
    per_sample_scale = slope_scale * row_norms + curvature * row_norms**2 * x_norm
    scale = np.mean(per_sample_scale) + problem.reg * x_norm
    k = dot_length + 8 + summation_depth(problem)
    return float(_gamma(k) * scale)


def objective_rounding_floor(problem, x):
    """Return a bound on the float64 rounding error of ``problem.objective(x)``.

    The bound is gamma_k * (mean_i t_i + reg ||x||^2) with k = L + 8 +
    summation_depth(problem), where L is the dot-product length of
    ``gradient_rounding_floor``. The term of sample i is

        t_i = |phi(m_i)| + p_i (||a_i|| ||x|| + |b_i|),

    with p_i the supremum of |phi'| over the rounding interval of the margin
    (``families.dphi_abs_max``, exact): the margin and the residual m_i - b_i carry
    errors up to gamma_L (||a_i|| ||x|| + |b_i|), which move phi by at most p_i times
    as much, and evaluating phi rounds terms no larger than t_i a few times. For
    Poisson, phi = exp(m) - b m subtracts two terms, so exp(m_i) + b_i |m_i| is added.
    """
    x = np.asarray(x, dtype=np.float64)
    margins = problem.margins(x)[0]
    x_norm = float(np.linalg.norm(x))
    dot_length = _dot_length(problem)
    spread = problem.row_norms * x_norm + np.abs(problem.b)
    margin_error = _gamma(dot_length) * spread
    slope_bound = dphi_abs_max(
        problem.loss, margins - margin_error, margins + margin_error, problem.b,
        problem.loss_param,
    )
    terms = np.abs(phi_np(problem.loss, margins, problem.b, problem.loss_param))
    terms = terms + slope_bound * spread
    if problem.loss == "poisson":
        terms = terms + np.exp(margins) + problem.b * np.abs(margins)
    k = dot_length + 8 + summation_depth(problem)
    return float(_gamma(k) * (np.mean(terms) + problem.reg * x_norm**2))


def residual_rounding_floor(problem, x):
    """Return a bound on the float64 error of a_i^T x - b_i for every sample, shape (n,).

    The dot product of length at most L and the subtraction take L + 1 roundings of
    terms bounded by ||a_i|| ||x|| + |b_i|.
    """
    x_norm = float(np.linalg.norm(x))
    return _gamma(_dot_length(problem) + 1) * (problem.row_norms * x_norm + np.abs(problem.b))


def kink_tolerance(problem, x, relative_accuracy=None):
    """Return the per-sample tolerance on |a_i^T x - b_i| that counts as a kink, shape (n,).

    Both kinked families have their only kink at the margin m = b_i: the hinge loss at
    b m = 1, which is m = b for b = +-1, and the absolute loss at m = b.

    For a polished point (``relative_accuracy`` None) the tolerance is
    ``KINK_ROUNDING_FACTOR`` times ``residual_rounding_floor``. For a point that a
    solver returned, whose residuals are only as accurate as the solver,
    ``relative_accuracy`` times the scale ||a_i|| ||x|| + |b_i| of the residual is used
    when that is larger.
    """
    x = np.asarray(x, dtype=np.float64)
    tol = KINK_ROUNDING_FACTOR * residual_rounding_floor(problem, x)
    if relative_accuracy is not None:
        scale = problem.row_norms * float(np.linalg.norm(x)) + np.abs(problem.b)
        tol = np.maximum(tol, relative_accuracy * scale)
    return tol


def kink_slope_bounds(problem):
    """Return the one-sided derivatives (lo, hi) of phi at each sample's kink, shape (n,) each.

    phi is linear on each side of the kink at m = b, so ``Problem.dphi`` one unit to
    either side gives the two slopes: [-1, 1] for absolute loss, [-1, 0] for hinge
    loss with b = 1 and [0, 1] with b = -1.
    """
    left = problem.dphi((problem.b - 1.0)[None, :])[0]
    right = problem.dphi((problem.b + 1.0)[None, :])[0]
    return np.minimum(left, right), np.maximum(left, right)


def subdifferential_certificate(problem, x, kink_tol=None):
    """Return the distance from 0 to the subdifferential of f at x as a ``Certificate``.

    Samples with |a_i^T x - b_i| <= kink_tol_i count as sitting at their kink and may
    take any slope s_i in ``kink_slope_bounds``. The other samples take phi'(a_i^T x).
    ``scipy.optimize.lsq_linear`` (bounded-variable least squares) picks the kink
    slopes that minimize ||(1/n) sum_i s_i a_i + reg x||. Every slope vector in the
    box gives a subgradient, so the evaluated norm bounds the distance from above up
    to rounding, even when the bounded solve stops short of its minimum.

    The floor bounds the rounding of that evaluation: gamma_k times
    mean_i |s_i| ||a_i|| + reg ||x|| with k = 4 + summation_depth(problem), for one
    product, the sum, the division by n and the regularization term. A margin
    rounding error cannot flip a slope, because the kink tolerance covers it.
    """
    if not problem.family.has_kinks:
        raise ValueError(
            f"subdifferential_certificate() needs a loss with kinks (hinge or absolute), "
            f"got {problem.loss!r}; use certify() for differentiable losses"
        )
    x = np.asarray(x, dtype=np.float64)
    if kink_tol is None:
        kink_tol = kink_tolerance(problem, x)
    margins = problem.margins(x)[0]
    residuals = margins - problem.b
    at_kink = np.abs(residuals) <= kink_tol
    slopes = problem.dphi(margins[None, :])[0]
    kink_rows = np.flatnonzero(at_kink)

    if kink_rows.size:
        lo, hi = kink_slope_bounds(problem)
        slopes[kink_rows] = 0.0
        fixed_part = mean_of_rows(problem, slopes) + problem.reg * x
        kink_columns = _dense_rows(problem, kink_rows).T / problem.n
        result = scipy.optimize.lsq_linear(
            kink_columns, -fixed_part, bounds=(lo[kink_rows], hi[kink_rows]),
            method="bvls",
        )
        slopes[kink_rows] = np.clip(result.x, lo[kink_rows], hi[kink_rows])

    subgradient = mean_of_rows(problem, slopes) + problem.reg * x
    k = 4 + summation_depth(problem)
    scale = np.mean(np.abs(slopes) * problem.row_norms) + problem.reg * np.linalg.norm(x)
    # epsilon_i = phi(m_i) - phi(b_i) - s_i (m_i - b_i) with phi(b_i) = 0 at the kink of
    # both families: the gap by which the supporting line of slope s_i through the kink
    # misses phi at m_i.
    phi_values = phi_np(problem.loss, margins[kink_rows], problem.b[kink_rows])
    gaps = phi_values - slopes[kink_rows] * residuals[kink_rows]
    return Certificate(
        kind=SUBDIFFERENTIAL_DISTANCE,
        norm=float(np.linalg.norm(subgradient)),
        floor=float(_gamma(k) * scale),
        kink_count=int(kink_rows.size),
        kink_tol=float(np.max(kink_tol)) if np.size(kink_tol) else 0.0,
        epsilon=float(np.sum(np.maximum(gaps, 0.0)) / problem.n),
        kink_rows=kink_rows,
        kink_slopes=slopes[kink_rows],
    )


def separating_direction(problem):
    """Find a direction along which the unregularized logistic loss decreases forever.

    The data are linearly separable (through the origin, as the model has no intercept)
    when some w satisfies b_i a_i^T w >= 0 for all i, with strict inequality for at
    least one i. Then every term log(1 + exp(-b_i a_i^T (x + t w))) decreases in t, so
    the sum has no minimizer. The linear program

        maximize sum_i b_i a_i^T w  subject to  0 <= b_i a_i^T w <= 1 for all i

    has optimum 0 when the data are not separable and at least 1 when they are, because
    a separating w scaled to max_i b_i a_i^T w = 1 is feasible.

    Parameters
    ----------
    problem : Problem
        Only ``A`` of shape (n, d) and the labels ``b`` of shape (n,) in {-1, +1} are
        used.

    Returns
    -------
    ndarray of shape (d,) or None
        A separating direction w, or None when the data are not separable or the linear
        program failed (logged as a warning).

    Raises
    ------
    ValueError
        If ``problem.loss`` is not "logistic".
    """
    if problem.loss != "logistic":
        raise ValueError(
            f"separating_direction() needs a logistic problem, got loss "
            f"{problem.loss!r} for {problem.name!r}"
        )
    signed_rows = _dense_matrix(problem.A) * problem.b[:, None]
    return _escape_direction(problem, signed_rows, np.zeros((0, problem.d)), "separability")


def poisson_escape_direction(problem):
    """Find a direction along which the unregularized Poisson loss decreases forever.

    f(x) = mean_i(exp(a_i^T x) - b_i a_i^T x) with counts b_i >= 0 is bounded below,
    because each term is: by b - b log b when b > 0 and by 0 when b = 0. It has no
    minimizer exactly when some w satisfies

        a_i^T w <= 0 for all i,   a_i^T w = 0 for all i with b_i > 0,
        a_j^T w < 0 for some j (then b_j = 0).

    Along such a w the terms with b_i > 0 stay fixed and the others do not grow, while
    exp(a_j^T x) decreases towards 0 without reaching it. Conversely, without such a w
    every direction that does not raise f is in the null space of A, where f is
    constant, so a minimizer exists. The linear program

        maximize -sum_{b_i = 0} a_i^T w  subject to  -1 <= a_i^T w <= 0 (b_i = 0),
                                                      a_i^T w = 0 (b_i > 0)

    has optimum 0 when a minimizer exists and at least 1 otherwise.

    Returns
    -------
    ndarray of shape (d,) or None
        Such a direction w, or None when a minimizer exists or the linear program
        failed (logged as a warning).

    Raises
    ------
    ValueError
        If ``problem.loss`` is not "poisson".
    """
    if problem.loss != "poisson":
        raise ValueError(
            f"poisson_escape_direction() needs a Poisson problem, got loss "
            f"{problem.loss!r} for {problem.name!r}"
        )
    zero_counts = problem.b == 0
    if not zero_counts.any():
        return None
    A = _dense_matrix(problem.A)
    return _escape_direction(problem, -A[zero_counts], A[~zero_counts], "Poisson attainment")


def _escape_direction(problem, rows, equality_rows, check):
    """Solve max sum(rows @ w) s.t. 0 <= rows @ w <= 1, equality_rows @ w = 0.

    Return w when the optimum is at least 1/2 and w passes the float64 check, else None.
    """
    k = rows.shape[0]
    result = scipy.optimize.linprog(
        c=-rows.sum(axis=0),
        A_ub=np.vstack([-rows, rows]),
        b_ub=np.concatenate([np.zeros(k), np.ones(k)]),
        A_eq=equality_rows if equality_rows.shape[0] else None,
        b_eq=np.zeros(equality_rows.shape[0]) if equality_rows.shape[0] else None,
        bounds=(None, None),
        method="highs",
    )
    if result.status != 0:
        logger.warning(
            "%s: %s linear program failed (%s). Solving without the check",
            problem.name, check, result.message,
        )
        return None
    # When no escape direction exists, every feasible w has rows @ w = 0, so the
    # optimum is 0 up to the solver tolerance, while an escape direction gives >= 1.
    if -result.fun < 0.5:
        return None

    # HiGHS accepts constraint violations up to its primal feasibility tolerance, 1e-7
    # by default in scipy 1.17, so the direction is checked again in float64.
    values = rows @ result.x
    top = values.max()
    drift = np.abs(equality_rows @ result.x).max() if equality_rows.shape[0] else 0.0
    if values.min() < -SEPARATION_MARGIN_TOL * top or drift > SEPARATION_MARGIN_TOL * top:
        logger.warning(
            "%s: the %s linear program returned a direction with values down to %.1e "
            "(max %.1e) and equality residual %.1e, which fails the float64 check. "
            "Solving without the check",
            problem.name, check, values.min(), top, drift,
        )
        return None
    return result.x


def summation_depth(problem):
    """Return the max additions that any term goes through in ``mean_of_rows``."""
    if problem.sparse:
        # Sequential sums down each column: a column with c stored entries takes c - 1.
        counts = np.bincount(problem.A.indices, minlength=problem.d)
        return max(int(counts.max()) - 1, 0)
    return _pairwise_sum_depth(problem.n)


def _dot_length(problem):
    if problem.sparse:
        return max(int(np.diff(problem.A.indptr).max()), 1)
    return problem.d


def _dense_matrix(A):
    return A.toarray() if hasattr(A, "toarray") else np.asarray(A)


def _dense_rows(problem, rows):
    if problem.sparse:
        return problem.A[rows].toarray()
    return np.asarray(problem.A[rows])


def _gamma(k):
    return k * UNIT_ROUNDOFF / (1.0 - k * UNIT_ROUNDOFF)


def _pairwise_sum_depth(n):
    """Return the max additions that any term goes through when numpy sums n terms."""
    if n < 8:
        return max(n - 1, 0)
    depth = PAIRWISE_BLOCK_DEPTH
    # numpy splits at a multiple of 8 near n / 2, so the larger half can exceed n / 2 by
    # up to 8 terms. One extra level covers that.
    if n > PAIRWISE_BLOCK_SIZE:
        depth += math.ceil(math.log2(n / PAIRWISE_BLOCK_SIZE)) + 1
    return depth
