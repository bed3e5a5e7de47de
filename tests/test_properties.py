"""Property tests: SPS* and IAM on fuzzed convex instances satisfy what the theory states.

The almost-sure statements (S1, I1, I2) must hold on every step of every run. The
expectation bounds (S2-S4, I3-I5) are statistical, so a fuzzed instance only has to
avoid a "violated" verdict over SEEDS runs. The Hypothesis profile comes from
conftest.py: ``CI=true`` selects the bounded "ci" profile.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from polyakcheck import Method, OracleError, Problem, run, run_seeds, solve
from polyakcheck.checks import averaging_verdict
from polyakcheck.checks.claims import DEFAULT_CONFIDENCE
from polyakcheck.constants import instance_constants
from polyakcheck.strategies import (
    FAMILY_GENERATORS, MAX_DIMENSION, MAX_SAMPLES, build_problem, column_scales,
    instances, methods, problem_draws, random_method, random_problem,
)
from polyakcheck.verify import method_verdicts

# Steps of each run and seeds per expectation check: short runs keep the suite inside its
# time budget, and 20 seeds give a t-interval with 19 degrees of freedom.
STEPS = 200
SEEDS = 20
# Seeds per almost-sure check; every step of every run is checked.
PATH_SEEDS = 3

# NOTE: the gap of the running average f(xbar_t) - f_star carries the rounding error of
# xbar_t = (1/t) sum x_k, which the gap tolerance of run.py does not cover. When D is at
# the rounding level of x_star the bounds, which scale with D, fall below that error and
# the checker reports a false violation (see test_gap_tolerance_misses_average_rounding).
# The suite skips such instances.
MIN_RELATIVE_DISTANCE = 1e-8
# NOTE: I3's "violated" test uses a t upper limit on E sum ||g_t||^2. When most samples
# have a zero gradient, every seed can draw only those at the first steps, the limit is
# then 0, and I3 is reported violated although the true bound is positive (see
# test_i3_upper_limit_misses_rare_gradients). The suite skips instances where at least
# this share of the samples has a zero gradient at x0.
MAX_ZERO_GRADIENT_SHARE = 0.5

sps_star = methods(kinds=("sps_star",))
iam_methods = methods(kinds=("iam", "iam_const"))


def solve_or_reject(problem):
    """Return the certified solution, or reject the example if the oracle cannot certify."""
    try:
        return solve(problem)
    except OracleError:
        assume(False)


def run_seed_list(instance, count):
    """Return ``count`` consecutive seeds starting at the instance's seed."""
    return list(range(instance.seed, instance.seed + count))


def monotone_message(trace):
    mono = trace.monotone
    return (
        f"seed {trace.seed}: {mono['violations']} violating steps, worst at step "
        f"{mono['worst_step']}: left {mono['worst_lhs']!r}, right {mono['worst_rhs']!r}, "
        f"slack {mono['worst_tol']!r}"
    )


@given(instances(method_strategy=sps_star))
def test_sps_star_distance_decreases_every_step(instance):
    problem, method, batch_size, _ = instance
    solution = solve_or_reject(problem)
    traces = run_seeds(problem, solution, method, STEPS, batch_size,
                       run_seed_list(instance, PATH_SEEDS))
    for trace in traces:
        assert trace.monotone["violations"] == 0, monotone_message(trace)


@given(instances(method_strategy=iam_methods))
def test_iam_anchor_distance_decreases_every_step(instance):
    problem, method, batch_size, _ = instance
    solution = solve_or_reject(problem)
    traces = run_seeds(problem, solution, method, STEPS, batch_size,
                       run_seed_list(instance, PATH_SEEDS))
    for trace in traces:
        assert trace.monotone["violations"] == 0, monotone_message(trace)


@given(instances(method_strategy=methods(kinds=("iam",))))
def test_iam_iterate_is_running_mean(instance):
    problem, method, batch_size, _ = instance
    solution = solve_or_reject(problem)
    traces = run_seeds(problem, solution, method, STEPS, batch_size,
                       run_seed_list(instance, PATH_SEEDS))
    for trace in traces:
        worst = int(np.argmax(trace.avg_err - trace.avg_tol))
        assert trace.avg_err[worst] <= trace.avg_tol[worst], (
            f"seed {trace.seed}, t={trace.t[worst]}: ||x_t - mean(z_0..z_t)|| = "
            f"{trace.avg_err[worst]!r} > slack {trace.avg_tol[worst]!r}"
        )
    verdict = averaging_verdict(traces, problem.name)
    assert verdict.status == "holds", verdict.message


@given(instances())
def test_expectation_bounds_not_violated(instance):
    problem, method, batch_size, _ = instance
    solution = solve_or_reject(problem)
    distance = float(np.linalg.norm(problem.x0 - solution.x_star))
    scale = max(1.0, float(np.linalg.norm(solution.x_star)))
    assume(distance > MIN_RELATIVE_DISTANCE * scale)
    zero_gradients = np.all(problem.gradients(problem.x0) == 0.0, axis=1)
    assume(np.mean(zero_gradients) < MAX_ZERO_GRADIENT_SHARE)
    traces = run_seeds(problem, solution, method, STEPS, batch_size,
                       run_seed_list(instance, SEEDS))
    constants = instance_constants(problem, solution, batch_size)
    verdicts = method_verdicts(traces, method.claims, constants, problem.assumptions,
                               DEFAULT_CONFIDENCE, problem.name)
    for verdict in verdicts:
        assert verdict.status != "violated", (
            f"{verdict.statement} for {verdict.method}: {verdict.message}"
        )


@given(instances(method_strategy=methods(max_step_size=st.floats(1e-3, 10.0))))
def test_capped_step_keeps_anchor_in_ball(instance):
    # A capped step gamma <= s_+ / ||g||^2 still moves z toward x_star, because
    # ||z_(t+1) - x*||^2 <= ||z_t - x*||^2 - gamma (2 s_+ - gamma ||g||^2). It does not
    # satisfy S1/I1 as stated, whose decrease assumes the full step.
    problem, method, batch_size, _ = instance
    solution = solve_or_reject(problem)
    distance = float(np.linalg.norm(problem.x0 - solution.x_star))
    # Float64 allowance: relative 1e-9 of D plus 1e-12 of the scale of x_star.
    allowance = 1e-9 * distance + 1e-12 * (1.0 + float(np.linalg.norm(solution.x_star)))
    trace = run(problem, solution, method, STEPS, batch_size, instance.seed)
    assert np.all(trace.anchor_dist <= distance + allowance), (
        f"max ||z_t - x*|| = {trace.anchor_dist.max()!r} > D = {distance!r}"
    )


@given(problem_draws())
def test_problem_draw_builds_valid_problem(draw):
    problem = build_problem(draw)
    assert 1 <= problem.n <= MAX_SAMPLES
    assert 1 <= problem.d <= MAX_DIMENSION
    assert np.all(np.isfinite(problem.A))
    assert np.all(np.isfinite(problem.b))
    assert problem.reg >= FAMILY_GENERATORS[draw.family].min_reg
    scaled = draw.features * column_scales(problem.d, draw.condition)
    np.testing.assert_array_equal(problem.A, scaled)
    if draw.family == "least_squares" and draw.interpolate:
        assert problem.reg == 0.0
        np.testing.assert_array_equal(problem.b, scaled @ draw.x_true)
    if draw.family == "logistic":
        assert problem.reg > 0.0
        assert set(np.unique(problem.b)) <= {-1.0, 1.0}


def test_column_scales_span_condition():
    scales = column_scales(5, 100.0)
    assert scales[0] == 1.0
    assert scales[-1] == pytest.approx(0.01)
    assert np.all(np.diff(scales) < 0)
    np.testing.assert_array_equal(column_scales(1, 100.0), [1.0])


def test_random_problem_is_reproducible():
    first = random_problem(np.random.default_rng(3))
    again = random_problem(np.random.default_rng(3))
    np.testing.assert_array_equal(first.A, again.A)
    np.testing.assert_array_equal(first.b, again.b)
    np.testing.assert_array_equal(first.x0, again.x0)
    assert first.reg == again.reg
    method = random_method(np.random.default_rng(3))
    assert method == random_method(np.random.default_rng(3))


def test_capped_step_breaks_full_decrease():
    # f(x) = (x - 1)^2 / 2 from x0 = 0: s = 1/2 and g = -1, so S1 demands
    # ||x1 - x*||^2 <= 1 - s^2 / g^2 = 3/4. The full step 1/2 gives 1/4, but a cap of
    # 0.1 stops at x1 = 0.1 with 0.81. S1 as stated is false for capped SPS*.
    problem = Problem("cap", "least_squares", np.array([[1.0]]), np.array([1.0]))
    solution = solve(problem)
    trace = run(problem, solution, Method("sps_star", max_step_size=0.1), 1)
    assert trace.monotone["violations"] == 1
    assert trace.monotone["worst_lhs"] == pytest.approx(0.81)
    assert trace.monotone["worst_rhs"] == pytest.approx(0.75)


def test_gap_tolerance_covers_average_rounding():
    target = 0.7546463885230514
    problem = Problem("x0-at-minimizer", "least_squares", np.array([[1.0]]),
                      np.array([target]), x0=np.array([target]))
    solution = solve(problem)
    traces = run_seeds(problem, solution, "sps_star", 2000, seeds=range(SEEDS))
    constants = instance_constants(problem, solution, 1)
    verdicts = method_verdicts(traces, Method("sps_star").claims, constants,
                               problem.assumptions, DEFAULT_CONFIDENCE, problem.name)
    assert constants["D"]["value"] == 0.0
    for verdict in verdicts:
        assert verdict.status != "violated", verdict.message


def test_s2_bound_at_tiny_scale():
    problem = Problem("tiny", "least_squares", np.array([[1.0]]),
                      np.array([1.1185804373177235e-140]))
    solution = solve(problem)
    traces = run_seeds(problem, solution, "sps_star", STEPS, seeds=range(SEEDS))
    constants = instance_constants(problem, solution, 1)
    verdicts = method_verdicts(traces, Method("sps_star").claims, constants,
                               problem.assumptions, DEFAULT_CONFIDENCE, problem.name)
    expected = constants["D"]["value"] * constants["G_D"]["value"]
    assert math.isfinite(expected)
    assert expected > 0.0
    for verdict in verdicts:
        assert verdict.status != "violated", verdict.message


def test_i3_with_rare_gradients():
    # Only the last of 30 samples has a nonzero gradient at x0 = 0, and the true bound
    # at T = 1 is D sqrt(E ||g_0||^2 + E ||g_1||^2) / 2 > 0.
    A = np.zeros((30, 1))
    A[-1, 0] = 1.0
    problem = Problem("rare-gradient", "least_squares", A, A[:, 0].copy())
    solution = solve(problem)
    traces = run_seeds(problem, solution, "iam", STEPS, seeds=range(SEEDS))
    constants = instance_constants(problem, solution, 1)
    verdicts = method_verdicts(traces, Method("iam", lam="t").claims, constants,
                               problem.assumptions, DEFAULT_CONFIDENCE, problem.name)
    for verdict in verdicts:
        assert verdict.status != "violated", verdict.message


def test_slack_underflow_does_not_crash():
    # f(x) = x^2 / 2 (ridge term only): every SPS* step halves x.
    problem = Problem("ridge-only", "least_squares", np.zeros((1, 1)), np.zeros(1),
                      reg=1.0, x0=np.ones(1))
    solution = solve(problem)
    trace = run(problem, solution, "sps_star", 1000)
    assert trace.monotone["violations"] == 0
