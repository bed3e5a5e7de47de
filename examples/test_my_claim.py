"""Check your own bound on SPS* with fuzzed problems: copy this file and edit ``my_bound``.

The claim checked here is the Lipschitz corollary S3 of the SPS* theory:

    E[f(xbar_t)] - f_star <= D G_D / sqrt(t)  for every t >= 1,

with D = ||x0 - x_star||, G_D the largest sample gradient norm on the ball of radius D
around x_star, and xbar_t = (1/t) sum_{k<t} x_k. Replace ``my_bound`` with your own
expression in the constants of ``polyakcheck.constants.instance_constants``.

Run it with ``python -m pytest examples/test_my_claim.py``.
"""

import numpy as np
from hypothesis import assume, given, settings

from polyakcheck import OracleError, check_claim, run_seeds, solve
from polyakcheck.constants import instance_constants
from polyakcheck.strategies import instances, methods

# Independent runs per problem: check_claim bounds the mean over them with a one-sided
# Student t limit, so more seeds give a narrower interval.
SEEDS = 20
STEPS = 300


def my_bound(t, c):
    """Return the claimed bound at the checkpoints t (ndarray) from the constants c."""
    return c["D"] * c["G_D"] / np.sqrt(t)


# Numba compiles the method loop on first use, which can take seconds, so the example
# turns off Hypothesis's per-example deadline, and 25 examples keep the run short.
@settings(deadline=None, max_examples=25)
@given(instances(method_strategy=methods(kinds=("sps_star",))))
def test_my_bound_is_not_violated(instance):
    # 1. A fuzzed convex instance: a small least-squares or logistic problem, the SPS*
    #    method, a minibatch size and a seed. On failure Hypothesis shrinks it to a small
    #    counterexample and prints it.
    problem, method, batch_size, seed = instance

    # 2. The certified minimizer x_star and the f_i(x_star) that SPS* uses. Skip the
    #    rare problem whose minimizer the oracle cannot certify in float64.
    try:
        solution = solve(problem)
    except OracleError:
        assume(False)

    # 3. The constants D, G_D, L_max, sigma*^2, Delta*, ... of this instance, for the
    #    minibatch size of the runs.
    constants = instance_constants(problem, solution, batch_size)
    # TODO: remove this skip once the gap tolerance covers the rounding of the running
    # average xbar_t. A start within rounding of x_star makes D, and so the bound,
    # smaller than that rounding error, and the checker then reports a false violation.
    x_star_scale = 1.0 + float(np.linalg.norm(solution.x_star))
    assume(constants["D"]["value"] > 1e-8 * x_star_scale)

    # 4. SEEDS independent runs. They share one checkpoint grid, a geometric grid of
    #    steps in [1, STEPS], at which every trace records the gaps.
    traces = run_seeds(problem, solution, method, STEPS, batch_size,
                       seeds=range(seed, seed + SEEDS))

    # 5. Check E[gap_avg] <= my_bound at every checkpoint. The verdict is "violated" only
    #    when the lower 99% confidence limit of the mean (Bonferroni-corrected over the
    #    checkpoints) exceeds the bound by more than the float64 rounding tolerance.
    verdict = check_claim(
        traces, "gap_avg", my_bound, constants,
        statement="my-S3", title="E f(xbar_t) - f* <= D G_D / sqrt(t)",
        problem_name=problem.name,
    )

    # 6. "holds" and "inconclusive" both pass: only a confident excess is a failure.
    #    The message names the checkpoint, the measured mean and the bound.
    assert verdict.status != "violated", verdict.message
