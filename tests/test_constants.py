"""Instance constants: sampled points never exceed them, closed forms agree."""

import numpy as np
import pytest
from scipy.optimize import minimize

from polyakcheck.constants import gradient_noise, instance_constants, sample_infima
from polyakcheck.problems.losses import sample_gradients
from polyakcheck.run import sample_indices


def test_local_lipschitz_bounds_sampled_points(bundled):
    problem, solution = bundled
    c = instance_constants(problem, solution, 1)
    D, G_D = c["D"]["value"], c["G_D"]["value"]
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(200):
        u = rng.standard_normal(problem.d)
        x = solution.x_star + D * rng.uniform() ** (1 / problem.d) * u / np.linalg.norm(u)
        grads = sample_gradients(problem.loss_code, problem.A, problem.b, problem.reg, x)
        worst = max(worst, np.linalg.norm(grads, axis=1).max())
    assert worst <= G_D, (worst, G_D)
    assert worst >= 0.3 * G_D, "G_D should not be far above what the ball reaches"


def test_smoothness_bounds_sampled_hessians(bundled):
    problem, solution = bundled
    L_max = instance_constants(problem, solution, 1)["L_max"]["value"]
    x = solution.x_star
    h = 1e-5
    rng = np.random.default_rng(1)
    for i in rng.integers(0, problem.n, 20):
        v = rng.standard_normal(problem.d)
        v /= np.linalg.norm(v)
        g1 = sample_gradients(problem.loss_code, problem.A[i:i + 1], problem.b[i:i + 1],
                              problem.reg, x + h * v)[0]
        g0 = sample_gradients(problem.loss_code, problem.A[i:i + 1], problem.b[i:i + 1],
                              problem.reg, x)[0]
        assert np.linalg.norm(g1 - g0) / h <= L_max * (1 + 1e-6)


def test_sample_infima_are_lower_bounds(bundled):
    problem, solution = bundled
    infima = sample_infima(problem)
    for i in range(0, problem.n, 97):
        a, b = problem.A[i], problem.b[i]

        def f_i(x):
            m = a @ x
            v = 0.5 * (m - b) ** 2 if problem.loss == "least_squares" else np.logaddexp(0, -b * m)
            return v + 0.5 * problem.reg * x @ x

        best = minimize(f_i, np.zeros(problem.d), method="BFGS", options={"gtol": 1e-10}).fun
        assert infima[i] <= best + 1e-12
        if problem.reg > 0:
            assert infima[i] >= best - 1e-7


def test_ridge_infimum_closed_form():
    from polyakcheck import Problem
    problem = Problem("r", "least_squares", np.array([[3.0, 4.0]]), np.array([2.0]), reg=0.5)
    # min_x (3x1 + 4x2 - 2)^2 / 2 + 0.25 ||x||^2 = b^2 reg / (2 (reg + ||a||^2))
    assert sample_infima(problem)[0] == pytest.approx(4 * 0.5 / (2 * 25.5))


@pytest.mark.parametrize("batch_size", [1, 4])
def test_gradient_noise_matches_sampling(diabetes, batch_size):
    problem, solution = diabetes
    sigma_sq, _ = gradient_noise(problem, solution.x_star, batch_size)
    grads = sample_gradients(problem.loss_code, problem.A, problem.b, problem.reg,
                             solution.x_star)
    batches = sample_indices(problem.n, 40000, batch_size, seed=3)
    sampled = np.mean(np.sum(grads[batches].mean(axis=1) ** 2, axis=1))
    assert sampled == pytest.approx(sigma_sq, rel=0.05)
