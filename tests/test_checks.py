"""Checkers: true statements hold, and every checker reports a deliberate defect."""

import numpy as np
import pytest

from polyakcheck import Method, check_claim, run_seeds
from polyakcheck.checks import (
    anytime_verdicts, averaging_verdict, last_iterate_verdicts, monotone_verdict,
    s2_bound,
)
from polyakcheck.checks.last_iterate import harmonic, i3_verdict
from polyakcheck.checks.stats import decide, one_sided_limits
from polyakcheck.constants import instance_constants

SEEDS = range(50)


def assert_status(verdict, status):
    assert verdict.status == status, (
        f"{verdict.statement} for {verdict.method}: {verdict.status} "
        f"(margin {verdict.margin:.3g} at {verdict.where}, measured {verdict.measured:.6g}, "
        f"bound {verdict.bound:.6g}, tolerance {verdict.tolerance:.3g}): {verdict.message}"
    )


@pytest.fixture(scope="module")
def sps_runs(request):
    cache = {}

    def get(name, problem, solution, method="sps_star", steps=3000):
        key = (name, str(method), steps)
        if key not in cache:
            cache[key] = run_seeds(problem, solution, method, steps, seeds=SEEDS)
        return cache[key]

    return get


def test_s2_closed_form_is_below_its_relaxation():
    t = np.arange(1, 1000)
    tight = s2_bound(t, 3.0, 2.0, 1.5)
    relaxed = 3.0 * 1.5**2 / t + 1.5 * np.sqrt(2.0 / t)
    assert np.all(tight <= relaxed * (1 + 1e-15))


def test_harmonic_numbers():
    k = np.array([1, 2, 3, 10])
    exact = np.array([sum(1.0 / j for j in range(1, int(m) + 1)) for m in k])
    np.testing.assert_allclose(harmonic(k), exact, rtol=1e-14)


def test_t_interval_matches_scipy():
    from scipy import stats
    x = np.random.default_rng(0).standard_normal((30, 1))
    mean, lower, upper = one_sided_limits(x, 0.05)
    ci = stats.t.interval(0.90, 29, loc=x.mean(), scale=stats.sem(x[:, 0]))
    assert lower[0] == pytest.approx(ci[0])
    assert upper[0] == pytest.approx(ci[1])


def test_decide_rule():
    bound = np.array([1.0, 1.0])
    tol = np.zeros(2)
    assert decide([0.1, 0.2], [0.5, 0.9], tol, bound, bound)[0] == "holds"
    assert decide([0.1, 1.2], [0.5, 1.5], tol, bound, bound)[0] == "violated"
    assert decide([0.1, 0.8], [0.5, 1.1], tol, bound, bound)[0] == "inconclusive"


def test_all_statements_hold(bundled, sps_runs):
    problem, solution = bundled
    constants = instance_constants(problem, solution, 1)
    sps = sps_runs(problem.name, problem, solution)
    assert_status(monotone_verdict(sps, "S1"), "holds")
    for verdict in anytime_verdicts(sps, constants, problem.assumptions):
        assert_status(verdict, "holds")
    iam = sps_runs(problem.name, problem, solution, "iam")
    assert_status(monotone_verdict(iam, "I1"), "holds")
    assert_status(averaging_verdict(iam), "holds")
    for verdict in last_iterate_verdicts(iam, constants, problem.assumptions):
        assert_status(verdict, "holds")


@pytest.mark.parametrize("mutation", [
    {"f_star_shift": -1.0},
    {"step_scale": 2.0},
    {"positive_part": False},
])
def test_monotone_flags_wrong_method(bundled, mutation):
    problem, solution = bundled
    method = Method("sps_star", label="mutant", mutation=mutation)
    traces = run_seeds(problem, solution, method, 3000, seeds=range(3))
    verdict = monotone_verdict(traces, "S1", problem.name)
    assert_status(verdict, "violated")
    assert "replay: polyakcheck.run(problem, solution, method, steps=3000" in verdict.message


def test_anchor_check_flags_wrong_target(diabetes):
    problem, solution = diabetes
    method = Method("iam", lam="t", label="mutant", mutation={"f_star_shift": -1.0})
    traces = run_seeds(problem, solution, method, 3000, seeds=range(3))
    assert_status(monotone_verdict(traces, "I1"), "violated")


def test_bound_divided_by_100_is_violated(bundled, sps_runs):
    problem, solution = bundled
    constants = instance_constants(problem, solution, 1)
    traces = sps_runs(problem.name, problem, solution)

    def wrong(t, c):
        pairs = [s2_bound(t, c["A_" + p], c["B_" + p], c["D"]) for p in ("S3", "S4a", "S4b")]
        return np.min(pairs, axis=0) / 100.0

    verdict = check_claim(traces, "gap_avg", wrong, constants, "S2/100",
                          "S2 divided by 100", problem_name=problem.name)
    assert_status(verdict, "violated")
    assert "replay" in verdict.message


def test_last_iterate_bounds_catch_shrunk_bound(diabetes, sps_runs):
    problem, solution = diabetes
    constants = instance_constants(problem, solution, 1)
    traces = sps_runs(problem.name, problem, solution, "iam")
    shrunk = dict(constants)
    shrunk["D"] = {"value": constants["D"]["value"] / 100.0, "how": "wrong"}
    assert_status(i3_verdict(traces, shrunk), "violated")


def test_claim_rejects_bad_bound_shape(diabetes, sps_runs):
    problem, solution = diabetes
    traces = sps_runs(problem.name, problem, solution)
    constants = instance_constants(problem, solution, 1)
    with pytest.raises(ValueError, match="one value per checkpoint"):
        check_claim(traces, "gap_avg", lambda t, c: 1.0, constants, "x", "x")
    with pytest.raises(ValueError, match="unknown quantity"):
        check_claim(traces, "gap", lambda t, c: t * 1.0, constants, "x", "x")


def fake_traces(slope, seeds=20, noise=0.05):
    from polyakcheck.trace import Trace

    t = np.unique(np.geomspace(1, 10000, 40).round().astype(np.int64))
    rng = np.random.default_rng(0)
    traces = []
    for seed in range(seeds):
        gap = t.astype(float) ** slope * np.exp(noise * rng.standard_normal(t.size))
        zeros = np.zeros(t.size)
        traces.append(Trace(
            method={"label": "fake"}, claims=(), seed=seed, steps=int(t[-1]),
            batch_size=1, t=t, gap_last=gap, gap_avg=gap, gap_tol=np.full(t.size, 1e-16),
            dist=zeros, anchor_dist=zeros, g2_sum=zeros, gamma=np.zeros((t.size, 3)),
            avg_err=zeros, avg_tol=zeros + 1, monotone={}, seconds=0.0,
        ))
    return traces


@pytest.mark.parametrize("slope", [-1.0, -0.5, -0.3])
def test_rate_fit_recovers_slope(slope):
    from polyakcheck.checks.rates import fit_rate

    rate = fit_rate(fake_traces(slope), "gap_avg", exponent=-0.5)
    assert rate["lower"] <= slope <= rate["upper"], rate
    assert rate["upper"] - rate["lower"] < 0.05, rate
    assert rate["slower"] == (slope > -0.5), rate


def test_rate_fit_skips_rounding_floor():
    from polyakcheck.checks.rates import fit_rate

    traces = fake_traces(-5.0)
    rate = fit_rate(traces, "gap_avg", exponent=-0.5)
    # t^-5 falls below 100 x 1e-16 for t > 10^(14/5) ~ 631, so of the tail checkpoints
    # (t >= ~100) only those up to ~631 enter the fit.
    assert 3 <= rate["points"] <= 10, rate
    assert rate["t_range"][1] <= 631, rate
    assert rate["slope"] == pytest.approx(-5.0, abs=0.1)


def test_averaging_check_flags_wrong_weights(diabetes):
    problem, solution = diabetes
    method = Method("iam", lam="t", label="mutant", mutation={"lam_shift": 2.0})
    traces = run_seeds(problem, solution, method, 2000, seeds=range(3))
    assert_status(averaging_verdict(traces, problem.name), "violated")


def test_tightness_is_max_ratio_to_bound(diabetes, sps_runs):
    problem, solution = diabetes
    traces = sps_runs(problem.name, problem, solution)
    constants = instance_constants(problem, solution, 1)
    verdict = check_claim(traces, "gap_avg", lambda t, c: 2.0 / np.sqrt(t), constants,
                          "x", "x")
    mean = np.mean([tr.gap_avg for tr in traces], axis=0)
    expected = np.max(mean / (2.0 / np.sqrt(traces[0].t)))
    assert verdict.tightness == pytest.approx(expected)
    assert verdict.to_dict()["tightness"] == pytest.approx(expected)


@pytest.mark.parametrize("sampling", ["shuffle", "cyclic"])
def test_reshuffled_runs_keep_only_almost_sure_statements(diabetes, sampling):
    from polyakcheck import verify

    problem, solution = diabetes
    result = verify(problem, methods=["sps_star", "iam"], steps=900, seeds=5,
                    solution=solution, sampling=sampling)
    status = {v.statement: v.status for v in result.verdicts}
    for statement in ("S1", "I1", "I2"):
        assert status[statement] == "holds", status
    for statement in ("S2", "S3", "S4a", "S4b", "I3", "I4", "I5"):
        assert status[statement] == "not applicable", status
    reasons = [v.message for v in result.verdicts if v.statement == "S3"]
    assert sampling in reasons[0]


def test_shuffle_visits_every_sample_each_epoch():
    from polyakcheck.run import sample_indices

    samples = sample_indices(10, 29, 1, seed=3, sampling="shuffle").ravel()
    for epoch in range(3):
        assert sorted(samples[10 * epoch:10 * epoch + 10]) == list(range(10))
    cyclic = sample_indices(4, 5, 2, seed=0, sampling="cyclic").ravel()
    assert cyclic.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]


def test_bernstein_limit_covers_constant_samples():
    from polyakcheck.checks.stats import bernstein_upper

    samples = np.zeros((20, 1))
    upper = bernstein_upper(samples, 0.01, value_range=4.0)
    # All seeds equal: a t limit would be 0; the Bernstein limit keeps the range term.
    assert upper[0] == pytest.approx(7 * 4.0 * np.log(200.0) / (3 * 19))


def test_averaging_check_flags_constant_weights(diabetes):
    problem, solution = diabetes
    method = Method("iam", lam="t", label="mutant", mutation={"lam_constant": 9.0})
    traces = run_seeds(problem, solution, method, 2000, seeds=range(3))
    assert_status(averaging_verdict(traces, problem.name), "violated")


def test_s3_is_attained_on_absolute_value():
    # f(x) = |2 x - 1| from x0 = 3: f is linear between x0 and x* = 1/2, so
    # f(xbar_1) - f* = f(x0) - f* = G D, and S3 holds with equality at t = 1. The
    # checker must not call the bound violated there; it reports the tightness 1.
    from polyakcheck import Problem, solve

    problem = Problem("abs", "absolute", np.array([[2.0]]), np.array([1.0]),
                      x0=np.array([3.0]))
    solution = solve(problem)
    traces = run_seeds(problem, solution, "sps_star", 100, seeds=range(10))
    constants = instance_constants(problem, solution, 1)
    verdicts = {v.statement: v for v in anytime_verdicts(traces, constants,
                                                         problem.assumptions)}
    s3 = verdicts["S3"]
    assert s3.tightness == pytest.approx(1.0, rel=1e-12)
    assert s3.status != "violated", s3.message
    assert constants["G_D"]["value"] * constants["D"]["value"] == pytest.approx(5.0)


def test_monotone_flags_nonconvex_samples():
    # Each f_i = (a_i^T x - b_i)^2 / 2 + reg ||x||^2 / 2 with reg < 0 is non-convex
    # (d >= 2) while f stays strongly convex: S1 loses the convexity it relies on.
    from polyakcheck import Problem, Solution

    rng = np.random.default_rng(0)
    A = rng.standard_normal((40, 3))
    b = A @ rng.standard_normal(3) + 0.3 * rng.standard_normal(40)
    problem = Problem("nonconvex", "least_squares", A, b)
    H = A.T @ A / 40
    reg = -0.5 * np.linalg.eigvalsh(H)[0]
    object.__setattr__(problem, "reg", reg)
    x_star = np.linalg.solve(H + reg * np.eye(3), A.T @ b / 40)
    f_i = problem.values(x_star)[0]
    solution = Solution(x_star, f_i.mean(), f_i, 0.0, 0.0, "numpy", "closed form")
    traces = run_seeds(problem, solution, "sps_star", 2000, seeds=range(3))
    assert_status(monotone_verdict(traces, "S1"), "violated")
