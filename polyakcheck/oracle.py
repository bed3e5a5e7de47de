"""Certified minimizer x_star of a ``Problem``: a cvxpy solve, then a Newton polish.

Every check in the toolkit measures against x_star, f_star and f_i(x_star), so the
oracle returns them with a certificate: the gradient norm ||grad f(x_star)||_2 next to
the float64 rounding floor of evaluating that gradient. ``solve`` raises
``OracleError`` rather than return a point it could not certify.
"""

import logging
import math
import time
import warnings

import cvxpy as cp
import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.special

from polyakcheck.problems.losses import PHI2_MAX
from polyakcheck.problems.problem import Problem
from polyakcheck.solution import Solution

logger = logging.getLogger(__name__)

# Solvers tried after the requested one, in this order, if they are installed. ECOS is
# not installed by default. OSQP solves quadratic programs only, so it is skipped for
# the logistic loss, which needs the exponential cone.
FALLBACK_SOLVERS = ("CLARABEL", "SCS", "ECOS", "OSQP")
QP_ONLY_SOLVERS = frozenset({"OSQP"})

MAX_POLISH_STEPS = 20
# Step lengths tried along each Newton direction before the polish stops.
POLISH_STEP_LENGTHS = (1.0, 0.5, 0.25, 0.125)

# ``solve`` raises OracleError when the polished grad_norm exceeds this multiple of
# grad_norm_tol.
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

# Margins b_i a_i^T w above -SEPARATION_MARGIN_TOL * max_i b_i a_i^T w count as
# nonnegative in the separability check, which absorbs the rounding of the linear
# program's vertex solution.
# NOTE: data that some w misclassifies only by margins within this tolerance are
# reported as separable, although a minimizer may exist far out.
SEPARATION_MARGIN_TOL = 1e-9


class OracleError(RuntimeError):
    """Error raised when no certified minimizer can be returned.

    Attributes
    ----------
    attempts : list of dict
        One entry per cvxpy solver tried, with keys ``"solver"``, ``"status"`` and
        ``"seconds"``. Empty when the error was raised before any solver ran.
    """

    def __init__(self, message, attempts=()):
        super().__init__(message)
        self.attempts = list(attempts)


def solve(problem, solver="CLARABEL"):
    """Compute the minimizer x_star of ``problem`` and certify it.

    The cvxpy solve gives a starting point that Newton's method then polishes in
    float64 until the gradient norm reaches its rounding floor.

    Parameters
    ----------
    problem : Problem
        Finite sum f(x) = (1/n) sum_i f_i(x) with n samples in dimension d.
    solver : str, default "CLARABEL"
        cvxpy solver tried first. The other installed solvers of ``FALLBACK_SOLVERS``
        are tried in turn when it does not report the status "optimal".

    Returns
    -------
    Solution
        ``x_star`` of shape (d,) and ``f_i_star`` of shape (n,), both from the same
        polished point, with the certificate ``grad_norm <= CERTIFICATE_FACTOR *
        grad_norm_tol``. ``info["attempts"]`` lists every solver tried, and
        ``info["cvxpy_x"]`` of shape (d,) is the solver's point before the polish.

    Raises
    ------
    TypeError
        If ``problem`` is not a ``Problem``.
    ValueError
        If ``solver`` is not an installed cvxpy solver.
    OracleError
        If the logistic loss has reg == 0 on linearly separable data, so that no
        minimizer exists. Also if no solver reports "optimal", or if the polished
        gradient norm exceeds ``CERTIFICATE_FACTOR * grad_norm_tol``.
    """
    if not isinstance(problem, Problem):
        raise TypeError(
            f"solve() expects a polyakcheck Problem, got {type(problem).__name__}. "
            "Build one with Problem(name, loss, A, b, reg=...) or "
            "polyakcheck.problems.load_dataset(name)"
        )
    solver_order = _solver_order(problem, solver)
    start = time.perf_counter()

    # On separable data Clarabel reports "optimal" (measured with cvxpy 1.9.3 and
    # Clarabel 0.11.1). The polish then drives the gradient below its rounding floor by
    # moving x outward, so neither the status nor the certificate detects the missing
    # minimizer.
    if problem.loss == "logistic" and problem.reg == 0:
        _raise_if_separable(problem)

    x_start, attempts = _solve_with_cvxpy(problem, solver_order)
    cvxpy_seconds = time.perf_counter() - start
    start_grad_norm = float(np.linalg.norm(gradient(problem, x_start)))

    x_star, grad_norm, polish_steps = _polish(problem, x_start)
    grad_norm_tol = gradient_rounding_floor(problem, x_star)
    solve_seconds = time.perf_counter() - start
    logger.debug(
        "%s: %d Newton steps took grad_norm from %.3e to %.3e (rounding floor %.3e)",
        problem.name,
        polish_steps,
        start_grad_norm,
        grad_norm,
        grad_norm_tol,
    )
    if grad_norm > CERTIFICATE_FACTOR * grad_norm_tol:
        raise OracleError(
            f"could not certify the minimizer of {problem.name!r}: after "
            f"{polish_steps} Newton steps from the {attempts[-1]['solver']} solution, "
            f"grad_norm = {grad_norm:.3e} exceeds {CERTIFICATE_FACTOR:g} * "
            f"grad_norm_tol = {CERTIFICATE_FACTOR:g} * {grad_norm_tol:.3e}. The "
            "problem may be too ill-conditioned for float64.",
            attempts,
        )

    f_i_star = problem.values(x_star)[0]
    x_star.setflags(write=False)
    f_i_star.setflags(write=False)
    return Solution(
        x_star=x_star,
        f_star=float(f_i_star.mean()),
        f_i_star=f_i_star,
        grad_norm=grad_norm,
        grad_norm_tol=grad_norm_tol,
        solver=attempts[-1]["solver"],
        solver_status=attempts[-1]["status"],
        polish_steps=polish_steps,
        solve_seconds=solve_seconds,
        info={
            "attempts": attempts,
            "cvxpy_x": x_start,
            "cvxpy_seconds": cvxpy_seconds,
            "start_grad_norm": start_grad_norm,
        },
    )


def gradient(problem, x):
    """Return grad f(x) = (1/n) sum_i grad f_i(x), shape (d,), in float64.

    The per-sample gradients phi'(a_i^T x, b_i) a_i + reg x are summed over the samples
    with numpy's pairwise summation, which ``gradient_rounding_floor`` assumes. The sum
    allocates a temporary array of the same shape (n, d) as A.
    """
    x = np.asarray(x, dtype=np.float64)
    slopes, _ = _margin_derivatives(problem, problem.A @ x)
    # Column-major order makes the sample axis contiguous, so that sum(axis=0) uses
    # pairwise summation. numpy adds the rows of a row-major array one after another.
    per_sample = np.multiply(problem.A, slopes[:, None], order="F")
    return per_sample.sum(axis=0) / problem.n + problem.reg * x


def gradient_rounding_floor(problem, x):
    """Return a bound on the float64 rounding error of ``gradient(problem, x)``.

    The error is measured in the 2-norm.

    The bound is gamma_k * S with gamma_k = k u / (1 - k u), u = 2**-53, and

        S = mean_i(|phi'(m_i)| ||a_i|| + sup|phi''| ||a_i||^2 ||x||) + reg ||x||,

    the scale of the terms that the gradient sums. The error contributions are:

    - The margin m_i = a_i^T x is a dot product of length d, so its error is at most
      gamma_d ||a_i|| ||x||. That moves phi'(m_i) by at most sup|phi''| times as much.
    - phi'(m_i) itself takes at most 4 roundings. This is an estimate for the logistic
      loss: expit computes exp, an addition and a division, and exp may be off by
      about 1 unit in the last place.
    - The product phi'(m_i) a_ij takes 1 rounding.
    - The pairwise sum over the n samples takes ``_pairwise_sum_depth(n)`` roundings.
    - The division by n, the product reg x_j and the final addition take 3 roundings.

    So k = d + 8 + _pairwise_sum_depth(n). Summing the per-component bounds over j
    gives the 2-norm bound because ||sum_i c_i |a_i| ||_2 <= sum_i c_i ||a_i||.

    A gradient norm at or below this value is as small as float64 evaluation of the
    gradient can show, so Newton steps from such a point only move x by rounding noise.
    The bound is a worst case: on the bundled data sets the error measured against a
    long double evaluation is 1e-3 to 1e-5 times the bound (tests/test_oracle.py).

    Parameters
    ----------
    problem : Problem
    x : ndarray, shape (d,)

    Returns
    -------
    float
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = problem.A.shape
    slopes, _ = _margin_derivatives(problem, problem.A @ x)
    row_norms = problem.row_norms
    x_norm = float(np.linalg.norm(x))
    curvature_bound = PHI2_MAX[problem.loss]
    margin_error_scale = curvature_bound * row_norms**2 * x_norm
    per_sample_scale = np.abs(slopes) * row_norms + margin_error_scale
    scale = np.mean(per_sample_scale) + problem.reg * x_norm
    k = d + 8 + _pairwise_sum_depth(n)
    gamma = k * UNIT_ROUNDOFF / (1.0 - k * UNIT_ROUNDOFF)
    return float(gamma * scale)


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
    signed_rows = problem.b[:, None] * problem.A
    n = problem.n
    result = scipy.optimize.linprog(
        c=-signed_rows.sum(axis=0),
        A_ub=np.vstack([-signed_rows, signed_rows]),
        b_ub=np.concatenate([np.zeros(n), np.ones(n)]),
        bounds=(None, None),
        method="highs",
    )
    if result.status != 0:
        logger.warning(
            "%s: separability linear program failed (%s). Solving without the check",
            problem.name,
            result.message,
        )
        return None
    # On non-separable data every w with all margins >= 0 has all margins 0, so the
    # optimum is 0 up to the solver tolerance, while separable data give at least 1.
    if -result.fun < 0.5:
        return None

    # HiGHS accepts constraint violations up to its primal feasibility tolerance, 1e-7
    # by default in scipy 1.17, so the margins of w are checked again in float64.
    margins = signed_rows @ result.x
    if margins.min() < -SEPARATION_MARGIN_TOL * margins.max():
        logger.warning(
            "%s: the separability linear program returned a direction with margins "
            "down to %.1e (max %.1e), which does not separate the data in float64. "
            "Solving without the check",
            problem.name,
            margins.min(),
            margins.max(),
        )
        return None
    return result.x


def _raise_if_separable(problem):
    direction = separating_direction(problem)
    if direction is None:
        logger.debug("%s: data are not linearly separable", problem.name)
        return
    margins = problem.b * (problem.A @ direction)
    raise OracleError(
        f"logistic loss on {problem.name!r} with reg=0 has no minimizer: the data are "
        f"linearly separable (a direction w has b_i a_i^T w > 0 for "
        f"{int(np.sum(margins > 1e-9))} of {problem.n} samples and no sample below "
        f"{margins.min():.1e}), so f decreases forever along w. Pass reg > 0, "
        "for example reg=1e-2."
    )


def _solver_order(problem, solver):
    if not isinstance(solver, str):
        raise TypeError(
            f"solver must be a cvxpy solver name such as 'CLARABEL', got "
            f"{type(solver).__name__}"
        )
    installed = cp.installed_solvers()
    requested = solver.upper()
    if requested not in installed:
        raise ValueError(
            f"cvxpy solver {solver!r} is not installed. Installed solvers: "
            f"{', '.join(installed)}"
        )
    order = [requested]
    for name in FALLBACK_SOLVERS:
        if name in order or name not in installed:
            continue
        if problem.loss == "logistic" and name in QP_ONLY_SOLVERS:
            continue
        order.append(name)
    return order


def _build_cvxpy_problem(problem):
    # The objective is the mean over samples, as in Problem.objective, so that its
    # scale, and the solvers' absolute tolerances, do not grow with n.
    x = cp.Variable(problem.d)
    margins = problem.A @ x
    if problem.loss == "least_squares":
        data_term = cp.sum_squares(margins - problem.b) / (2 * problem.n)
    else:
        data_term = cp.sum(cp.logistic(-cp.multiply(problem.b, margins))) / problem.n
    objective = data_term
    if problem.reg > 0:
        objective = objective + 0.5 * problem.reg * cp.sum_squares(x)
    return cp.Problem(cp.Minimize(objective)), x


def _solve_with_cvxpy(problem, solver_order):
    """Return x of the first solver that reports "optimal", and the attempts list."""
    cvxpy_problem, x = _build_cvxpy_problem(problem)
    attempts = []
    for name in solver_order:
        start = time.perf_counter()
        try:
            # cvxpy warns "Solution may be inaccurate" for optimal_inaccurate, a status
            # that this loop records and rejects anyway.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                cvxpy_problem.solve(solver=name)
            status = cvxpy_problem.status
        except cp.error.SolverError as exc:
            status = f"solver error: {exc}"
        seconds = time.perf_counter() - start
        attempts.append({"solver": name, "status": status, "seconds": seconds})

        finite = x.value is not None and np.all(np.isfinite(x.value))
        if status == cp.OPTIMAL and finite:
            logger.debug("%s: %s status optimal in %.3f s", problem.name, name, seconds)
            return np.array(x.value, dtype=np.float64), attempts
        if status == cp.OPTIMAL:
            attempts[-1]["status"] = "optimal, but x is missing or not finite"
        logger.warning(
            "%s: cvxpy solver %s returned status %r, trying the next solver",
            problem.name,
            name,
            attempts[-1]["status"],
        )

    listing = "; ".join(f"{a['solver']}: {a['status']}" for a in attempts)
    hint = ""
    if problem.loss == "logistic" and problem.reg == 0:
        hint = " With reg=0 the logistic loss may have no minimizer. Try reg > 0."
    raise OracleError(
        f"no cvxpy solver reported status 'optimal' for {problem.name!r} "
        f"({listing}).{hint}",
        attempts,
    )


def _polish(problem, x):
    """Run Newton's method from x and return (x, grad_norm, steps).

    A step is accepted only if it reduces ||grad f||. The polish stops at the rounding
    floor, after MAX_POLISH_STEPS steps, or when no step length in POLISH_STEP_LENGTHS
    reduces the gradient norm.
    """
    grad = gradient(problem, x)
    grad_norm = float(np.linalg.norm(grad))
    steps = 0
    while steps < MAX_POLISH_STEPS:
        if grad_norm <= gradient_rounding_floor(problem, x):
            break
        direction = _newton_direction(problem, x, grad)
        for step_length in POLISH_STEP_LENGTHS:
            x_trial = x - step_length * direction
            grad_trial = gradient(problem, x_trial)
            trial_norm = float(np.linalg.norm(grad_trial))
            if trial_norm < grad_norm:
                break
        else:
            logger.debug("%s: Newton step made no progress", problem.name)
            break
        x, grad, grad_norm = x_trial, grad_trial, trial_norm
        steps += 1
        logger.debug(
            "%s: Newton step %d, grad_norm %.3e", problem.name, steps, grad_norm
        )
    return x, grad_norm, steps


def _newton_direction(problem, x, grad):
    """Return the minimum-norm solution p of H p = grad, shape (d,).

    H = J^T J + reg I with J = diag(sqrt(phi''(m_i) / n)) A. The SVD of J gives the
    eigenvalues s_j^2 + reg of H without forming J^T J, which would square the condition
    number. Eigenvalues at or below the squared rank tolerance of J count as zero, so
    for a singular H (reg == 0 and rank(A) < d) the step stays in the row space of A
    and x keeps its component in the null space of A from the cvxpy solution.
    """
    n, d = problem.A.shape
    _, curvatures = _margin_derivatives(problem, problem.A @ x)
    weighted_rows = problem.A * np.sqrt(curvatures / n)[:, None]
    # With n < d the thin SVD has only n right singular vectors, and the other d - n
    # directions, which have eigenvalue reg, need full_matrices.
    try:
        _, singular_values, vt = scipy.linalg.svd(weighted_rows, full_matrices=n < d)
    except np.linalg.LinAlgError:
        _, singular_values, vt = scipy.linalg.svd(
            weighted_rows, full_matrices=n < d, lapack_driver="gesvd"
        )
    all_singular_values = np.zeros(d)
    all_singular_values[: singular_values.size] = singular_values
    eigenvalues = all_singular_values**2 + problem.reg
    # The rank tolerance of numpy.linalg.matrix_rank: max(n, d) * eps * s_max.
    rank_tol = max(n, d) * np.finfo(np.float64).eps * all_singular_values.max()
    keep = eigenvalues > rank_tol**2
    coefficients = vt[keep] @ grad
    return vt[keep].T @ (coefficients / eigenvalues[keep])


def _margin_derivatives(problem, margins):
    """Return phi'(m_i, b_i) and phi''(m_i, b_i) for every sample, each shape (n,)."""
    if problem.loss == "least_squares":
        return margins - problem.b, np.ones_like(margins)
    # phi(m, b) = log(1 + exp(-b m)), so phi' = -b sigma(-b m) and
    # phi'' = sigma(-b m) sigma(b m), with b^2 = 1. expit avoids overflow of exp.
    signed = problem.b * margins
    sigma_minus = scipy.special.expit(-signed)
    slopes = -problem.b * sigma_minus
    curvatures = sigma_minus * scipy.special.expit(signed)
    return slopes, curvatures


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
