"""``run``: one method, one seed, one compiled loop, returned as a ``Trace``."""

import logging
import math
import numbers
import time

import numpy as np

from polyakcheck.methods import kernel
from polyakcheck.methods.rounding import UNIT_ROUNDOFF
from polyakcheck.methods.spec import Method, make_method
from polyakcheck.problems.problem import Problem
from polyakcheck.solution import Solution
from polyakcheck.trace import Trace

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINTS = 40

# Tests set this to run batches of one sample through the general loop too, so the two
# compiled loops can be compared on the same run.
_GENERAL_LOOP_ONLY = False


def checkpoint_grid(steps, count=DEFAULT_CHECKPOINTS):
    """Return a geometric grid of about ``count`` steps in [1, steps], containing 1 and steps."""
    grid = np.unique(np.round(np.geomspace(1, steps, num=count)).astype(np.int64))
    return grid


SAMPLINGS = ("uniform", "shuffle", "cyclic")


def sample_indices(n, steps, batch_size, seed, sampling="uniform"):
    """Draw the minibatch indices of a run, shape (steps + 1, batch_size).

    ``uniform`` draws samples with replacement, independent across steps, which the
    expectation statements require. ``shuffle`` (random reshuffling: a fresh
    permutation per epoch) and ``cyclic`` (0, 1, ..., n-1, 0, ...) cover only the
    almost-sure statements. The draw depends on (n, steps, batch_size, seed, sampling)
    only, so every method gets the same sequence for a seed.
    """
    if sampling not in SAMPLINGS:
        raise ValueError(
            f"unknown sampling {sampling!r}; use one of {', '.join(SAMPLINGS)}"
        )
    count = (steps + 1) * batch_size
    if sampling == "uniform":
        rng = np.random.default_rng(seed)
        return rng.integers(0, n, size=(steps + 1, batch_size), dtype=np.int64)
    if sampling == "cyclic":
        flat = np.arange(count, dtype=np.int64) % n
    else:
        rng = np.random.default_rng(seed)
        epochs = -(-count // n)
        flat = np.concatenate([rng.permutation(n) for _ in range(epochs)])[:count]
    return flat.astype(np.int64).reshape(steps + 1, batch_size)


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def value_magnitudes(problem, X):
    """Return f(x) and the magnitude of its summed terms for each row of X, shape (k,).

    gamma_{d+4} times the magnitude bounds the float64 rounding error of f(x).
    """
    X = np.atleast_2d(X)
    V = problem.values(X) - 0.5 * problem.reg * np.sum(X * X, axis=1)[:, None]
    x_norm = np.linalg.norm(X, axis=1)
    if problem.loss == "multinomial":
        # |phi| plus the rounding of the margins, which moves log-sum-exp and the
        # label margin by at most ||a_i|| ||x|| each (as in the kernel).
        magnitude = (np.abs(V) + 2.0 * problem.row_norms * x_norm[:, None]).mean(axis=1)
        reg_term = 0.5 * problem.reg * x_norm**2
        return V.mean(axis=1) + reg_term, magnitude + reg_term
    slope = np.abs(problem.dphi(problem.margins(X)))
    if problem.family.has_kinks:
        slope = np.ones_like(slope)
    reg_term = 0.5 * problem.reg * x_norm**2
    values = V.mean(axis=1) + reg_term
    magnitude = (np.abs(V) + slope * problem.row_norms * x_norm[:, None]).mean(axis=1)
    return values, magnitude + reg_term


def rounding_gamma(k):
    """Return gamma_k = k u / (1 - k u) with u = 2^-53."""
    return k * UNIT_ROUNDOFF / (1.0 - k * UNIT_ROUNDOFF)


def star_magnitudes(problem, solution):
    """Magnitude of the terms summed in each f_i(x_star), shape (n,)."""
    x = solution.x_star
    x_norm = float(np.linalg.norm(x))
    if problem.loss == "multinomial":
        return np.abs(solution.f_i_star) + 2.0 * problem.row_norms * x_norm
    slope = np.abs(problem.dphi(problem.margins(x)))[0]
    if problem.family.has_kinks:
        slope = np.ones_like(slope)
    x_norm = float(np.linalg.norm(x))
    return np.abs(solution.f_i_star) + slope * problem.row_norms * x_norm


def _target_values(method, solution, seed):
    lower = method.lower_bound
    n = solution.f_i_star.shape[0]
    if lower is None:
        f_target = np.array(solution.f_i_star, dtype=np.float64)
    elif isinstance(lower, str):
        f_target = np.full(n, float(solution.f_star))
    elif np.ndim(lower) == 0:
        f_target = np.full(n, float(lower))
    else:
        f_target = np.array(lower, dtype=np.float64)
        if f_target.shape != (n,) or not np.all(np.isfinite(f_target)):
            raise ValueError(
                f"lower_bound array must be finite with shape ({n},), "
                f"got shape {f_target.shape}"
            )
    shift = method.mutation.get("f_star_shift", 0.0)
    noise = method.mutation.get("f_star_noise", 0.0)
    if shift:
        f_target = f_target + shift
    if noise:
        rng = np.random.default_rng([seed, 7919])
        f_target = f_target + noise * rng.standard_normal(f_target.shape)
    return f_target


def default_sgd_step(problem):
    """Return the default SGD learning rate 1 / (4 L_max).

    For a loss that is not globally smooth (kinked or only locally smooth) L_max is
    infinite, and the curvature scale max_i ||a_i||^2 + reg takes its place.
    """
    L = problem.L_max
    if not np.isfinite(L):
        L = float(np.max(problem.row_norms**2) + problem.reg)
    return 1.0 / (4.0 * L)


def _kernel_rules(problem, method):
    if method.kind in ("sps_star", "iam", "iam_const"):
        step_rule, step_size = kernel.STEP_POLYAK, 0.0
    else:
        step_rule = kernel.STEP_CONSTANT
        step_size = method.step_size
        if step_size is None:
            step_size = default_sgd_step(problem)
    if method.kind == "iam" and "lam_constant" in method.mutation:
        lam_rule = kernel.LAM_CONSTANT
        lam_const = float(method.mutation["lam_constant"])
    elif method.kind == "iam":
        lam_rule = kernel.LAM_T
        lam_const = float(method.mutation.get("lam_shift", 0.0))
    elif method.kind == "iam_const":
        lam_rule, lam_const = kernel.LAM_CONSTANT, float(method.lam)
    elif method.kind == "sgd_momentum":
        # Heavy ball x+ = x - lr g + beta (x - x_prev) is the anchor form with
        # lam = beta / (1 - beta) and a step lr (1 + lam) on z.
        lam_rule = kernel.LAM_CONSTANT
        lam_const = method.momentum / (1.0 - method.momentum)
        step_size = step_size * (1.0 + lam_const)
    else:
        lam_rule, lam_const = kernel.LAM_NONE, 0.0
    return step_rule, step_size, lam_rule, lam_const


def run(problem, solution, method, steps, batch_size=1, seed=0, checkpoints=None,
        sampling="uniform"):
    """Run ``method`` on ``problem`` for ``steps`` steps and return its ``Trace``.

    Parameters
    ----------
    problem : Problem
    solution : Solution
        Oracle output for ``problem``; its ``f_i_star`` feeds SPS* and IAM.
    method : Method or str
        A ``Method`` or a name accepted by ``make_method``.
    steps : int
        Number of steps T >= 1.
    batch_size : int
        Samples per step, drawn uniformly with replacement.
    seed : int
        Seed of the sample sequence.
    checkpoints : array of int, optional
        Steps in [1, T] at which gaps and distances are recorded; defaults to a
        geometric grid of about 40 points that contains 1 and T.
    sampling : str
        ``"uniform"`` (with replacement, the theory's setting), ``"shuffle"`` or
        ``"cyclic"``; see ``sample_indices``.

    Returns
    -------
    Trace
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a polyakcheck.Problem, got {type(problem).__name__}")
    if not isinstance(solution, Solution):
        raise TypeError(
            f"solution must be a polyakcheck.Solution from solve(problem), "
            f"got {type(solution).__name__}"
        )
    if solution.x_star.shape != (problem.d,) or solution.f_i_star.shape != (problem.n,):
        raise ValueError(
            f"solution shapes x_star {solution.x_star.shape}, f_i_star "
            f"{solution.f_i_star.shape} do not match the problem (d={problem.d}, "
            f"n={problem.n}); solve this problem again"
        )
    if not isinstance(method, Method):
        method = make_method(method)
    steps = _check_int("steps", steps, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)
    if checkpoints is None:
        grid = checkpoint_grid(steps)
    else:
        grid = np.unique(np.asarray(checkpoints, dtype=np.int64))
        if grid.size == 0 or grid[0] < 1 or grid[-1] > steps:
            raise ValueError(
                f"checkpoints must lie in [1, steps={steps}], got {grid.tolist()[:5]}..."
            )

    samples = sample_indices(problem.n, steps, batch_size, seed, sampling)
    step_rule, step_size, lam_rule, lam_const = _kernel_rules(problem, method)
    mutation = method.mutation
    sparse, A, data, indices, indptr = problem.kernel_data()
    phi2_max = problem.family.phi2_max
    phi2_max = phi2_max if np.isfinite(phi2_max) else 0.0
    method_args = (
        _target_values(method, solution, seed), solution.f_i_star,
        star_magnitudes(problem, solution), solution.x_star, problem.x0, samples,
        step_rule, step_size, float(mutation.get("step_scale", 1.0)),
        bool(mutation.get("positive_part", True)), float(method.max_step_size),
        lam_rule, lam_const, float(method.weight_decay), "I2" in method.claims, grid,
    )
    started = time.perf_counter()
    single = batch_size == 1 and not sparse and problem.family.name != "multinomial"
    if single and not _GENERAL_LOOP_ONLY:
        out = kernel.run_loop_single(
            problem.loss_code, problem.loss_param, A, problem.b, problem.reg,
            problem.row_norms, phi2_max, *method_args,
        )
    else:
        out = kernel.run_loop(
            problem.loss_code, problem.loss_param, sparse, A, data, indices, indptr,
            problem.b, problem.reg, problem.row_norms, phi2_max, *method_args,
        )
    seconds = time.perf_counter() - started
    cp_x, cp_xbar, cp_z, g2sum, gamma, avg_err, avg_tol, mono = out
    logger.debug("%s seed %d: %d steps in %.3f s", method.label, seed, steps, seconds)
    return _make_trace(
        problem, solution, method, seed, steps, batch_size, sampling, grid,
        cp_x, cp_xbar, cp_z, g2sum, gamma, avg_err, avg_tol, mono, seconds,
    )


def _make_trace(
    problem, solution, method, seed, steps, batch_size, sampling, grid,
    cp_x, cp_xbar, cp_z, g2sum, gamma, avg_err, avg_tol, mono, seconds,
):
    # f(x) is a mean of n terms (numpy sums pairwise, at most 25 + log2(n) roundings
    # per term) of terms that each take d + 4 roundings.
    gk = rounding_gamma(problem.d + 4 + 26 + int(np.ceil(np.log2(max(problem.n, 2)))))
    f_last, mag_last = value_magnitudes(problem, cp_x)
    f_avg, mag_avg = value_magnitudes(problem, cp_xbar)
    f_star_mag = float(np.mean(star_magnitudes(problem, solution)))
    gap_tol = gk * (np.maximum(mag_last, mag_avg) + f_star_mag)
    # The averaged iterate x_sum / t carries the rounding of a t-term running sum,
    # which avg_tol bounds per checkpoint. f moves by at most its local Lipschitz
    # constant on the segment times that distance.
    gap_tol = gap_tol + _average_rounding_effect(problem, cp_xbar, avg_tol)
    monotone = {
        "worst_ratio": float(mono[kernel.MONO_WORST_RATIO]),
        "worst_step": int(mono[kernel.MONO_WORST_STEP]),
        "worst_lhs": float(mono[kernel.MONO_WORST_LHS]),
        "worst_rhs": float(mono[kernel.MONO_WORST_RHS]),
        "worst_tol": float(mono[kernel.MONO_WORST_TOL]),
        "violations": int(mono[kernel.MONO_VIOLATIONS]),
        "zero_gradients": int(mono[kernel.MONO_ZERO_GRADIENTS]),
        "min_slack": float(mono[kernel.MONO_MIN_SLACK]),
    }
    return Trace(
        method=method.describe(),
        claims=method.claims,
        seed=seed,
        steps=steps,
        batch_size=batch_size,
        sampling=sampling,
        t=grid,
        gap_last=f_last - solution.f_star,
        gap_avg=f_avg - solution.f_star,
        gap_tol=gap_tol,
        dist=np.linalg.norm(cp_x - solution.x_star, axis=1),
        anchor_dist=np.linalg.norm(cp_z - solution.x_star, axis=1),
        g2_sum=g2sum,
        gamma=gamma,
        avg_err=avg_err,
        avg_tol=avg_tol,
        monotone=monotone,
        seconds=seconds,
    )


def _average_rounding_effect(problem, X, radius):
    """Bound |f(y) - f(x)| over ||y - x|| <= radius for each row x of X, shape (k,).

    Uses sup |phi'| over each margin interval m_i +- radius ||a_i|| (exact, since phi'
    is monotone) times ||a_i||, averaged over samples, plus the ridge term.
    """
    from polyakcheck.problems.families import dphi_abs_max

    if problem.loss == "multinomial":
        slope = problem.family.phi1_max * problem.row_norms
        lipschitz = slope.mean() + problem.reg * (np.linalg.norm(X, axis=1) + radius)
        return lipschitz * radius
    M = problem.margins(X)
    reach = radius[:, None] * problem.row_norms
    slope = dphi_abs_max(problem.loss, M - reach, M + reach, problem.b,
                         problem.loss_param)
    lipschitz = (slope * problem.row_norms).mean(axis=1)
    lipschitz = lipschitz + problem.reg * (np.linalg.norm(X, axis=1) + radius)
    return lipschitz * radius


def run_seeds(problem, solution, method, steps, batch_size=1, seeds=(0,), checkpoints=None,
              sampling="uniform"):
    """Run ``method`` once per seed and return the list of traces."""
    if isinstance(seeds, numbers.Integral):
        seeds = range(int(seeds))
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty; pass at least one seed")
    if checkpoints is None:
        checkpoints = checkpoint_grid(_check_int("steps", steps, 1))
    return [
        run(problem, solution, method, steps, batch_size, seed, checkpoints, sampling)
        for seed in seeds
    ]


def finite_or_none(value):
    """Return ``value`` as float, or None when it is not finite (for JSON)."""
    value = float(value)
    return value if math.isfinite(value) else None
