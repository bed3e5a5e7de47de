"""Shared fixtures: Hypothesis profiles, compiled-kernel warm-up, solved bundled sets."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Numba compiles a kernel on its first call, which can take seconds, so no example may
# be timed out by a per-example deadline.
settings.register_profile(
    "dev", deadline=None, max_examples=30,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci", deadline=None, max_examples=15, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session", autouse=True)
def warm_kernels():
    """Compile (or load from the cache) every kernel once before the tests time anything."""
    from polyakcheck import Problem, Solution, run

    A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    for loss, b in (("least_squares", np.array([1.0, 2.0, 3.0])),
                    ("logistic", np.array([1.0, -1.0, 1.0]))):
        problem = Problem("warm", loss, A, b, reg=0.1)
        x = np.zeros(2)
        f_i = problem.values(x)[0]
        solution = Solution(x, f_i.mean(), f_i, 0.0, 0.0, "none", "warm-up")
        run(problem, solution, "sps_star", steps=2)


@pytest.fixture(scope="session")
def diabetes():
    """Least squares on diabetes with its certified solution."""
    from polyakcheck import load_dataset, solve

    problem = load_dataset("diabetes")
    return problem, solve(problem)


@pytest.fixture(scope="session")
def breast_cancer():
    """Regularized logistic regression on breast cancer with its certified solution."""
    from polyakcheck import load_dataset, solve

    problem = load_dataset("breast_cancer")
    return problem, solve(problem)


@pytest.fixture(params=["diabetes", "breast_cancer"])
def bundled(request):
    """Each bundled problem with its solution."""
    return request.getfixturevalue(request.param)
