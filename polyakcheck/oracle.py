"""Certified minimizer x_star of a ``Problem``: a cvxpy solve, then a float64 polish.

Every check in the toolkit measures against x_star, f_star and f_i(x_star), so the
oracle returns them with a certificate (``polyakcheck.certificate``). That is the
gradient norm for the differentiable families and the distance from 0 to the
subdifferential for hinge and absolute loss, each next to its float64 rounding
floor. The polish is
Newton's method (semi-smooth on the pieces of Huber and squared hinge) for the
differentiable families and an active-set linear solve on the kink samples for the
others. ``solve`` raises ``OracleError`` rather than return a point it could not
certify.

Without regularization the minimizer may not be unique. Then x_star is the projection
of x0 onto the solution set, which gives the smallest D = ||x0 - x_star||.

A sparse A stays sparse in cvxpy and in the certificates. NOTE: the polish densifies
the matrices it factors, so a large sparse problem needs n * d floats of memory. That
is all of A for each Newton step, the least-squares projection and the separability
check, and the kink or curved rows for the active-set solves.
"""

import logging
import time
import warnings
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.linalg

from polyakcheck import oracle_cache
from polyakcheck.certificate import (
    CERTIFICATE_FACTOR,
    SEPARATION_MARGIN_TOL,
    certify,
    gradient,
    gradient_rounding_floor,
    KINK_ROUNDING_FACTOR,
    kink_slope_bounds,
    kink_tolerance,
    objective_rounding_floor,
    poisson_escape_direction,
    residual_rounding_floor,
    separating_direction,
)
from polyakcheck.problems.families import d2phi_max
from polyakcheck.problems.problem import Problem
from polyakcheck.oracle_multinomial import MultinomialOracleError, solve_multinomial
from polyakcheck.solution import Solution

__all__ = [
    "CERTIFICATE_FACTOR", "SEPARATION_MARGIN_TOL", "OracleError", "gradient",
    "gradient_rounding_floor", "poisson_escape_direction", "separating_direction", "solve",
]

logger = logging.getLogger(__name__)

# Part of every cache key: raise it when a change of the oracle changes its output.
ORACLE_VERSION = "2"

# Solvers tried after the requested one, in this order, if they are installed. ECOS is
# not installed by default. OSQP solves quadratic programs only, so it is skipped for
# the families that need the exponential cone (logistic, Poisson).
FALLBACK_SOLVERS = ("CLARABEL", "SCS", "ECOS", "OSQP")
QP_ONLY_SOLVERS = frozenset({"OSQP"})
QP_REPRESENTABLE = frozenset({"least_squares", "squared_hinge", "hinge", "absolute", "huber"})

# Options passed to each cvxpy solver (none: the defaults). They enter the cache key.
SOLVER_OPTIONS = {}

# Relative accuracy of a solver's point under the defaults of cvxpy 1.9.3: Clarabel
# 0.11 and ECOS stop at gap and feasibility tolerances of 1e-8, and cvxpy sets SCS and
# OSQP to eps_abs = eps_rel = 1e-5. Solvers not listed get 1e-5.
SOLVER_ACCURACY = {"CLARABEL": 1e-8, "ECOS": 1e-8, "SCS": 1e-5, "OSQP": 1e-5}
DEFAULT_SOLVER_ACCURACY = 1e-5

MAX_POLISH_STEPS = 50
# Step lengths tried along each Newton direction before the polish stops.
POLISH_STEP_LENGTHS = tuple(0.5**k for k in range(11))

# Kink tolerances tried by the active-set polish, as multiples of the solver accuracy
# times the residual scale ||a_i|| ||x|| + |b_i|. The kink residuals of a solver point
# are not bounded by the solver tolerance alone: an interior-point method leaves a kink
# residual of about gap / (1 - |dual|), which grows as a dual variable nears its bound.
# On diabetes (absolute loss) and breast cancer (hinge loss), the kink residuals of
# Clarabel 0.11.1 reached 6e-7 of that scale, and the other residuals started at 1e-4.
# The polish takes the smallest tolerance whose polished point certifies.
KINK_TOLERANCE_LADDER = (1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3, 1e4)
# Kink tolerance of an unpolished solver point, as a multiple of the solver accuracy.
SOLVER_KINK_FACTOR = 1e2
# Rounds of the active-set iteration from each starting kink set.
MAX_ACTIVE_SET_ROUNDS = 10
# A kink slope counts as outside its interval [lo, hi] beyond this fraction of the
# interval width. The certificate of the resulting point decides, so this only steers
# the iteration.
SLOPE_BOX_TOL = 1e-9

# When a solver fails the projection solve at the level derived from the
# certificate, it is tried once more with this multiple of its accuracy (times
# max(1, |f|)) added to the level.
PROJECTION_LEVEL_FACTOR = 10.0

# Relative distance to a piece boundary below which ``_project_within_piece`` treats a
# sample as sitting on the boundary. The margins of a certified minimizer are only as
# accurate as the certificate resolves, which can be far above their rounding where
# a piece has little curvature. So the margin is wide: a sample wrongly taken as on
# the boundary only costs the projection solve.
PIECE_MARGIN = 1e-8

# Families whose solution set at reg = 0 can be larger than x* + null(A): they are
# linear (or constant) on pieces of the margin axis. The others are strictly convex in
# every margin, so their solution set is exactly x* + null(A).
PIECEWISE_FAMILIES = frozenset({"squared_hinge", "hinge", "absolute", "huber"})


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


@dataclass
class _Candidate:
    """A polished point with its certificate."""

    x: np.ndarray
    certificate: object
    polish_steps: int
    method: str


def solve(problem, solver="CLARABEL", cache_dir=None):
    """Compute the minimizer x_star of ``problem`` and certify it.

    A cvxpy solve gives a starting point that the polish refines in float64 until
    the certificate reaches its rounding floor.

    Parameters
    ----------
    problem : Problem
        Finite sum f(x) = (1/n) sum_i f_i(x) with n samples in dimension d.
    solver : str, default "CLARABEL"
        cvxpy solver tried first. The other installed solvers of ``FALLBACK_SOLVERS``
        are tried in turn when it does not report the status "optimal".
    cache_dir : str, path, None or False, default None
        Directory of the disk cache (``polyakcheck.oracle_cache``). None reads the
        environment variable ``POLYAKCHECK_CACHE`` and caches nothing when it is unset
        or empty. False disables the cache.

    Returns
    -------
    Solution
        ``x_star`` of shape (d,) and ``f_i_star`` of shape (n,), both from the same
        polished point, with the certificate ``grad_norm <= CERTIFICATE_FACTOR *
        grad_norm_tol``. ``grad_norm`` is the gradient norm or, for hinge and
        absolute loss, the distance from 0 to the subdifferential;
        ``info["certificate"]`` names which. ``info`` also contains ``"attempts"`` (every
        solver tried), ``"cvxpy_x"`` (the solver's point before the polish),
        ``"solution_set"`` (how x_star was chosen among several minimizers),
        ``"D"`` (||x0 - x_star||), ``"kink_count"``, ``"kink_tol"``, ``"epsilon"``
        and ``"cache"`` ("not used", "miss", or the path of the entry it came from).

    Raises
    ------
    TypeError
        If ``problem`` is not a ``Problem``.
    ValueError
        If ``solver`` is not an installed cvxpy solver.
    OracleError
        If no minimizer exists (logistic loss with reg == 0 on linearly separable
        data, Poisson loss with reg == 0 and a direction that lowers some zero-count
        margin forever), if no solver reports "optimal", or if the polished
        certificate exceeds ``CERTIFICATE_FACTOR * grad_norm_tol``.
    """
    if not isinstance(problem, Problem):
        raise TypeError(
            f"solve() expects a polyakcheck Problem, got {type(problem).__name__}. "
            "Build one with Problem(name, loss, A, b, reg=...) or "
            "polyakcheck.problems.load_dataset(name)"
        )
    solver_order = _solver_order(problem, solver)
    if problem.loss == "multinomial":
        try:
            return solve_multinomial(problem, solver_order)
        except MultinomialOracleError as exc:
            raise OracleError(str(exc)) from None
    settings = {"solvers": solver_order, "options": SOLVER_OPTIONS}
    cache_path = oracle_cache.entry_path(problem, settings, ORACLE_VERSION, cache_dir)
    if cache_path is not None:
        cached = oracle_cache.load(problem, cache_path)
        if cached is not None:
            return cached
    solution = _solve_uncached(problem, solver_order)
    if cache_path is not None:
        solution.info["cache"] = "miss"
        oracle_cache.store(cache_path, solution)
    return solution


def _solve_uncached(problem, solver_order):
    start = time.perf_counter()
    # On separable data Clarabel reports "optimal" (measured with cvxpy 1.9.3 and
    # Clarabel 0.11.1). The polish then drives the gradient below its rounding floor by
    # moving x outward, so neither the status nor the certificate detects the missing
    # minimizer.
    if problem.reg == 0 and problem.loss == "logistic":
        _raise_if_separable(problem)
    if problem.reg == 0 and problem.loss == "poisson":
        _raise_if_poisson_unattained(problem)

    x_cvxpy, attempts = _solve_with_cvxpy(problem, solver_order, _minimize_f)
    cvxpy_seconds = time.perf_counter() - start
    accuracy = _solver_accuracy(attempts[-1]["solver"])
    start_certificate = certify(
        problem, x_cvxpy, kink_tolerance(problem, x_cvxpy, SOLVER_KINK_FACTOR * accuracy)
    )

    candidate = _polish(problem, x_cvxpy, accuracy)
    solution_set = "unique minimizer (reg > 0)"
    projection_attempts = []
    if problem.reg == 0:
        candidate, solution_set, projection_attempts = _project_onto_solution_set(
            problem, candidate, solver_order
        )

    certificate = candidate.certificate
    x_star = candidate.x
    solve_seconds = time.perf_counter() - start
    logger.debug(
        "%s: polish (%s, %d steps) took the %s from %.3e to %.3e (floor %.3e)",
        problem.name, candidate.method, candidate.polish_steps, certificate.kind,
        start_certificate.norm, certificate.norm, certificate.floor,
    )
    if not certificate.certified:
        raise OracleError(
            f"could not certify the minimizer of {problem.name!r} ({problem.loss} "
            f"loss): after the polish ({candidate.method}, {candidate.polish_steps} "
            f"steps) from the {attempts[-1]['solver']} solution, the {certificate.kind} "
            f"grad_norm = {certificate.norm:.3e} exceeds {CERTIFICATE_FACTOR:g} * "
            f"grad_norm_tol = {CERTIFICATE_FACTOR:g} * {certificate.floor:.3e}. The "
            "problem may be too ill-conditioned for float64.",
            attempts,
        )

    f_i_star = problem.values(x_star)[0]
    x_star.setflags(write=False)
    f_i_star.setflags(write=False)
    info = {
        "attempts": attempts,
        "cvxpy_x": x_cvxpy,
        "cvxpy_seconds": cvxpy_seconds,
        "start_grad_norm": start_certificate.norm,
        "polish": candidate.method,
        "solution_set": solution_set,
        "projection_attempts": projection_attempts,
        "D": float(np.linalg.norm(problem.x0 - x_star)),
        "cache": "not used",
    }
    info.update(certificate.to_info())
    return Solution(
        x_star=x_star,
        f_star=float(f_i_star.mean()),
        f_i_star=f_i_star,
        grad_norm=certificate.norm,
        grad_norm_tol=certificate.floor,
        solver=attempts[-1]["solver"],
        solver_status=attempts[-1]["status"],
        polish_steps=candidate.polish_steps,
        solve_seconds=solve_seconds,
        info=info,
    )


# ---------------------------------------------------------------- no minimizer


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


def _raise_if_poisson_unattained(problem):
    direction = poisson_escape_direction(problem)
    if direction is None:
        logger.debug("%s: the Poisson loss attains its minimum", problem.name)
        return
    margins = problem.A @ direction
    lowered = int(np.sum(margins < -1e-9))
    raise OracleError(
        f"Poisson loss on {problem.name!r} with reg=0 has no minimizer: a direction w "
        f"lowers the margins a_i^T w of {lowered} samples with count b_i = 0 and "
        "changes no margin of a sample with b_i > 0, so f decreases forever along w "
        "towards its infimum without reaching it. Pass reg > 0, for example reg=1e-2."
    )


# ---------------------------------------------------------------- cvxpy


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
        if name in QP_ONLY_SOLVERS and problem.loss not in QP_REPRESENTABLE:
            continue
        order.append(name)
    return order


def _solver_accuracy(name):
    return SOLVER_ACCURACY.get(name, DEFAULT_SOLVER_ACCURACY)


def _cvxpy_objective(problem, x):
    """Return (f as a cvxpy expression of x, constraints of its auxiliary variables).

    The objective is the mean over samples, as in Problem.objective, so that its scale,
    and the solvers' absolute tolerances, do not grow with n. A sparse A stays sparse.
    """
    n, b = problem.n, problem.b
    margins = problem.A @ x
    constraints = []
    if problem.loss == "least_squares":
        data_term = cp.sum_squares(margins - b) / (2 * n)
    elif problem.loss == "logistic":
        data_term = cp.sum(cp.logistic(-cp.multiply(b, margins))) / n
    elif problem.loss in ("squared_hinge", "hinge"):
        # An explicit epigraph variable t_i >= max(0, 1 - b_i m_i) replaces cp.pos,
        # because cvxpy 1.9.3 rejects SCS for an unconstrained problem whose objective
        # contains cp.pos ("The solver SCS cannot solve this problem"), which would
        # break the fallback.
        slack = cp.Variable(n)
        constraints = [slack >= 0, slack >= 1 - cp.multiply(b, margins)]
        if problem.loss == "hinge":
            data_term = cp.sum(slack) / n
        else:
            data_term = cp.sum_squares(slack) / (2 * n)
    elif problem.loss == "absolute":
        data_term = cp.norm1(margins - b) / n
    elif problem.loss == "huber":
        # cp.huber(r, M) is r^2 for |r| <= M and 2 M |r| - M^2 beyond, twice our phi.
        data_term = cp.sum(cp.huber(margins - b, problem.loss_param)) / (2 * n)
    else:
        data_term = cp.sum(cp.exp(margins) - cp.multiply(b, margins)) / n
    if problem.reg > 0:
        data_term = data_term + 0.5 * problem.reg * cp.sum_squares(x)
    return data_term, constraints


def _minimize_f(problem, x):
    objective, constraints = _cvxpy_objective(problem, x)
    return cp.Problem(cp.Minimize(objective), constraints)


def _projection_builder(level):
    def build(problem, x):
        objective, constraints = _cvxpy_objective(problem, x)
        return cp.Problem(
            cp.Minimize(cp.sum_squares(x - problem.x0)), constraints + [objective <= level]
        )

    return build


def _solve_with_cvxpy(problem, solver_order, build, quiet=False):
    """Return x of the first solver that reports "optimal", and the attempts list.

    A solver that fails is logged as a warning, or at debug level when ``quiet``.
    """
    x = cp.Variable(problem.d)
    cvxpy_problem = build(problem, x)
    attempts = []
    for name in solver_order:
        start = time.perf_counter()
        try:
            # cvxpy warns "Solution may be inaccurate" for optimal_inaccurate, a status
            # that this loop records and rejects anyway.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                cvxpy_problem.solve(solver=name, **SOLVER_OPTIONS.get(name, {}))
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
        logger.log(
            logging.DEBUG if quiet else logging.WARNING,
            "%s: cvxpy solver %s returned status %r, trying the next solver",
            problem.name, name, attempts[-1]["status"],
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


# ---------------------------------------------------------------- solution set


def _project_onto_solution_set(problem, candidate, solver_order):
    """Move a certified reg = 0 minimizer to the projection of x0 onto the solution set.

    Returns (candidate, description, projection attempts).
    """
    if problem.loss == "least_squares":
        # The solution set is {x : A^T A x = A^T b}, and its point closest to x0 is
        # x0 + pinv(A) (b - A x0), which lstsq computes through the SVD.
        A = _dense(problem.A)
        step = _lstsq(A, problem.b - A @ problem.x0)
        projected = _newton_polish(problem, problem.x0 + step)
        projected.method = "x0 + pinv(A)(b - A x0), " + projected.method
        return _accept_projection(
            problem, candidate, projected,
            "projection of x0: least-squares formula x0 + pinv(A)(b - A x0)",
        )
    if problem.loss not in PIECEWISE_FAMILIES:
        # Strictly convex in every margin: the solution set is x* + null(A).
        projected = _project_on_pieces(problem, candidate.x, problem.x0)
        return _accept_projection(
            problem, candidate, projected,
            "projection of x0: x* + null(A) projected onto x0 + row(A)",
        )

    shortcut = _project_within_piece(problem, candidate)
    if shortcut is not None:
        return (
            shortcut,
            "projection of x0: onto the affine set of the solution set's piece at the "
            "polished minimizer, which contains the whole solution set",
            [],
        )
    y, attempts, level = _solve_projection(problem, candidate, solver_order)
    if y is None:
        return candidate, "any minimizer: the projection solve failed", attempts
    accuracy = _solver_accuracy(attempts[-1]["solver"])
    projected = _polish(problem, y, accuracy, base=problem.x0)
    if not projected.certificate.certified and candidate.certificate.certified:
        logger.warning(
            "%s: the projection of x0 onto the solution set did not certify "
            "(%s %.3e, floor %.3e); x_star is a minimizer but not that projection",
            problem.name, projected.certificate.kind, projected.certificate.norm,
            projected.certificate.floor,
        )
        return candidate, "any minimizer: the projection did not certify", attempts
    return (
        projected,
        f"projection of x0: min ||x - x0||^2 s.t. f(x) <= f_polished + {level:.3g}, "
        "then the polish on the solution set",
        attempts,
    )


def _accept_projection(problem, candidate, projected, description):
    """Return (point, description, []) with the projected point when ``_better`` keeps it."""
    if _better(candidate, projected) is projected:
        return projected, description, []
    logger.warning(
        "%s: the projection of x0 onto the solution set did not certify (%s %.3e, "
        "floor %.3e); x_star is a minimizer but not that projection",
        problem.name, projected.certificate.kind, projected.certificate.norm,
        projected.certificate.floor,
    )
    return candidate, "any minimizer: the projection did not certify", []


def _project_within_piece(problem, candidate):
    """Return the projection of x0 onto the solution set without a second solve, or None.

    For reg = 0, let x be the certified minimizer ``candidate.x``. When every minimizer
    lies in one affine set Q through x, and the projection q of x0 onto Q certifies
    (so that q is a minimizer), then q is also the projection of x0 onto the solution
    set. Q is known in two cases:

    - Huber and squared hinge, when no sample sits at a piece boundary. f is constant
      on the segment between two minimizers, so each phi_i is affine there. Then a
      sample strictly inside a quadratic piece keeps its margin, and
      Q = {y : A_R y = A_R x} over those samples R.
    - hinge and absolute loss, when every kink sample's slope in the certificate lies
      strictly inside its interval. Those slopes, with phi' of the other samples, form
      an optimal dual point. Complementary slackness between it and any minimizer
      keeps every kink sample at its kink, so Q = {y : A_E y = b_E}.

    "Strictly" means by PIECE_MARGIN: a margin within PIECE_MARGIN times
    ||a_i|| ||x|| + |b_i| of a piece boundary, or a slope within PIECE_MARGIN times
    the interval width of its bound, counts as on the boundary. Otherwise (data
    separable by the hinge losses, degenerate duals) None sends the oracle to the
    projection solve.
    """
    if not candidate.certificate.certified:
        return None
    x = candidate.x
    if problem.family.has_kinks:
        rows = candidate.certificate.kink_rows
        lo, hi = kink_slope_bounds(problem)
        slack = PIECE_MARGIN * (hi[rows] - lo[rows])
        slopes = candidate.certificate.kink_slopes
        if np.any(slopes <= lo[rows] + slack) or np.any(slopes >= hi[rows] - slack):
            return None
        y, _ = _kink_system_solve(problem, problem.dphi(problem.margins(x))[0], rows,
                                  problem.x0)
        projected = _Candidate(y, certify(problem, y), 1,
                               f"active-set solve on {rows.size} kink samples from x0")
    else:
        margins = problem.margins(x)[0]
        scale = problem.row_norms * float(np.linalg.norm(x)) + np.abs(problem.b)
        tol = PIECE_MARGIN * scale
        below = problem.d2phi((margins - tol)[None, :])[0]
        above = problem.d2phi((margins + tol)[None, :])[0]
        if np.any(below != above):
            return None
        projected = _project_on_pieces(problem, x, problem.x0, polish=False)
    return projected if projected.certificate.certified else None


def _solve_projection(problem, candidate, solver_order):
    """Solve min ||x - x0||^2 s.t. f(x) <= f(candidate) + tol with cvxpy.

    tol bounds f(candidate) - f* for the projection x* of x0: with g the certified
    (epsilon-)subgradient at the candidate c, f(c) - f(x*) <= epsilon + ||g|| ||c - x*||,
    and ||c - x*|| <= 2 ||c - x0|| because x* is the minimizer closest to x0. The
    rounding floor of f(c) is added. That level leaves the solver a feasible set with
    almost no interior, and Clarabel often stops there at "optimal_inaccurate" for
    the squared hinge and Huber losses. So each solver also gets a second try with the
    level raised by PROJECTION_LEVEL_FACTOR times its accuracy (times max(1, |f|)),
    before the next, slower solver runs.

    Returns (x or None, attempts, tol used).
    """
    certificate = candidate.certificate
    f_polished = float(problem.objective(candidate.x)[0])
    distance = float(np.linalg.norm(candidate.x - problem.x0))
    tol = (
        certificate.epsilon + 2.0 * certificate.norm * distance
        + objective_rounding_floor(problem, candidate.x)
    )
    all_attempts = []
    for name in solver_order:
        slack = PROJECTION_LEVEL_FACTOR * _solver_accuracy(name) * max(1.0, abs(f_polished))
        for level_tol in (tol, tol + slack):
            build = _projection_builder(f_polished + level_tol)
            try:
                y, attempts = _solve_with_cvxpy(problem, [name], build, quiet=True)
            except OracleError as exc:
                all_attempts.extend(exc.attempts)
                logger.debug(
                    "%s: projection solve with %s at level f + %.3g failed: %s",
                    problem.name, name, level_tol, exc,
                )
                continue
            return y, all_attempts + attempts, level_tol
    listing = "; ".join(f"{a['solver']}: {a['status']}" for a in all_attempts)
    logger.warning(
        "%s: every projection solve failed (%s); x_star is a minimizer but not the "
        "projection of x0 onto the solution set",
        problem.name, listing,
    )
    return None, all_attempts, None


def _project_on_pieces(problem, x, base, polish=True):
    """Return the certified projection of ``base`` onto the minimizers near ``x``.

    For reg = 0 and a minimizer x, the samples on a curved piece of phi (phi'' > 0
    within the rounding of their margin, including piece boundaries) keep their
    margins on the solution set near x, while f is constant along every direction that
    leaves those margins fixed. So near x the solution set is the affine set
    {y : A_R y = A_R x}, and the projection of ``base`` onto it is
    base + pinv(A_R) A_R (x - base). For families strictly convex in the margin, R is
    every sample, and this is the projection onto x + null(A).

    With ``polish``, Newton's method touches up the projected point when it does not
    certify as it is.
    """
    margins = problem.margins(x)[0]
    tol = KINK_ROUNDING_FACTOR * residual_rounding_floor(problem, x)
    curved = d2phi_max(problem.loss, margins - tol, margins + tol, problem.b, problem.loss_param)
    rows = np.flatnonzero(curved > 0)
    if rows.size == 0:
        moved = np.array(base, dtype=np.float64)
    else:
        A_rows = _dense_rows(problem, rows)
        step = _lstsq(A_rows, A_rows @ (x - base))
        moved = base + step
    method = f"projection on {rows.size} curved samples"
    projected = _Candidate(moved, certify(problem, moved), 0, method)
    if projected.certificate.certified or not polish:
        return projected
    polished = _newton_polish(problem, moved)
    polished.method = f"{method}, {polished.method}"
    return polished


def _better(current, proposed):
    """Return ``proposed`` when it certifies or improves on ``current``, else ``current``."""
    if proposed.certificate.certified or proposed.certificate.norm <= current.certificate.norm:
        return proposed
    logger.debug(
        "projected point rejected: %s %.3e against %.3e",
        proposed.certificate.kind, proposed.certificate.norm, current.certificate.norm,
    )
    return current


# ---------------------------------------------------------------- polish


def _polish(problem, x, accuracy, base=None):
    """Polish a solver point ``x`` whose relative accuracy is ``accuracy``.

    Hinge and absolute loss take the active-set polish, whose reg = 0 solves move
    the least from ``base`` (x itself when None). The other families take Newton's
    method, followed for reg = 0 and a given ``base`` by the projection of ``base``
    onto the minimizers near x.
    """
    if problem.family.has_kinks:
        return _active_set_polish(problem, x, accuracy, x if base is None else base)
    candidate = _newton_polish(problem, x)
    if problem.reg == 0 and base is not None:
        candidate = _better(candidate, _project_on_pieces(problem, candidate.x, base))
    return candidate


def _newton_polish(problem, x):
    """Run Newton's method from x and return a ``_Candidate`` at the best point seen.

    A step is accepted if it reduces ||grad f||, or if it reduces f by more than the
    rounding floor of f. For Huber and squared hinge, phi'' is the indicator of the
    quadratic piece, so each step is a semi-smooth Newton step on the current pieces.
    When a sample changes piece, such a step can raise the gradient norm while it
    lowers f, and the second rule accepts it. Once the pieces are right, the step
    lands on the minimizer exactly. The polish stops at the rounding floor of the
    gradient, after MAX_POLISH_STEPS steps, or when no step length in
    POLISH_STEP_LENGTHS is accepted.
    """
    x = np.array(x, dtype=np.float64)
    grad = gradient(problem, x)
    grad_norm = float(np.linalg.norm(grad))
    value = float(problem.objective(x)[0])
    best_x, best_norm = x, grad_norm
    steps = 0
    while steps < MAX_POLISH_STEPS:
        if grad_norm <= gradient_rounding_floor(problem, x):
            break
        direction = _newton_direction(problem, x, grad)
        value_floor = objective_rounding_floor(problem, x)
        for step_length in POLISH_STEP_LENGTHS:
            x_trial = x - step_length * direction
            grad_trial = gradient(problem, x_trial)
            trial_norm = float(np.linalg.norm(grad_trial))
            trial_value = float(problem.objective(x_trial)[0])
            if trial_norm < grad_norm or trial_value < value - value_floor:
                break
        else:
            logger.debug("%s: Newton step made no progress", problem.name)
            break
        x, grad, grad_norm, value = x_trial, grad_trial, trial_norm, trial_value
        steps += 1
        if grad_norm < best_norm:
            best_x, best_norm = x, grad_norm
        logger.debug("%s: Newton step %d, grad_norm %.3e", problem.name, steps, grad_norm)
    return _Candidate(best_x, certify(problem, best_x), steps, f"{steps} Newton steps")


def _newton_direction(problem, x, grad):
    """Return the minimum-norm solution p of H p = grad, shape (d,).

    H = J^T J + reg I with J = diag(sqrt(phi''(m_i) / n)) A. The SVD of J gives the
    eigenvalues s_j^2 + reg of H without forming J^T J, which would square the condition
    number. Eigenvalues at or below the squared rank tolerance of J count as zero, so
    for a singular H (reg == 0 and rank(J) < d) the step stays in the row space of J
    and x keeps its component in the null space of J. A sparse A is densified here,
    which costs n * d floats.
    """
    n, d = problem.A.shape
    curvatures = problem.d2phi(problem.margins(x))[0]
    weighted_rows = _dense(problem.A) * np.sqrt(curvatures / n)[:, None]
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


def _active_set_polish(problem, x, accuracy, base):
    """Polish a hinge or absolute-loss solver point by linear solves on its kink samples.

    The starting kink set E contains the samples with |a_i^T x - b_i| within a tolerance
    from ``KINK_TOLERANCE_LADDER``. From each start, ``_kink_active_set`` updates E
    until the point certifies, and the first start whose point certifies wins.

    - reg = 0: the tolerances go from small to large. The smallest kink set keeps the
      affine set of the solve largest, so that with several minimizers the polish
      ends closest to ``base``. A missing kink sample moves y only by the tiny
      residuals of the samples in E.
    - reg > 0: the minimizer is unique, and the tolerances go from large to small. A
      sample wrongly in E gets a kink slope outside its interval and leaves E after
      one round. A missing kink sample instead unbalances the optimality system by a
      full slope, which moves y by O(1 / reg) and makes many samples cross.

    When none certifies, the point with the smallest certificate is returned, the
    solver point included (its certificate uses a kink tolerance of
    SOLVER_KINK_FACTOR times the solver accuracy).
    """
    residuals = problem.margins(x)[0] - problem.b
    best = _Candidate(
        x, certify(problem, x, kink_tolerance(problem, x, SOLVER_KINK_FACTOR * accuracy)),
        0, "none (solver point)",
    )
    tried = set()
    ladder = KINK_TOLERANCE_LADDER if problem.reg == 0 else KINK_TOLERANCE_LADDER[::-1]
    for factor in ladder:
        at_kink = np.abs(residuals) <= kink_tolerance(problem, x, factor * accuracy)
        key = np.flatnonzero(at_kink).tobytes()
        if key in tried:
            continue
        tried.add(key)
        candidate = _kink_active_set(problem, x, at_kink, base)
        candidate.method += f", starting from tolerance {factor:g} x solver accuracy"
        if candidate.certificate.certified:
            return candidate
        if candidate.certificate.norm < best.certificate.norm:
            best = candidate
    return best


def _kink_active_set(problem, x, at_kink, base):
    """Run the primal-dual active-set iteration on the kink samples from ``at_kink``.

    Each round fixes the slope s_i of every sample outside E at one side of its kink,
    phi' at x to start with. It then solves the optimality system of f restricted to
    those sides, in the unknowns y and the kink slopes s_E:

        n reg y + A_E^T s_E = -A_N^T s_N,   A_E y = b_E.

    The system is solved for y - base with the minimum norm, so for reg = 0, where y is
    not unique, y is the point of {A_E y = b_E} closest to ``base``. Then a kink
    slope outside its interval [lo_i, hi_i] moves its sample out of E, fixed at the
    violated bound, and a sample outside E whose residual crossed to the other side of
    its kink joins E. The iteration stops when y certifies, when E stops changing, or
    after MAX_ACTIVE_SET_ROUNDS rounds, and returns the best point seen.
    """
    at_kink = at_kink.copy()
    lo, hi = kink_slope_bounds(problem)
    slopes = problem.dphi(problem.margins(x))[0]
    best = None
    for round_number in range(1, MAX_ACTIVE_SET_ROUNDS + 1):
        rows = np.flatnonzero(at_kink)
        y, kink_slopes = _kink_system_solve(problem, slopes, rows, base)
        candidate = _Candidate(
            y, certify(problem, y), round_number,
            f"active-set solve on {rows.size} kink samples, {round_number} rounds",
        )
        if best is None or candidate.certificate.norm < best.certificate.norm:
            best = candidate
        if candidate.certificate.certified:
            break
        width = hi[rows] - lo[rows]
        below = kink_slopes < lo[rows] - SLOPE_BOX_TOL * width
        above = kink_slopes > hi[rows] + SLOPE_BOX_TOL * width
        slopes[rows[below]] = lo[rows[below]]
        slopes[rows[above]] = hi[rows[above]]
        residuals = problem.margins(y)[0] - problem.b
        side = np.where(slopes == lo, -1.0, 1.0)
        crossed = (
            ~at_kink
            & (np.sign(residuals) != side)
            & (np.abs(residuals) > kink_tolerance(problem, y))
        )
        if not (below.any() or above.any() or crossed.any()):
            break
        at_kink[rows[below | above]] = False
        at_kink[crossed] = True
    return best


def _kink_system_solve(problem, slopes, rows, base):
    """Return (y, s_E) of the optimality system of ``_kink_active_set``."""
    n, d, k = problem.n, problem.d, rows.size
    A_rows = _dense_rows(problem, rows)
    fixed_slopes = slopes.copy()
    fixed_slopes[rows] = 0.0
    fixed_part = np.asarray(problem.A.T @ fixed_slopes).ravel()
    # The first block row is scaled by n so that both blocks have the scale of A.
    kkt = np.zeros((d + k, d + k))
    kkt[:d, :d] = n * problem.reg * np.eye(d)
    kkt[:d, d:] = A_rows.T
    kkt[d:, :d] = A_rows
    rhs = np.concatenate([-fixed_part - n * problem.reg * base, problem.b[rows] - A_rows @ base])
    solution = _lstsq(kkt, rhs)
    # One step of iterative refinement brings the kink residuals to rounding level.
    solution += _lstsq(kkt, rhs - kkt @ solution)
    return base + solution[:d], solution[d:]


def _lstsq(matrix, rhs):
    """Return the minimum-norm least-squares solution of matrix @ y = rhs.

    Singular values below max(rows, columns) * eps * s_max count as zero, the rank
    tolerance of numpy.linalg.matrix_rank and of ``_newton_direction``. scipy's lstsq
    cuts at eps * s_max only, which keeps the rounding-level singular value of a
    repeated column and sends y far along the null space.
    """
    return np.linalg.lstsq(matrix, rhs, rcond=None)[0]


def _dense(A):
    return A.toarray() if hasattr(A, "toarray") else np.asarray(A)


def _dense_rows(problem, rows):
    if problem.sparse:
        return problem.A[rows].toarray()
    return np.asarray(problem.A[rows])
