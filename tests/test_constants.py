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


FAMILY_CASES = [("diabetes", "least_squares"), ("diabetes", "absolute"),
                ("diabetes", "huber"), ("diabetes", "poisson"),
                ("breast_cancer", "logistic"), ("breast_cancer", "squared_hinge"),
                ("breast_cancer", "hinge"), ("iris", "multinomial")]


def ball_points(center, radius, count, rng):
    for _ in range(count):
        u = rng.standard_normal(center.size)
        yield center + radius * rng.uniform() ** (1 / center.size) * u / np.linalg.norm(u)


@pytest.mark.parametrize("data,loss", FAMILY_CASES)
def test_local_constants_bound_sampled_points(data, loss):
    from polyakcheck import load_dataset, solve

    problem = load_dataset(data, loss=loss, reg=0.01)
    solution = solve(problem)
    c = instance_constants(problem, solution, 1)
    D, G_D, L_D = c["D"]["value"], c["G_D"]["value"], c["L_D"]["value"]
    rng = np.random.default_rng(7)
    worst_g = 0.0
    worst_l = 0.0
    for x in ball_points(solution.x_star, D, 100, rng):
        worst_g = max(worst_g, np.linalg.norm(problem.gradients(x), axis=1).max())
        if np.isfinite(L_D):
            v = rng.standard_normal(problem.d)
            v *= 1e-6 / np.linalg.norm(v)
            # Stay inside the ball so the local constant applies to both points.
            y = solution.x_star + (x - solution.x_star) * (1 - 1e-5)
            diff = problem.gradients(y + v) - problem.gradients(y)
            worst_l = max(worst_l, np.linalg.norm(diff, axis=1).max() / 1e-6)
    assert worst_g <= G_D * (1 + 1e-12), (worst_g, G_D)
    assert worst_l <= L_D * (1 + 1e-6), (worst_l, L_D)


@pytest.mark.parametrize("data,loss", [c for c in FAMILY_CASES if c[1] != "multinomial"])
def test_sample_infima_tight_for_every_family(data, loss):
    from scipy.optimize import minimize_scalar

    from polyakcheck import load_dataset
    from polyakcheck.problems.families import phi_np

    problem = load_dataset(data, loss=loss, reg=0.01)
    infima = sample_infima(problem)
    for i in range(0, problem.n, 53):
        norm = problem.row_norms[i]

        def h(s):
            return (phi_np(loss, s * norm, problem.b[i], problem.loss_param)
                    + 0.5 * problem.reg * s**2)

        # Margins within +-50 keep exp finite for Poisson and contain every minimizer.
        best = minimize_scalar(h, bounds=(-50 / norm, 50 / norm), method="bounded",
                               options={"xatol": 1e-12}).fun
        assert infima[i] <= best + 1e-12, (i, infima[i], best)
        assert infima[i] >= best - 1e-6, (i, infima[i], best)
