"""Loss kernels against numpy and finite differences."""

import numpy as np
import pytest

from polyakcheck import Problem
from polyakcheck.problems.losses import (
    LOSS_CODES, PHI2_MAX, batch_value_grad, sample_gradients, sample_values,
)


def make_problem(loss, n=12, d=5, reg=0.3, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d))
    b = rng.standard_normal(n) if loss == "least_squares" else rng.choice([-1.0, 1.0], n)
    return Problem("t", loss, A, b, reg=reg)


def numpy_values(problem, x):
    m = problem.A @ x
    if problem.loss == "least_squares":
        v = 0.5 * (m - problem.b) ** 2
    else:
        v = np.log1p(np.exp(-problem.b * m))
    return v + 0.5 * problem.reg * x @ x


@pytest.mark.parametrize("loss", sorted(LOSS_CODES))
def test_values_match_numpy(loss):
    problem = make_problem(loss)
    x = np.random.default_rng(1).standard_normal(problem.d)
    kernel = sample_values(problem.loss_code, problem.A, problem.b, problem.reg, x)
    np.testing.assert_allclose(kernel, numpy_values(problem, x), rtol=1e-13)
    np.testing.assert_allclose(problem.values(x)[0], kernel, rtol=1e-13)


@pytest.mark.parametrize("loss", sorted(LOSS_CODES))
def test_gradients_match_finite_differences(loss):
    problem = make_problem(loss)
    x = np.random.default_rng(2).standard_normal(problem.d)
    grads = sample_gradients(problem.loss_code, problem.A, problem.b, problem.reg, x)
    h = 1e-6
    for j in range(problem.d):
        e = np.zeros(problem.d)
        e[j] = h
        fd = (numpy_values(problem, x + e) - numpy_values(problem, x - e)) / (2 * h)
        np.testing.assert_allclose(grads[:, j], fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("loss", sorted(LOSS_CODES))
def test_batch_kernel_is_mean_of_samples(loss):
    problem = make_problem(loss)
    x = np.random.default_rng(3).standard_normal(problem.d)
    batch = np.array([0, 3, 3, 7], dtype=np.int64)
    g = np.empty(problem.d)
    value, value_mag, grad_mag = batch_value_grad(
        problem.loss_code, problem.A, problem.b, problem.reg, problem.row_norms,
        PHI2_MAX[loss], x, batch, g,
    )
    values = numpy_values(problem, x)
    grads = sample_gradients(problem.loss_code, problem.A, problem.b, problem.reg, x)
    assert value == pytest.approx(values[batch].mean(), rel=1e-13)
    np.testing.assert_allclose(g, grads[batch].mean(axis=0), rtol=1e-12)
    assert value_mag >= abs(value)
    assert grad_mag >= np.linalg.norm(g) - problem.reg * np.linalg.norm(x)


def test_logistic_is_stable_at_large_margins():
    problem = Problem("t", "logistic", np.array([[1.0], [1.0]]), np.array([1.0, -1.0]))
    x = np.array([800.0])
    values = sample_values(problem.loss_code, problem.A, problem.b, 0.0, x)
    assert np.all(np.isfinite(values))
    assert values[0] == pytest.approx(np.exp(-800.0), abs=1e-300)
    assert values[1] == pytest.approx(800.0)
