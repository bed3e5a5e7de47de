"""Tests of the certified minimizer oracle ``polyakcheck.oracle.solve``."""

import cvxpy as cp
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from polyakcheck import oracle
from polyakcheck.oracle import (
    OracleError,
    gradient,
    gradient_rounding_floor,
    separating_direction,
    solve,
)
from polyakcheck.problems.datasets import load_breast_cancer, load_diabetes
from polyakcheck.problems.problem import Problem

RTOL = 1e-8

# Multiple of grad_norm_tol that a fresh solve must reach. The polish stops at
# grad_norm <= grad_norm_tol unless it first runs out of steps or progress. The factor
# 10 allows for those stops and is still 100 times below the CERTIFICATE_FACTOR at
# which solve raises.
CERTIFICATE_SLACK = 10.0


def relative_error(x, reference):
    return np.linalg.norm(x - reference) / np.linalg.norm(reference)


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes()


@pytest.fixture(scope="module")
def breast_cancer():
    return load_breast_cancer()


@pytest.fixture(scope="module")
def breast_cancer_solution(breast_cancer):
    return solve(breast_cancer)


def random_least_squares(n, d, reg, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d))
    b = A @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n)
    return Problem(f"random_{n}x{d}", "least_squares", A, b, reg=reg)


def separable_logistic(reg, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((60, 5))
    b = np.sign(A @ rng.standard_normal(5))
    return Problem("separable", "logistic", A, b, reg=reg)


def limit_solver_iterations(monkeypatch, limits):
    """Make cp.Problem.solve pass ``limits[solver]`` as options to the real solver."""
    real_solve = cp.Problem.solve

    def limited_solve(self, *args, **kwargs):
        kwargs.update(limits.get(kwargs.get("solver"), {}))
        return real_solve(self, *args, **kwargs)

    monkeypatch.setattr(cp.Problem, "solve", limited_solve)


# Accuracy against closed forms and scikit-learn.


def test_ridge_matches_closed_form():
    problem = random_least_squares(200, 15, reg=0.1, seed=1)
    n, d = problem.A.shape
    hessian = problem.A.T @ problem.A / n + problem.reg * np.eye(d)
    expected = np.linalg.solve(hessian, problem.A.T @ problem.b / n)

    solution = solve(problem)

    assert relative_error(solution.x_star, expected) <= RTOL


def test_diabetes_matches_lstsq(diabetes):
    expected, *_ = np.linalg.lstsq(diabetes.A, diabetes.b, rcond=None)

    solution = solve(diabetes)

    assert relative_error(solution.x_star, expected) <= RTOL


def test_ridge_matches_sklearn():
    problem = load_diabetes(reg=0.05)
    # scikit-learn's Ridge minimizes ||y - X w||^2 + alpha ||w||^2, which is 2 n times
    # f(w) = ||y - X w||^2 / (2 n) + (reg / 2) ||w||^2 when alpha = n * reg.
    model = Ridge(
        alpha=problem.n * problem.reg, fit_intercept=False, tol=1e-12, solver="cholesky"
    )
    expected = model.fit(problem.A, problem.b).coef_

    solution = solve(problem)

    assert relative_error(solution.x_star, expected) <= RTOL


def test_logistic_matches_sklearn(breast_cancer, breast_cancer_solution):
    # scikit-learn 1.9.1 minimizes C sum_i log-loss_i + ||w||^2 / 2 for the default
    # l1_ratio=0, which is C n times f when C = 1 / (n reg). Its lbfgs solver stops at
    # a relative error of about 4e-7 here even with tol=1e-12, so the reference uses
    # Newton's method.
    n, reg = breast_cancer.n, breast_cancer.reg
    model = LogisticRegression(
        C=1.0 / (n * reg),
        fit_intercept=False,
        tol=1e-12,
        max_iter=10000,
        solver="newton-cholesky",
    )
    labels_zero_one = (breast_cancer.b + 1.0) / 2.0
    expected = model.fit(breast_cancer.A, labels_zero_one).coef_.ravel()

    assert relative_error(breast_cancer_solution.x_star, expected) <= RTOL


def test_unregularized_logistic_breast_cancer():
    # Breast cancer is not linearly separable through the origin, so reg=0 still has a
    # minimizer, although it lies far out (||x_star|| is about 425).
    problem = load_breast_cancer(reg=0.0)
    model = LogisticRegression(
        C=np.inf,
        fit_intercept=False,
        tol=1e-12,
        max_iter=10000,
        solver="newton-cholesky",
    )
    expected = model.fit(problem.A, (problem.b + 1.0) / 2.0).coef_.ravel()

    solution = solve(problem)

    assert relative_error(solution.x_star, expected) <= RTOL
    assert solution.grad_norm <= CERTIFICATE_SLACK * solution.grad_norm_tol


# Certificate and returned values.


@pytest.mark.parametrize("loader", [load_diabetes, load_breast_cancer])
def test_certificate_bundled_sets(loader):
    problem = loader()

    solution = solve(problem)

    assert solution.grad_norm <= CERTIFICATE_SLACK * solution.grad_norm_tol
    assert solution.grad_norm == np.linalg.norm(gradient(problem, solution.x_star))
    assert solution.grad_norm_tol == gradient_rounding_floor(problem, solution.x_star)
    assert solution.x_star.shape == (problem.d,)
    assert solution.f_i_star.shape == (problem.n,)
    np.testing.assert_array_equal(solution.f_i_star, problem.values(solution.x_star)[0])
    assert solution.f_star == solution.f_i_star.mean()
    assert solution.solver_status == "optimal"
    assert solution.solve_seconds > 0
    assert not solution.x_star.flags.writeable


def test_underdetermined_least_squares():
    problem = random_least_squares(20, 50, reg=0.0, seed=2)

    solution = solve(problem)

    residual = problem.A @ solution.x_star - problem.b
    assert np.linalg.norm(residual) <= 1e-12 * np.linalg.norm(problem.b)
    assert solution.grad_norm <= CERTIFICATE_SLACK * solution.grad_norm_tol
    assert solution.f_star <= 1e-24


def test_polish_keeps_null_space_component():
    # A repeated column gives A a null space although n > d. Newton steps must not move
    # x along it, because the gradient does not change there.
    base = random_least_squares(60, 10, reg=0.0, seed=4)
    A = np.hstack([base.A, base.A[:, :1]])
    problem = Problem("repeated_column", "least_squares", A, base.b)
    _, singular_values, vt = np.linalg.svd(A)
    null_basis = vt[singular_values.size - 1 :][singular_values[-1:] < 1e-10]
    assert null_basis.shape == (1, problem.d)

    # SCS stops far enough above the rounding floor that the polish takes steps.
    solution = solve(problem, solver="SCS")
    cvxpy_x = solution.info["cvxpy_x"]
    polished = oracle._newton_polish(problem, cvxpy_x)

    shift = polished.x - cvxpy_x
    assert polished.polish_steps > 0
    assert np.linalg.norm(null_basis @ shift) <= 1e-12 * np.linalg.norm(polished.x)
    assert polished.certificate.norm <= CERTIFICATE_SLACK * polished.certificate.floor
    # x_star is the projection of x0 = 0 onto the solution set, so it has no component
    # in the null space, whatever the solver's point had there.
    assert np.linalg.norm(null_basis @ solution.x_star) <= 1e-12 * np.linalg.norm(
        solution.x_star
    )
    assert solution.grad_norm <= CERTIFICATE_SLACK * solution.grad_norm_tol


@pytest.mark.parametrize("loader", [load_diabetes, load_breast_cancer])
def test_gradient_matches_finite_differences(loader):
    problem = loader()
    x = np.random.default_rng(3).standard_normal(problem.d)
    step = 1e-5
    basis = np.eye(problem.d)
    differences = (
        problem.objective(x + step * basis) - problem.objective(x - step * basis)
    ) / (2 * step)

    np.testing.assert_allclose(gradient(problem, x), differences, rtol=0, atol=1e-8)


@pytest.mark.parametrize("loader", [load_diabetes, load_breast_cancer])
def test_rounding_floor_bounds_gradient_error(loader):
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        pytest.skip("long double is no more precise than float64 on this platform")
    problem = loader()
    x = solve(problem).x_star
    A = problem.A.astype(np.longdouble)
    b = problem.b.astype(np.longdouble)
    margins = A @ x.astype(np.longdouble)
    if problem.loss == "least_squares":
        slopes = margins - b
    else:
        slopes = -b / (1 + np.exp(b * margins))
    exact = A.T @ slopes / problem.n + problem.reg * x.astype(np.longdouble)

    error = np.linalg.norm((gradient(problem, x) - exact).astype(np.float64))

    assert error <= gradient_rounding_floor(problem, x)


# Problems without a minimizer and invalid input.


def test_separable_logistic_raises():
    problem = separable_logistic(reg=0.0)

    with pytest.raises(OracleError) as excinfo:
        solve(problem)

    message = str(excinfo.value)
    assert "separable" in message
    assert "reg" in message


def test_quasi_separable_logistic_raises():
    # Points with b_i a_i^T w = 0 for the separating w, each with both labels, still
    # leave the loss without a minimizer because the other margins grow along w.
    rng = np.random.default_rng(5)
    direction = rng.standard_normal(6)
    A = rng.standard_normal((80, 6))
    on_hyperplane = rng.standard_normal((4, 6))
    on_hyperplane -= np.outer(on_hyperplane @ direction, direction) / (
        direction @ direction
    )
    problem = Problem(
        "quasi_separable",
        "logistic",
        np.vstack([A, on_hyperplane, on_hyperplane]),
        np.concatenate([np.sign(A @ direction), np.ones(4), -np.ones(4)]),
    )

    with pytest.raises(OracleError) as excinfo:
        solve(problem)

    assert "separable" in str(excinfo.value)


def test_separating_direction_separates():
    problem = separable_logistic(reg=0.0)

    direction = separating_direction(problem)

    assert direction is not None
    margins = problem.b * (problem.A @ direction)
    assert margins.min() >= -oracle.SEPARATION_MARGIN_TOL * margins.max()
    assert margins.max() > 0.5


def test_separable_logistic_with_reg_solves():
    problem = separable_logistic(reg=1e-2)

    solution = solve(problem)

    assert solution.grad_norm <= CERTIFICATE_SLACK * solution.grad_norm_tol


def test_rejects_non_problem(diabetes):
    with pytest.raises(TypeError) as excinfo:
        solve({"A": diabetes.A, "b": diabetes.b})

    message = str(excinfo.value)
    assert "dict" in message
    assert "Problem" in message


def test_rejects_unknown_solver(diabetes):
    with pytest.raises(ValueError) as excinfo:
        solve(diabetes, solver="NO_SUCH_SOLVER")

    message = str(excinfo.value)
    assert "NO_SUCH_SOLVER" in message
    assert "CLARABEL" in message


# Solver failures.


def test_fallback_after_clarabel_user_limit(
    monkeypatch, breast_cancer, breast_cancer_solution
):
    limit_solver_iterations(monkeypatch, {"CLARABEL": {"max_iter": 1}})

    solution = solve(breast_cancer)

    attempts = solution.info["attempts"]
    assert attempts[0]["solver"] == "CLARABEL"
    assert attempts[0]["status"] != "optimal"
    assert solution.solver == "SCS"
    assert solution.solver_status == "optimal"
    assert relative_error(solution.x_star, breast_cancer_solution.x_star) <= RTOL


def test_fallback_after_solver_error(monkeypatch, diabetes):
    real_solve = cp.Problem.solve

    def failing_clarabel(self, *args, **kwargs):
        if kwargs.get("solver") == "CLARABEL":
            raise cp.error.SolverError("injected Clarabel failure")
        return real_solve(self, *args, **kwargs)

    monkeypatch.setattr(cp.Problem, "solve", failing_clarabel)
    expected, *_ = np.linalg.lstsq(diabetes.A, diabetes.b, rcond=None)

    solution = solve(diabetes)

    assert "injected Clarabel failure" in solution.info["attempts"][0]["status"]
    assert solution.solver == "SCS"
    assert relative_error(solution.x_star, expected) <= RTOL


def test_all_solvers_fail_lists_statuses(monkeypatch, breast_cancer):
    limits = {
        "CLARABEL": {"max_iter": 1},
        "SCS": {"max_iters": 1},
        "ECOS": {"max_iters": 1},
    }
    limit_solver_iterations(monkeypatch, limits)
    installed = cp.installed_solvers()
    expected_solvers = [s for s in ("CLARABEL", "SCS", "ECOS") if s in installed]

    with pytest.raises(OracleError) as excinfo:
        solve(breast_cancer)

    attempts = excinfo.value.attempts
    assert [a["solver"] for a in attempts] == expected_solvers
    message = str(excinfo.value)
    for attempt in attempts:
        assert attempt["status"] != "optimal"
        assert f"{attempt['solver']}: {attempt['status']}" in message


def test_uncertified_minimizer_raises(monkeypatch, breast_cancer):
    # SCS stops at a gradient norm near 1e-7, about 1e6 times the rounding floor, so
    # without the Newton polish the certificate must fail.
    monkeypatch.setattr(oracle, "MAX_POLISH_STEPS", 0)

    with pytest.raises(OracleError) as excinfo:
        solve(breast_cancer, solver="SCS")

    message = str(excinfo.value)
    assert "could not certify" in message
    assert "grad_norm_tol" in message
