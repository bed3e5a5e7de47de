"""Tests of the oracle on every loss family: accuracy, solution sets, certificates, cache."""

import logging

import cvxpy as cp
import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp
from sklearn.linear_model import (
    LogisticRegression,
    PoissonRegressor,
    QuantileRegressor,
    Ridge,
)
from sklearn.svm import LinearSVC

from polyakcheck import oracle, oracle_cache
from polyakcheck.certificate import (
    GRADIENT,
    SUBDIFFERENTIAL_DISTANCE,
    certify,
    kink_tolerance,
    subdifferential_certificate,
)
from polyakcheck.oracle import OracleError, poisson_escape_direction, solve
from polyakcheck.problems.families import FAMILIES, VECTOR_MARGIN_FAMILIES

# Multinomial has its own oracle, tested in tests/test_multinomial.py.
SCALAR_FAMILIES = sorted(set(FAMILIES) - set(VECTOR_MARGIN_FAMILIES))
from polyakcheck.problems.problem import Problem

# Relative error allowed against an independent solver.
REFERENCE_RTOL = 1e-7

# Multiple of grad_norm_tol that a fresh solve must reach (as in test_oracle.py): 100
# times below the CERTIFICATE_FACTOR at which solve raises.
CERTIFICATE_SLACK = 10.0

N_SAMPLES, N_FEATURES = 150, 6


def relative_error(x, reference):
    return np.linalg.norm(x - reference) / np.linalg.norm(reference)


def random_data(seed=0, n=N_SAMPLES, d=N_FEATURES):
    """Return A and targets for each label kind: real, +-1 labels and counts."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d))
    x_true = rng.standard_normal(d) / np.sqrt(d)
    real = A @ x_true + 0.5 * rng.standard_normal(n)
    labels = np.where(A @ x_true + 0.7 * rng.standard_normal(n) >= 0, 1.0, -1.0)
    counts = rng.poisson(np.exp(0.5 * A @ x_true)).astype(float)
    return A, {"real": real, "pm1": labels, "nonneg": counts}


def family_problem(loss, reg, seed=0, sparse=False, loss_param=None):
    A, targets = random_data(seed)
    if sparse:
        A = np.where(np.abs(A) > 0.6, A, 0.0)
        A = sp.csr_matrix(A)
    b = targets[FAMILIES[loss].labels]
    return Problem(f"random-{loss}", loss, A, b, reg=reg, loss_param=loss_param)


def assert_certified(solution):
    assert solution.grad_norm <= CERTIFICATE_SLACK * solution.grad_norm_tol


# ---------------------------------------------------------------- independent solvers


def test_least_squares_matches_ridge():
    problem = family_problem("least_squares", reg=0.05)
    # Ridge minimizes ||b - A w||^2 + alpha ||w||^2, which is 2 n f for alpha = n reg.
    model = Ridge(alpha=problem.n * problem.reg, fit_intercept=False, solver="cholesky")
    expected = model.fit(problem.A, problem.b).coef_

    solution = solve(problem)

    assert relative_error(solution.x_star, expected) <= REFERENCE_RTOL
    assert solution.info["certificate"] == GRADIENT


def test_logistic_matches_sklearn():
    problem = family_problem("logistic", reg=0.05)
    model = LogisticRegression(
        C=1.0 / (problem.n * problem.reg), fit_intercept=False, tol=1e-12,
        max_iter=10000, solver="newton-cholesky",
    )
    expected = model.fit(problem.A, (problem.b + 1.0) / 2.0).coef_.ravel()

    solution = solve(problem)

    assert relative_error(solution.x_star, expected) <= REFERENCE_RTOL


def test_absolute_matches_quantile_regressor():
    # The median regression minimizes (1/n) sum_i 0.5 |r_i|, half of f, with the same
    # minimizer. HiGHS returns a vertex, and random data make the minimizer unique.
    problem = family_problem("absolute", reg=0.0)
    model = QuantileRegressor(quantile=0.5, alpha=0, solver="highs", fit_intercept=False)
    expected = model.fit(problem.A, problem.b).coef_

    solution = solve(problem)

    assert relative_error(solution.x_star, expected) <= REFERENCE_RTOL
    assert solution.info["certificate"] == SUBDIFFERENTIAL_DISTANCE


@pytest.mark.parametrize("delta", [0.5, 1.0])
def test_huber_matches_scipy_least_squares(delta):
    # HuberRegressor fits a scale sigma jointly with w (threshold epsilon * sigma), so
    # it cannot be set to a fixed delta. scipy's least_squares with loss="huber" and
    # f_scale=delta minimizes sum_i rho(r_i^2 / delta^2) delta^2 / 2, which is exactly
    # n f for reg = 0.
    problem = family_problem("huber", reg=0.0, loss_param=delta)
    expected = scipy.optimize.least_squares(
        lambda x: problem.A @ x - problem.b, np.zeros(problem.d), loss="huber",
        f_scale=delta, xtol=1e-15, ftol=1e-15, gtol=1e-15,
    ).x

    solution = solve(problem)

    assert relative_error(solution.x_star, expected) <= REFERENCE_RTOL


def test_regularized_huber_matches_bfgs():
    # least_squares cannot add reg ||x||^2 / 2 outside the Huber loss, so the reference
    # is BFGS on f itself with a gradient tolerance of 1e-13.
    problem = family_problem("huber", reg=0.05)
    expected = scipy.optimize.minimize(
        lambda x: problem.objective(x)[0], np.zeros(problem.d),
        jac=problem.gradient, method="BFGS", options={"gtol": 1e-13},
    ).x

    solution = solve(problem)

    assert relative_error(solution.x_star, expected) <= REFERENCE_RTOL


def test_squared_hinge_matches_linear_svc():
    # liblinear minimizes ||w||^2 / 2 + C sum_i max(0, 1 - b_i a_i^T w)^2, which is f /
    # reg for C = 1 / (2 n reg). Its dual coordinate descent converges at tol=1e-10 in
    # 63 iterations to a relative error near 1e-12, but never meets tol=1e-12 (100000
    # iterations, ConvergenceWarning). The primal solver stops near 2e-8.
    problem = family_problem("squared_hinge", reg=0.05)
    model = LinearSVC(
        loss="squared_hinge", C=1.0 / (2 * problem.n * problem.reg), fit_intercept=False,
        dual=True, tol=1e-10, max_iter=100000,
    )
    expected = model.fit(problem.A, problem.b).coef_.ravel()

    solution = solve(problem)

    assert relative_error(solution.x_star, expected) <= REFERENCE_RTOL


@pytest.mark.parametrize("reg", [0.0, 0.05])
def test_poisson_matches_poisson_regressor(reg):
    # PoissonRegressor minimizes mean half deviance + alpha ||w||^2 / 2; the half
    # deviance is exp(m) - b m plus a term free of w, so alpha = reg matches f.
    problem = family_problem("poisson", reg=reg)
    model = PoissonRegressor(
        alpha=reg, fit_intercept=False, solver="newton-cholesky", tol=1e-12, max_iter=1000
    )
    expected = model.fit(problem.A, problem.b).coef_

    solution = solve(problem)

    assert relative_error(solution.x_star, expected) <= REFERENCE_RTOL


def test_hinge_matches_linprog():
    # min (1/n) sum_i t_i s.t. t_i >= 1 - b_i a_i^T x, t >= 0, with HiGHS's simplex
    # vertex as the reference; random data make the minimizer unique.
    problem = family_problem("hinge", reg=0.0)
    n, d = problem.n, problem.d
    signed_rows = problem.b[:, None] * problem.A
    result = scipy.optimize.linprog(
        c=np.concatenate([np.zeros(d), np.ones(n) / n]),
        A_ub=np.hstack([-signed_rows, -np.eye(n)]),
        b_ub=-np.ones(n),
        bounds=[(None, None)] * d + [(0, None)] * n,
        method="highs",
    )

    solution = solve(problem)

    assert result.status == 0
    assert relative_error(solution.x_star, result.x[:d]) <= REFERENCE_RTOL


def test_regularized_hinge_matches_dual_qp():
    # The dual of the regularized hinge loss is max sum(alpha) - ||M^T alpha||^2 /
    # (2 reg) over 0 <= alpha <= 1/n with rows M_i = b_i a_i, and x = M^T alpha / reg.
    # OSQP's polish step solves the dual's active-set system exactly.
    problem = family_problem("hinge", reg=0.05)
    signed_rows = problem.b[:, None] * problem.A
    alpha = cp.Variable(problem.n)
    dual = cp.Problem(
        cp.Maximize(cp.sum(alpha) - cp.sum_squares(signed_rows.T @ alpha) / (2 * problem.reg)),
        [alpha >= 0, alpha <= 1.0 / problem.n],
    )
    dual.solve(solver="OSQP", eps_abs=1e-12, eps_rel=1e-12, max_iter=200000, polishing=True)
    expected = signed_rows.T @ alpha.value / problem.reg

    solution = solve(problem)

    assert dual.status == "optimal"
    assert relative_error(solution.x_star, expected) <= REFERENCE_RTOL


# ---------------------------------------------------------------- solution sets


def test_absolute_1d_odd_returns_median():
    points = np.array([3.0, -1.0, 7.5, 2.0, 10.0, 0.5, 4.0])
    problem = Problem("median", "absolute", np.ones((points.size, 1)), points, x0=[100.0])

    solution = solve(problem)

    assert solution.x_star[0] == np.median(points)
    np.testing.assert_array_equal(solution.f_i_star, np.abs(points - np.median(points)))
    assert_certified(solution)


@pytest.mark.parametrize("x0, expected", [(100.0, 4.0), (-50.0, 3.0), (3.25, 3.25)])
def test_absolute_1d_even_projects_x0(x0, expected):
    # Every point of [3, 4] between the two middle values is a median, so x_star is
    # the projection of x0 onto that interval.
    points = np.array([3.0, -1.0, 7.5, 2.0, 10.0, 4.0])
    problem = Problem("even", "absolute", np.ones((points.size, 1)), points, x0=[x0])

    solution = solve(problem)

    assert abs(solution.x_star[0] - expected) <= 1e-12
    assert solution.info["D"] == pytest.approx(abs(x0 - expected), abs=1e-12)
    assert_certified(solution)
    if x0 != expected:
        # x0 lies outside the solution set, so the projection solve must have run.
        assert solution.info["projection_attempts"]


def test_underdetermined_least_squares_projects_x0():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((12, 30))
    b = rng.standard_normal(12)
    x0 = rng.standard_normal(30)
    problem = Problem("wide", "least_squares", A, b, x0=x0)
    expected = x0 + np.linalg.pinv(A) @ (b - A @ x0)

    solution = solve(problem)

    assert relative_error(solution.x_star, expected) <= 1e-12
    # The projection: A x_star = b and x_star - x0 in the row space of A.
    assert np.linalg.norm(A @ solution.x_star - b) <= 1e-12 * np.linalg.norm(b)
    _, _, vt = np.linalg.svd(A)
    null_basis = vt[12:]
    assert np.linalg.norm(null_basis @ (solution.x_star - x0)) <= 1e-12 * np.linalg.norm(x0)
    assert solution.info["D"] == pytest.approx(np.linalg.norm(expected - x0), rel=1e-12)


@pytest.mark.parametrize("loss", ["logistic", "poisson"])
def test_rank_deficient_projects_x0(loss):
    # A repeated column leaves f constant along a null direction of A, so x_star must
    # be the minimizer whose difference from x0 lies in the row space of A.
    base = family_problem(loss, reg=0.0)
    A = np.hstack([base.A, base.A[:, :1]])
    x0 = np.linspace(-1.0, 1.0, A.shape[1])
    problem = Problem("repeated", loss, A, base.b, x0=x0)
    null_direction = np.zeros(A.shape[1])
    null_direction[0], null_direction[-1] = 1.0, -1.0

    solution = solve(problem)
    reference = solve(base)

    shift = solution.x_star - x0
    assert abs(null_direction @ shift) <= 1e-12 * np.linalg.norm(shift)
    np.testing.assert_allclose(problem.A @ solution.x_star, base.A @ reference.x_star,
                               rtol=0, atol=1e-9)
    assert_certified(solution)


def separable_problem(loss, seed=3):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((80, 4))
    direction = rng.standard_normal(4)
    scores = A @ direction
    keep = np.abs(scores) > 0.3
    return Problem(f"separable-{loss}", loss, A[keep], np.sign(scores[keep]))


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
def test_separable_returns_hard_margin_svm(loss):
    # On separable data f* = 0 for both hinge losses, and the solution set is
    # {x : b_i a_i^T x >= 1}. Its point closest to x0 = 0 is the hard-margin SVM.
    problem = separable_problem(loss)
    w = cp.Variable(problem.d)
    svm = cp.Problem(
        cp.Minimize(cp.sum_squares(w)), [cp.multiply(problem.b, problem.A @ w) >= 1]
    )
    svm.solve(solver="OSQP", eps_abs=1e-12, eps_rel=1e-12, max_iter=200000, polishing=True)

    solution = solve(problem)

    assert svm.status == "optimal"
    assert relative_error(solution.x_star, w.value) <= REFERENCE_RTOL
    assert np.max(solution.f_i_star) <= 1e-12
    assert_certified(solution)
    assert solution.info["projection_attempts"]


@pytest.mark.parametrize("loss", ["absolute", "hinge", "huber", "squared_hinge"])
def test_projection_shortcut_matches_solve(monkeypatch, loss):
    # Without a piece boundary or a kink slope at its bound, the oracle projects x0
    # onto the affine set through the polished minimizer and skips the projection
    # solve. Forcing the solve must give the same point.
    base = family_problem(loss, reg=0.0)
    x0 = np.linspace(-2.0, 2.0, base.d)
    problem = Problem(base.name, loss, base.A, base.b, x0=x0)

    shortcut = solve(problem)
    monkeypatch.setattr(oracle, "_project_within_piece", lambda problem, candidate: None)
    projected = solve(problem)

    assert shortcut.info["projection_attempts"] == []
    assert projected.info["projection_attempts"]
    assert relative_error(shortcut.x_star, projected.x_star) <= 1e-10
    assert_certified(projected)


def test_separable_logistic_raises_without_reg():
    problem = separable_problem("logistic")

    with pytest.raises(OracleError) as excinfo:
        solve(problem)

    message = str(excinfo.value)
    assert "no minimizer" in message
    assert "reg > 0" in message


def unattained_poisson():
    # Samples with b > 0 have a_i = (t, 0), the zero-count samples have a positive
    # second feature, so w = (0, -1) lowers their margins and fixes the others.
    rng = np.random.default_rng(4)
    first = rng.uniform(-1.0, 1.0, 30)
    positive = np.column_stack([first[:20], np.zeros(20)])
    zero = np.column_stack([first[20:], rng.uniform(0.5, 1.5, 10)])
    counts = np.concatenate([rng.integers(1, 5, 20), np.zeros(10)]).astype(float)
    return Problem("unattained", "poisson", np.vstack([positive, zero]), counts)


def test_unattained_poisson_raises():
    problem = unattained_poisson()

    with pytest.raises(OracleError) as excinfo:
        solve(problem)

    message = str(excinfo.value)
    assert "no minimizer" in message
    assert "count b_i = 0" in message
    assert "reg > 0" in message


def test_poisson_escape_direction_conditions():
    problem = unattained_poisson()

    direction = poisson_escape_direction(problem)

    margins = problem.A @ direction
    positive = problem.b > 0
    assert np.max(np.abs(margins[positive])) <= 1e-9 * np.max(np.abs(margins))
    assert np.max(margins) <= 1e-9 * np.max(np.abs(margins))
    assert np.min(margins[~positive]) < 0


def test_unattained_poisson_solves_with_reg():
    problem = unattained_poisson()
    regularized = Problem(problem.name, "poisson", problem.A, problem.b, reg=1e-2)

    assert_certified(solve(regularized))


def test_zero_counts_with_minimizer_solve():
    # All counts are 0, but a_i = +1 and -1 trap x: f = (exp(x) + exp(-x)) / 2 has its
    # minimizer at 0, so the escape check must not fire.
    problem = Problem("trapped", "poisson", np.array([[1.0], [-1.0]]), np.zeros(2), x0=[2.0])

    solution = solve(problem)

    assert poisson_escape_direction(problem) is None
    assert abs(solution.x_star[0]) <= 1e-12


# ---------------------------------------------------------------- certificates


@pytest.mark.parametrize("loss", ["hinge", "absolute"])
@pytest.mark.parametrize("reg", [0.0, 0.05])
def test_nonsmooth_certificate_tiny(loss, reg):
    # The bound: the distance to the subdifferential within CERTIFICATE_SLACK times its
    # float64 floor (about 1e-15 here), and an epsilon-subgradient with epsilon below
    # 1e-14, a few roundings of the O(1) residuals of the kink samples.
    problem = family_problem(loss, reg=reg)

    solution = solve(problem)

    assert solution.info["certificate"] == SUBDIFFERENTIAL_DISTANCE
    assert_certified(solution)
    assert solution.grad_norm_tol <= 1e-13
    assert solution.info["epsilon"] <= 1e-14
    assert solution.info["kink_count"] >= 1
    recomputed = certify(problem, solution.x_star)
    assert recomputed.norm == solution.grad_norm


def test_subdifferential_certificate_rejects_non_minimizer():
    problem = family_problem("absolute", reg=0.0)
    x_star = solve(problem).x_star

    certificate = certify(problem, x_star + 1e-3)

    assert not certificate.certified
    assert certificate.norm > 1e-4


def test_kink_tolerance_widens_kink_set():
    # A point 1e-9 away from the minimizer has no exact kink samples, so only a
    # tolerance at the solver-accuracy level gives back a small certificate.
    problem = family_problem("absolute", reg=0.0)
    x = solve(problem).x_star + 1e-9

    tight = subdifferential_certificate(problem, x)
    loose = subdifferential_certificate(problem, x, kink_tolerance(problem, x, 1e-6))

    assert tight.kink_count == 0
    assert loose.kink_count == problem.d
    assert loose.norm < 1e-6 * tight.norm
    assert loose.epsilon > 0


@pytest.mark.parametrize("loss", SCALAR_FAMILIES)
def test_sparse_matches_dense(loss):
    dense = family_problem(loss, reg=0.05)
    sparse = family_problem(loss, reg=0.05, sparse=True)
    dense = Problem(dense.name, loss, sparse.A.toarray(), sparse.b, reg=0.05)

    dense_solution = solve(dense)
    sparse_solution = solve(sparse)

    assert relative_error(sparse_solution.x_star, dense_solution.x_star) <= 1e-10
    assert_certified(sparse_solution)
    assert sparse_solution.info["certificate"] == dense_solution.info["certificate"]


# ---------------------------------------------------------------- solver fallback


@pytest.mark.parametrize("loss", SCALAR_FAMILIES)
def test_solver_order_osqp_only_for_qp(loss):
    problem = family_problem(loss, reg=0.05)

    order = oracle._solver_order(problem, "CLARABEL")

    expected = loss in oracle.QP_REPRESENTABLE and "OSQP" in cp.installed_solvers()
    assert ("OSQP" in order) == expected


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge", "huber", "poisson"])
def test_fallback_after_clarabel_error(monkeypatch, loss):
    problem = family_problem(loss, reg=0.05)
    expected = solve(problem).x_star
    real_solve = cp.Problem.solve

    def failing_clarabel(self, *args, **kwargs):
        if kwargs.get("solver") == "CLARABEL":
            raise cp.error.SolverError("injected Clarabel failure")
        return real_solve(self, *args, **kwargs)

    monkeypatch.setattr(cp.Problem, "solve", failing_clarabel)

    solution = solve(problem)

    assert "injected Clarabel failure" in solution.info["attempts"][0]["status"]
    assert solution.solver == "SCS"
    assert relative_error(solution.x_star, expected) <= 1e-9


# ---------------------------------------------------------------- disk cache


def test_cache_hit_returns_same_solution(tmp_path):
    problem = family_problem("hinge", reg=0.05)

    first = solve(problem, cache_dir=tmp_path)
    second = solve(problem, cache_dir=tmp_path)

    entries = list(tmp_path.glob("*.npz"))
    assert len(entries) == 1
    assert first.info["cache"] == "miss"
    assert second.info["cache"] == str(entries[0])
    np.testing.assert_array_equal(second.x_star, first.x_star)
    np.testing.assert_array_equal(second.f_i_star, first.f_i_star)
    assert second.grad_norm == first.grad_norm
    assert second.info["certificate"] == SUBDIFFERENTIAL_DISTANCE
    assert list(tmp_path.glob("*.tmp")) == []


def test_cache_key_tracks_inputs():
    problem = family_problem("least_squares", reg=0.05)
    settings = {"solvers": ["CLARABEL"], "options": {}}
    key = oracle_cache.cache_key(problem, settings, "2")
    shifted = Problem(problem.name, problem.loss, problem.A, problem.b + 1e-12, reg=0.05)
    sparse = Problem(problem.name, problem.loss, sp.csr_matrix(problem.A), problem.b, reg=0.05)

    assert oracle_cache.cache_key(problem, settings, "2") == key
    assert oracle_cache.cache_key(shifted, settings, "2") != key
    assert oracle_cache.cache_key(sparse, settings, "2") != key
    assert oracle_cache.cache_key(problem, {"solvers": ["SCS"]}, "2") != key
    assert oracle_cache.cache_key(problem, settings, "3") != key


def test_cache_from_environment(tmp_path, monkeypatch):
    problem = family_problem("least_squares", reg=0.05)
    monkeypatch.setenv(oracle_cache.CACHE_ENV, str(tmp_path))

    solve(problem)
    cached = solve(problem)
    uncached = solve(problem, cache_dir=False)

    assert cached.info["cache"].startswith(str(tmp_path))
    assert uncached.info["cache"] == "not used"


def rewrite_entry(path, **replacements):
    with np.load(path, allow_pickle=False) as entry:
        arrays = {key: entry[key] for key in entry.files}
    arrays.update(replacements)
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage", ["checksum", "garbage", "shape", "not certified"])
def test_corrupted_cache_entry_resolved(tmp_path, caplog, damage):
    problem = family_problem("absolute", reg=0.05)
    first = solve(problem, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    if damage == "checksum":
        rewrite_entry(path, x_star=first.x_star + 1.0)
    elif damage == "garbage":
        path.write_bytes(b"not an npz file")
    elif damage == "shape":
        x_star = np.append(first.x_star, 0.0)
        with np.load(path, allow_pickle=False) as entry:
            cvxpy_x, metadata = entry["cvxpy_x"], str(entry["metadata"])
        checksum = oracle_cache._checksum(x_star, cvxpy_x, metadata)
        rewrite_entry(path, x_star=x_star, checksum=np.array(checksum))
    else:
        x_star = first.x_star + 1e-3
        with np.load(path, allow_pickle=False) as entry:
            cvxpy_x, metadata = entry["cvxpy_x"], str(entry["metadata"])
        checksum = oracle_cache._checksum(x_star, cvxpy_x, metadata)
        rewrite_entry(path, x_star=x_star, checksum=np.array(checksum))

    with caplog.at_level(logging.WARNING, logger="polyakcheck.oracle_cache"):
        second = solve(problem, cache_dir=tmp_path)
    third = solve(problem, cache_dir=tmp_path)

    assert "corrupted oracle cache entry" in caplog.text
    assert second.info["cache"] == "miss"
    np.testing.assert_array_equal(second.x_star, first.x_star)
    # The re-solve overwrote the damaged entry, so the next call hits it.
    assert third.info["cache"] == str(path)


def test_cache_write_failure_keeps_solution(tmp_path, caplog):
    problem = family_problem("least_squares", reg=0.05)
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")

    with caplog.at_level(logging.WARNING, logger="polyakcheck.oracle_cache"):
        solution = solve(problem, cache_dir=blocker / "cache")

    assert "could not write oracle cache entry" in caplog.text
    assert_certified(solution)


@pytest.mark.parametrize("loss", SCALAR_FAMILIES)
def test_certificate_kind_per_family(loss):
    solution = solve(family_problem(loss, reg=0.05))

    expected = SUBDIFFERENTIAL_DISTANCE if FAMILIES[loss].has_kinks else GRADIENT
    assert solution.info["certificate"] == expected
    assert_certified(solution)
