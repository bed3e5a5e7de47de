"""``verify``: the whole pipeline for one problem, from the oracle to the verdicts."""

import dataclasses
import logging
import math
import numbers
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm.auto import tqdm

from polyakcheck.checks import (
    anytime_verdicts, averaging_verdict, last_iterate_verdicts, monotone_verdict,
)
from polyakcheck.checks.claims import DEFAULT_CONFIDENCE
from polyakcheck.checks.rates import fit_rate, theoretical_exponent
from polyakcheck.constants import instance_constants
from polyakcheck.methods import Method, make_method
from polyakcheck.oracle import solve
from polyakcheck.problems.problem import Problem
from polyakcheck.run import SAMPLINGS, checkpoint_grid, default_sgd_step, run
from polyakcheck.verification import Verification

logger = logging.getLogger(__name__)

DEFAULT_METHODS = ("sps_star", "iam", "iam_const", "sgd")
DEFAULT_SEEDS = 50


def _resolve_steps(problem, steps, epochs, batch_size):
    if steps is not None and epochs is not None:
        raise ValueError("pass steps or epochs, not both")
    if epochs is not None:
        if (isinstance(epochs, bool) or not isinstance(epochs, numbers.Real)
                or not math.isfinite(epochs) or epochs <= 0):
            raise ValueError(f"epochs must be a finite number > 0, got {epochs!r}")
        return max(1, int(round(epochs * problem.n / batch_size)))
    if steps is None:
        return max(1, int(round(15 * problem.n / batch_size)))
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"steps must be an integer, got {steps!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}; pass a positive step count")
    return int(steps)


def _resolve_seeds(seeds):
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        return list(range(int(seeds)))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty; pass a count or a list of seeds")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    if min(seeds) < 0:
        raise ValueError(f"seeds must be >= 0, got {seeds}")
    return seeds


def _resolve_default_step(problem, method):
    """Fill in the SGD baselines' default learning rate, so reports show the value."""
    if method.kind in ("sgd", "sgd_momentum") and method.step_size is None:
        return dataclasses.replace(method, step_size=default_sgd_step(problem))
    return method


def method_verdicts(traces, claims, constants, assumptions, confidence, problem_name):
    """Return the verdicts for every statement that a method claims."""
    verdicts = []
    if "S1" in claims:
        verdicts.append(monotone_verdict(traces, "S1", problem_name))
    if "S2" in claims:
        verdicts += anytime_verdicts(traces, constants, assumptions, confidence,
                                     problem_name)
    if "I1" in claims:
        verdicts.append(monotone_verdict(traces, "I1", problem_name))
    if "I2" in claims:
        verdicts.append(averaging_verdict(traces, problem_name))
    if "I3" in claims:
        verdicts += last_iterate_verdicts(traces, constants, assumptions, confidence,
                                          problem_name)
    return verdicts


def verify(problem, methods=DEFAULT_METHODS, steps=None, epochs=None, batch_size=1,
           seeds=DEFAULT_SEEDS, confidence=DEFAULT_CONFIDENCE, solution=None,
           progress=False, sampling="uniform"):
    """Solve ``problem``, run every method with every seed, and check the theory.

    Parameters
    ----------
    problem : Problem
    methods : sequence of Method or str
        Methods to run (names as in ``make_method``).
    steps, epochs : int or float, optional
        Run length; ``epochs`` counts passes of n samples. Default: 15 epochs.
    batch_size : int
    seeds : int or sequence of int
        Number of seeds (0..seeds-1) or the seeds themselves.
    confidence : float
        Family-wise confidence of each expectation verdict.
    solution : Solution, optional
        Oracle output to reuse; solved when omitted.
    progress : bool
        Show a tqdm bar over the runs.
    sampling : str
        ``"uniform"`` (default), ``"shuffle"`` or ``"cyclic"``; the expectation
        statements are ``not applicable`` under the last two.

    Returns
    -------
    Verification
    """
    if not isinstance(problem, Problem):
        raise TypeError(
            f"problem must be a polyakcheck.Problem, got {type(problem).__name__}"
        )
    started = time.perf_counter()
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if batch_size > problem.n:
        logger.warning(
            "batch_size %d exceeds n = %d; batches are drawn with replacement, so "
            "each step averages %d draws of the %d samples", batch_size, problem.n,
            batch_size, problem.n,
        )
    steps = _resolve_steps(problem, steps, epochs, batch_size)
    seeds = _resolve_seeds(seeds)
    if sampling not in SAMPLINGS:
        raise ValueError(
            f"unknown sampling {sampling!r}; use one of {', '.join(SAMPLINGS)}"
        )
    if isinstance(methods, (str, Method)):
        methods = [methods]
    methods = [m if isinstance(m, Method) else make_method(m) for m in methods]
    methods = [_resolve_default_step(problem, m) for m in methods]
    if not methods:
        raise ValueError("methods is empty; pass at least one method")
    labels = [m.label for m in methods]
    if len(set(labels)) != len(labels):
        raise ValueError(f"method labels must be distinct, got {labels}")

    if solution is None:
        solution = solve(problem)
    constants = instance_constants(problem, solution, batch_size)
    grid = checkpoint_grid(steps)
    logger.info("%s: %d methods x %d seeds x %d steps", problem.name, len(methods),
                len(seeds), steps)

    traces = {}
    bar = tqdm(total=len(methods) * len(seeds), desc=problem.name, disable=not progress)
    # The compiled loops release the GIL, so a thread per core runs seeds in parallel
    # without copying the data. Each seed's run is independent, so the traces equal
    # those of a sequential loop.
    workers = max(1, min(len(seeds), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for method in methods:
            futures = [
                pool.submit(run, problem, solution, method, steps, batch_size, seed, grid,
                            sampling)
                for seed in seeds
            ]
            traces[method.label] = []
            for future in futures:
                traces[method.label].append(future.result())
                bar.update()
    bar.close()

    verdicts = []
    for method in methods:
        verdicts += method_verdicts(
            traces[method.label], method.claims, constants, problem.assumptions,
            confidence, problem.name,
        )
    exponent = theoretical_exponent(constants, problem.assumptions)
    rates = []
    for m in methods:
        rate = fit_rate(traces[m.label],
                        "gap_last" if m.kind.startswith("iam") else "gap_avg", exponent)
        if not m.claims:
            rate["note"] = (
                "no statement of the theory covers this method; the exponent is shown "
                "for comparison only"
            )
            rate["slower"] = False
        rates.append(rate)
    return Verification(
        problem={
            "name": problem.name, "loss": problem.loss, "n": problem.n,
            "d": problem.d, "reg": problem.reg, "assumptions": problem.assumptions,
        },
        solution={
            "f_star": float(solution.f_star),
            "x_star_norm": float(np.linalg.norm(solution.x_star)),
            "D": constants["D"]["value"],
            **solution.certificate(),
        },
        constants=constants,
        traces=traces,
        verdicts=verdicts,
        settings={
            "steps": steps, "batch_size": batch_size, "seeds": seeds,
            "confidence": confidence, "checkpoints": len(grid),
            "sampling": {
                "uniform": "uniform with replacement, independent across steps",
                "shuffle": "random reshuffling, a new permutation each epoch",
                "cyclic": "cyclic order 0, 1, ..., n-1",
            }[sampling],
            "methods": [m.describe() for m in methods],
        },
        seconds=time.perf_counter() - started,
        rates=rates,
    )
