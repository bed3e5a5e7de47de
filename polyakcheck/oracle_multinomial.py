"""Certified minimizer of the multinomial (softmax) loss: cvxpy, then Newton.

f(x) = (1/n) sum_i [log sum_k exp(w_k^T a_i) - w_{b_i}^T a_i] + reg ||x||^2 / 2, with x
stacking the class rows w_0, ..., w_{K-1}. With reg > 0 the minimizer is unique and the
Hessian (1/n) sum_i (diag(p_i) - p_i p_i^T) kron a_i a_i^T + reg I is positive definite,
so Newton's method converges quadratically from the solver's point.
"""

import logging
import time

import cvxpy as cp
import numpy as np

from polyakcheck.solution import Solution

logger = logging.getLogger(__name__)

MAX_POLISH_STEPS = 20
# Loose SCS tolerances: the start only has to lie where Newton converges.
SCS_OPTIONS = {"eps_abs": 1e-5, "eps_rel": 1e-5}
CERTIFICATE_FACTOR = 1e3
UNIT_ROUNDOFF = 2.0**-53


class MultinomialOracleError(RuntimeError):
    """Raised when the multinomial minimizer cannot be certified."""


def gradient_rounding_floor(problem, x):
    """Bound the float64 rounding error of ``problem.gradient(x)`` in norm.

    Each margin is a p-term dot product (error gamma_p ||a_i|| ||x||), which moves each
    softmax coefficient by at most twice that (the softmax is 1/2-Lipschitz per margin
    and sums K of them); the mean over n samples adds numpy's pairwise summation depth.
    The floor is gamma_k times mean_i (||p_i - e_{b_i}|| + 2 ||a_i|| ||x||) ||a_i|| plus
    reg ||x||, with k = p + K + 26 + ceil(log2 n).
    """
    k = problem.n_features + problem.n_classes + 26 + int(np.ceil(np.log2(max(problem.n, 2))))
    gamma = k * UNIT_ROUNDOFF / (1.0 - k * UNIT_ROUNDOFF)
    P, onehot = problem._class_probabilities(problem.margins(x)[0])
    x_norm = float(np.linalg.norm(x))
    coef = np.linalg.norm(P - onehot, axis=1)
    scale = np.mean((coef + 2.0 * problem.row_norms * x_norm) * problem.row_norms)
    return float(gamma * (scale + problem.reg * x_norm))


def _hessian(problem, x):
    K, p = problem.n_classes, problem.n_features
    P, _ = problem._class_probabilities(problem.margins(x)[0])
    A = problem.A
    H = np.empty((K * p, K * p))
    for k in range(K):
        for m in range(k, K):
            weights = (P[:, k] * (k == m) - P[:, k] * P[:, m]) / problem.n
            block = (A * weights[:, None]).T @ A
            H[k * p:(k + 1) * p, m * p:(m + 1) * p] = block
            H[m * p:(m + 1) * p, k * p:(k + 1) * p] = block.T
    H[np.diag_indices_from(H)] += problem.reg
    return H


def _cvxpy_start(problem, solver_order):
    K, p = problem.n_classes, problem.n_features
    W = cp.Variable((p, K))
    Z = problem.A @ W
    onehot = np.eye(K)[problem.b.astype(np.int64)]
    objective = (
        cp.sum(cp.log_sum_exp(Z, axis=1)) / problem.n
        - cp.sum(cp.multiply(onehot, Z)) / problem.n
        + 0.5 * problem.reg * cp.sum_squares(W)
    )
    attempts = []
    program = cp.Problem(cp.Minimize(objective))
    # SCS first: Newton's method polishes whatever start it gets to the rounding
    # floor, and SCS at a loose tolerance reaches a usable start far sooner than an
    # interior-point solver on the exponential cones of n x K margins.
    order = ["SCS"] + [name for name in solver_order if name not in ("SCS", "OSQP")]
    for name in order:
        options = SCS_OPTIONS if name == "SCS" else {}
        started = time.perf_counter()
        try:
            program.solve(solver=name, **options)
            status = program.status
        except cp.error.SolverError as exc:
            status = f"solver error: {exc}"
        attempts.append({"solver": name, "status": status,
                         "seconds": time.perf_counter() - started})
        if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and W.value is not None:
            # The polish below decides whether the point is good enough.
            return W.value.T.ravel().copy(), name, status, attempts
    raise MultinomialOracleError(
        "no solver returned a point for the multinomial loss: "
        + "; ".join(f"{a['solver']}: {a['status']}" for a in attempts)
    )


def solve_multinomial(problem, solver_order):
    """Return the certified ``Solution`` of a multinomial problem with reg > 0."""
    if problem.reg <= 0:
        raise MultinomialOracleError(
            "the multinomial loss without regularization has no unique minimizer "
            "(adding one vector to every class row leaves f unchanged) and none at all "
            "on separable data; pass reg > 0, for example reg=1e-2"
        )
    started = time.perf_counter()
    x, solver, status, attempts = _cvxpy_start(problem, solver_order)
    start_norm = float(np.linalg.norm(problem.gradient(x)))
    steps = 0
    for _ in range(MAX_POLISH_STEPS):
        grad = problem.gradient(x)
        norm = float(np.linalg.norm(grad))
        if norm <= gradient_rounding_floor(problem, x):
            break
        step = np.linalg.solve(_hessian(problem, x), grad)
        candidate = x - step
        if np.linalg.norm(problem.gradient(candidate)) >= norm:
            break
        x = candidate
        steps += 1
    grad_norm = float(np.linalg.norm(problem.gradient(x)))
    floor = gradient_rounding_floor(problem, x)
    if grad_norm > CERTIFICATE_FACTOR * floor:
        raise MultinomialOracleError(
            f"the multinomial minimizer could not be certified: gradient norm "
            f"{grad_norm:.3g} after {steps} Newton steps, above {CERTIFICATE_FACTOR:g} "
            f"times its rounding floor {floor:.3g}"
        )
    x.setflags(write=False)
    f_i_star = problem.values(x)[0]
    f_i_star.setflags(write=False)
    logger.debug("multinomial %s: %s %s, %d Newton steps, ||grad|| %.3g",
                 problem.name, solver, status, steps, grad_norm)
    return Solution(
        x_star=x, f_star=float(f_i_star.mean()), f_i_star=f_i_star,
        grad_norm=grad_norm, grad_norm_tol=floor, solver=solver, solver_status=status,
        polish_steps=steps, solve_seconds=time.perf_counter() - started,
        info={"attempts": attempts, "certificate": "gradient",
              "start_grad_norm": start_norm, "cache": "not used",
              "D": float(np.linalg.norm(problem.x0 - x))},
    )
