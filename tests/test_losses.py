"""Loss kernels against numpy, finite differences and convexity, for every family."""

import numpy as np
import pytest
import scipy.sparse as sp

from polyakcheck import Problem
from polyakcheck.problems.families import (
    FAMILIES, VECTOR_MARGIN_FAMILIES, d2phi_np, dphi_np, phi_np,
)
from polyakcheck.problems.losses import batch_value_grad, dphi, phi, sample_gradients

# Multinomial has a vector margin; tests/test_multinomial.py covers it.
FAMILY_NAMES = sorted(set(FAMILIES) - set(VECTOR_MARGIN_FAMILIES))


def make_problem(loss, n=12, d=5, reg=0.3, seed=0, sparse=False):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d)) * (0.5 if loss == "poisson" else 1.0)
    labels = FAMILIES[loss].labels
    if labels == "pm1":
        b = rng.choice([-1.0, 1.0], n)
    elif labels == "nonneg":
        b = rng.poisson(2.0, n).astype(float)
    else:
        b = rng.standard_normal(n)
    if sparse:
        A[rng.random(A.shape) < 0.6] = 0.0
        A = sp.csr_matrix(A)
    return Problem("t", loss, A, b, reg=reg)


def numpy_values(problem, x):
    m = problem.A @ x
    return phi_np(problem.loss, m, problem.b, problem.loss_param) + 0.5 * problem.reg * x @ x


@pytest.mark.parametrize("loss", FAMILY_NAMES)
def test_scalar_kernel_matches_numpy(loss):
    fam = FAMILIES[loss]
    b = 1.0 if fam.labels != "real" else 0.3
    for m in np.linspace(-3, 3, 61):
        assert phi(fam.code, m, b, 1.0) == pytest.approx(phi_np(loss, m, b), rel=1e-14)
        assert dphi(fam.code, m, b, 1.0) == pytest.approx(dphi_np(loss, m, b), rel=1e-14)


@pytest.mark.parametrize("loss", FAMILY_NAMES)
def test_values_match_numpy(loss):
    problem = make_problem(loss)
    x = np.random.default_rng(1).standard_normal(problem.d)
    np.testing.assert_allclose(problem.values(x)[0], numpy_values(problem, x), rtol=1e-13)
    assert problem.objective(x)[0] == pytest.approx(numpy_values(problem, x).mean())


@pytest.mark.parametrize("loss", FAMILY_NAMES)
def test_gradients_match_finite_differences(loss):
    problem = make_problem(loss)
    x = np.random.default_rng(2).standard_normal(problem.d)
    grads = sample_gradients(problem.loss_code, problem.A, problem.b, problem.reg, x,
                             problem.loss_param)
    np.testing.assert_allclose(grads, problem.gradients(x), rtol=1e-12, atol=1e-14)
    h = 1e-6
    margins = problem.A @ x
    for j in range(problem.d):
        e = np.zeros(problem.d)
        e[j] = h
        fd = (numpy_values(problem, x + e) - numpy_values(problem, x - e)) / (2 * h)
        if FAMILIES[loss].has_kinks:
            # Finite differences are meaningless within h of a kink.
            kink = 1.0 if loss == "hinge" else 0.0
            dist = np.abs(problem.b * margins - kink) if loss == "hinge" else np.abs(margins - problem.b)
            keep = dist > 1e-3
        else:
            keep = np.ones(problem.n, dtype=bool)
        np.testing.assert_allclose(grads[keep, j], fd[keep], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("loss", FAMILY_NAMES)
def test_convexity_spot_checks(loss):
    problem = make_problem(loss)
    rng = np.random.default_rng(5)
    for _ in range(50):
        x, y = rng.standard_normal((2, problem.d))
        fx, fy = numpy_values(problem, x), numpy_values(problem, y)
        gx = problem.gradients(x)
        # Subgradient inequality f_i(y) >= f_i(x) + <g_i(x), y - x> for every sample.
        assert np.all(fy >= fx + gx @ (y - x) - 1e-10 * (1 + np.abs(fy)))
        mid = numpy_values(problem, 0.5 * (x + y))
        assert np.all(mid <= 0.5 * (fx + fy) + 1e-12 * (1 + np.abs(fx) + np.abs(fy)))


@pytest.mark.parametrize("loss", [f for f in FAMILY_NAMES if not FAMILIES[f].has_kinks])
def test_second_derivative_matches_finite_differences(loss):
    b = 1.0 if FAMILIES[loss].labels != "real" else 0.3
    for m in np.linspace(-2.7, 2.9, 23):
        fd = (dphi_np(loss, m + 1e-6, b) - dphi_np(loss, m - 1e-6, b)) / 2e-6
        assert d2phi_np(loss, m, b) == pytest.approx(fd, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("loss", FAMILY_NAMES)
@pytest.mark.parametrize("sparse", [False, True])
def test_batch_kernel_is_mean_of_samples(loss, sparse):
    problem = make_problem(loss, sparse=sparse)
    x = np.random.default_rng(3).standard_normal(problem.d)
    batch = np.array([0, 3, 3, 7], dtype=np.int64)
    g = np.empty(problem.d)
    sparse_flag, A, data, indices, indptr = problem.kernel_data()
    value, value_mag, grad_mag = batch_value_grad(
        problem.loss_code, problem.loss_param, sparse_flag, A, data, indices, indptr,
        problem.b, problem.reg, problem.row_norms, 1.0, x, batch, g,
    )
    values = problem.values(x)[0]
    grads = problem.gradients(x)
    assert value == pytest.approx(values[batch].mean(), rel=1e-13)
    np.testing.assert_allclose(g, grads[batch].mean(axis=0), rtol=1e-12, atol=1e-15)
    assert value_mag >= abs(value) - 0.5 * problem.reg * x @ x
    assert grad_mag >= np.linalg.norm(g) - problem.reg * np.linalg.norm(x)


def test_logistic_is_stable_at_large_margins():
    problem = Problem("t", "logistic", np.array([[1.0], [1.0]]), np.array([1.0, -1.0]))
    values = problem.values(np.array([800.0]))[0]
    assert np.all(np.isfinite(values))
    assert values[0] == pytest.approx(np.exp(-800.0), abs=1e-300)
    assert values[1] == pytest.approx(800.0)
    assert phi(1, 800.0, -1.0, 1.0) == pytest.approx(800.0)
