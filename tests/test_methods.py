"""Method loops against plain Python references, and the almost-sure statements."""

import sys

import numpy as np
import pytest

from polyakcheck import Method, Problem, make_method, run
from polyakcheck.run import sample_indices


def python_reference(problem, solution, steps, seed, lam_rule, step=None, beta=0.0):
    """Run SPS*/IAM/heavy-ball SGD step by step in numpy; return every x_t."""
    samples = sample_indices(problem.n, steps, 1, seed)
    x = problem.x0.copy()
    z = x.copy()
    x_prev = x.copy()
    xs = [x.copy()]
    for t in range(steps):
        i = samples[t, 0]
        a, bi = problem.A[i], problem.b[i]
        m = a @ x
        if problem.loss == "least_squares":
            f, dphi = 0.5 * (m - bi) ** 2, m - bi
        else:
            f, dphi = np.logaddexp(0, -bi * m), -bi / (1 + np.exp(bi * m))
        f += 0.5 * problem.reg * x @ x
        g = dphi * a + problem.reg * x
        if step is None:
            s = f - solution.f_i_star[i] + g @ (z - x)
            gamma = max(s, 0.0) / (g @ g)
            z = z - gamma * g
            lam = t + 1.0 if lam_rule == "t" else float(lam_rule)
            x = (lam * x + z) / (1 + lam)
        else:
            x, x_prev = x - step * g + beta * (x - x_prev), x
        xs.append(x.copy())
    return np.array(xs)


@pytest.mark.parametrize("kind,lam", [("sps_star", 0.0), ("iam", "t"), ("iam_const", 9.0)])
def test_polyak_loop_matches_python(breast_cancer, kind, lam):
    problem, solution = breast_cancer
    steps = 60
    trace = run(problem, solution, make_method(kind), steps, seed=4,
                checkpoints=np.arange(1, steps + 1))
    ref = python_reference(problem, solution, steps, 4, lam)
    gaps = problem.objective(ref[1:]) - solution.f_star
    np.testing.assert_allclose(trace.gap_last, gaps, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(trace.dist, np.linalg.norm(ref[1:] - solution.x_star, axis=1),
                               rtol=1e-10)


def test_momentum_matches_heavy_ball(diabetes):
    problem, solution = diabetes
    steps, lr, beta = 80, 0.004, 0.9
    method = Method("sgd_momentum", step_size=lr, momentum=beta)
    trace = run(problem, solution, method, steps, seed=2,
                checkpoints=np.arange(1, steps + 1))
    ref = python_reference(problem, solution, steps, 2, None, step=lr, beta=beta)
    np.testing.assert_allclose(trace.dist, np.linalg.norm(ref[1:] - solution.x_star, axis=1),
                               rtol=1e-9)


def test_lam_zero_iam_equals_sps_star(diabetes):
    problem, solution = diabetes
    a = run(problem, solution, "sps_star", 500, seed=7)
    b = run(problem, solution, Method("iam_const", lam=0.0), 500, seed=7)
    np.testing.assert_array_equal(a.gap_last, b.gap_last)
    np.testing.assert_array_equal(a.gamma, b.gamma)


def test_same_seed_same_samples():
    first = sample_indices(50, 100, 3, seed=11)
    again = sample_indices(50, 100, 3, seed=11)
    other = sample_indices(50, 100, 3, seed=12)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("kind", ["sps_star", "iam", "iam_const"])
@pytest.mark.parametrize("batch_size", [1, 8])
def test_monotone_distance_every_step(bundled, kind, batch_size):
    problem, solution = bundled
    for seed in range(3):
        trace = run(problem, solution, kind, 3000, batch_size=batch_size, seed=seed)
        mono = trace.monotone
        assert mono["violations"] == 0, mono
        assert mono["worst_ratio"] <= 1.0, mono
        # Every anchor stays in the ball of radius D around x_star.
        D = np.linalg.norm(problem.x0 - solution.x_star)
        assert np.all(trace.anchor_dist <= D * (1 + 1e-12)), (trace.anchor_dist.max(), D)


def test_averaging_identity(bundled):
    problem, solution = bundled
    trace = run(problem, solution, "iam", 5000, seed=1)
    assert np.all(trace.avg_err <= trace.avg_tol), (trace.avg_err / trace.avg_tol).max()
    # Wrong averaging weights break it far beyond the rounding slack.
    method = Method("iam", lam="t", mutation={"lam_shift": 1.0})
    wrong = run(problem, solution, method, 5000, seed=1)
    assert np.any(wrong.avg_err > 1e6 * wrong.avg_tol)


def test_gradient_sum_includes_last_iterate(diabetes):
    problem, solution = diabetes
    trace = run(problem, solution, "iam", 10, seed=0, checkpoints=[10])
    ref_x = python_reference(problem, solution, 10, 0, "t")
    samples = sample_indices(problem.n, 10, 1, 0)
    total = 0.0
    for t in range(11):
        i = samples[t, 0]
        a = problem.A[i]
        g = (a @ ref_x[t] - problem.b[i]) * a
        total += g @ g
    assert trace.g2_sum[0] == pytest.approx(total, rel=1e-10)


def test_zero_gradient_steps_are_skipped():
    # Every sample is fit exactly at x0 = x_star, so every gradient is 0 and no step moves.
    A = np.array([[1.0, 2.0], [3.0, 1.0]])
    x_star = np.array([0.5, -1.0])
    problem = Problem("exact", "least_squares", A, A @ x_star, x0=x_star)
    from polyakcheck import solve
    solution = solve(problem)
    trace = run(problem, solution, "sps_star", 20, seed=0)
    assert trace.monotone["zero_gradients"] == 20
    np.testing.assert_allclose(trace.dist, 0.0, atol=1e-14)


@pytest.mark.parametrize("kind", ["sps_star", "iam", "iam_const", "sgd_momentum"])
@pytest.mark.parametrize("data,loss,reg", [("diabetes", "least_squares", 0.0),
                                           ("breast_cancer", "logistic", 0.01),
                                           ("diabetes", "absolute", 0.01),
                                           ("diabetes", "poisson", 0.0)])
def test_single_sample_loop_matches_general_loop(monkeypatch, kind, data, loss, reg):
    run_module = sys.modules["polyakcheck.run"]
    from polyakcheck import load_dataset, solve

    problem = load_dataset(data, loss=loss, reg=reg)
    solution = solve(problem)
    fast = run(problem, solution, kind, 2000, seed=3)
    monkeypatch.setattr(run_module, "_GENERAL_LOOP_ONLY", True)
    general = run(problem, solution, kind, 2000, seed=3)
    np.testing.assert_allclose(fast.dist, general.dist, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(fast.gap_avg, general.gap_avg, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(fast.g2_sum, general.g2_sum, rtol=1e-9)
    np.testing.assert_allclose(fast.gamma, general.gamma, rtol=1e-6, atol=1e-15)
    assert fast.monotone["violations"] == general.monotone["violations"]
    if kind != "sgd_momentum":
        assert fast.monotone["violations"] == 0, fast.monotone


def test_single_sample_loop_flags_mutants(diabetes):
    problem, solution = diabetes
    for mutation in ({"f_star_shift": -1.0}, {"step_scale": 2.0}):
        trace = run(problem, solution, Method("sps_star", mutation=mutation), 3000, seed=0)
        assert trace.monotone["violations"] > 0, mutation


def test_parallel_seeds_match_sequential_runs(diabetes):
    from polyakcheck import verify

    problem, solution = diabetes
    result = verify(problem, methods=["iam"], steps=500, seeds=4, solution=solution)
    for trace in result.traces["iam"]:
        alone = run(problem, solution, "iam", 500, seed=trace.seed, checkpoints=trace.t)
        np.testing.assert_array_equal(trace.gap_last, alone.gap_last)
        np.testing.assert_array_equal(trace.g2_sum, alone.g2_sum)
