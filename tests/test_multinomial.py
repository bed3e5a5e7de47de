"""The multinomial (softmax) family: kernels, oracle and checks."""

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression

from polyakcheck import OracleError, Problem, load_dataset, run, solve
from polyakcheck.problems.losses import MULTINOMIAL, batch_value_grad


def small_problem(reg=0.1, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((20, 3))
    b = rng.integers(0, 4, 20).astype(float)
    b[:4] = [0, 1, 2, 3]
    return Problem("m", "multinomial", A, b, reg=reg)


def test_values_match_scipy():
    problem = small_problem()
    x = np.random.default_rng(1).standard_normal(problem.d)
    W = x.reshape(problem.n_classes, problem.n_features)
    M = problem.A @ W.T
    expected = logsumexp(M, axis=1) - M[np.arange(problem.n), problem.b.astype(int)]
    expected += 0.5 * problem.reg * x @ x
    np.testing.assert_allclose(problem.values(x)[0], expected, rtol=1e-13)
    assert problem.d == 12
    assert problem.n_classes == 4


def test_gradients_match_finite_differences():
    problem = small_problem()
    x = np.random.default_rng(2).standard_normal(problem.d)
    G = problem.gradients(x)
    h = 1e-6
    for j in range(problem.d):
        e = np.zeros(problem.d)
        e[j] = h
        fd = (problem.values(x + e)[0] - problem.values(x - e)[0]) / (2 * h)
        np.testing.assert_allclose(G[:, j], fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(problem.gradient(x), G.mean(axis=0), rtol=1e-12)


def test_batch_kernel_is_mean_of_samples():
    problem = small_problem()
    x = np.random.default_rng(3).standard_normal(problem.d)
    batch = np.array([1, 4, 4, 19], dtype=np.int64)
    g = np.empty(problem.d)
    sparse, A, data, indices, indptr = problem.kernel_data()
    value, _, _ = batch_value_grad(MULTINOMIAL, 1.0, sparse, A, data, indices, indptr,
                                   problem.b, problem.reg, problem.row_norms, 0.5, x,
                                   batch, g)
    assert value == pytest.approx(problem.values(x)[0][batch].mean(), rel=1e-13)
    np.testing.assert_allclose(g, problem.gradients(x)[batch].mean(axis=0), rtol=1e-12)


def test_convexity_spot_checks():
    problem = small_problem()
    rng = np.random.default_rng(4)
    for _ in range(30):
        x, y = rng.standard_normal((2, problem.d))
        fx, fy = problem.values(x)[0], problem.values(y)[0]
        assert np.all(fy >= fx + problem.gradients(x) @ (y - x) - 1e-10)


@pytest.mark.parametrize("name", ["iris", "wine"])
def test_oracle_matches_scikit_learn(name):
    problem = load_dataset(name, loss="multinomial")
    solution = solve(problem)
    reference = LogisticRegression(
        C=1.0 / (problem.n * problem.reg), fit_intercept=False, tol=1e-12,
        max_iter=10000, solver="newton-cg",
    ).fit(problem.A, problem.b.astype(int))
    np.testing.assert_allclose(solution.x_star, reference.coef_.ravel(), rtol=1e-8,
                               atol=1e-10)
    assert solution.grad_norm <= solution.grad_norm_tol


def test_unregularized_multinomial_is_rejected():
    with pytest.raises(OracleError, match="reg > 0"):
        solve(small_problem(reg=0.0))


def test_bad_labels():
    with pytest.raises(ValueError, match="class indices"):
        Problem("m", "multinomial", np.ones((3, 2)), np.array([0.0, 1.5, 1.0]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        Problem("m", "multinomial", np.ones((3, 2)), np.zeros(3))


def test_monotone_distance_holds_and_flags_mutant():
    from polyakcheck import Method

    problem = load_dataset("iris", loss="multinomial")
    solution = solve(problem)
    for batch_size in (1, 5):
        trace = run(problem, solution, "iam", 2000, batch_size=batch_size, seed=0)
        assert trace.monotone["violations"] == 0, trace.monotone
    mutant = Method("sps_star", mutation={"f_star_shift": -1.0})
    assert run(problem, solution, mutant, 2000, seed=0).monotone["violations"] > 0
