"""The general claim API: check any bound on an expectation against many seeds.

A claim names the quantity it bounds and gives the bound as a Python callable
``bound(t, c)`` of the checkpoint steps ``t`` (ndarray of int, shape (K,)) and the
instance constants ``c`` (dict name -> float, see ``constants.instance_constants``),
returning the bound at each checkpoint, shape (K,). The built-in statements S2-S4 and
I4-I5 are claims written on this API.
"""

import numpy as np

from polyakcheck.checks.stats import decide, one_sided_limits
from polyakcheck.checks.verdict import INCONCLUSIVE, NOT_APPLICABLE, VIOLATED, Verdict

# Quantities a claim can bound, read off each trace (gap tolerances where they apply).
QUANTITIES = {
    "gap_avg": "E[f(xbar_t)] - f_star, xbar_t = (1/t) sum_{k<t} x_k",
    "gap_last": "E[f(x_t)] - f_star",
    "dist": "E||x_t - x_star||",
    "dist_sq": "E||x_t - x_star||^2",
}

DEFAULT_CONFIDENCE = 0.99


def quantity_samples(traces, quantity):
    """Stack ``quantity`` over seeds: values and rounding tolerance, shape (m, K) and (K,)."""
    if quantity not in QUANTITIES:
        raise ValueError(
            f"unknown quantity {quantity!r}; use one of {', '.join(QUANTITIES)}"
        )
    if quantity == "dist_sq":
        values = np.stack([tr.dist**2 for tr in traces])
    else:
        values = np.stack([getattr(tr, quantity) for tr in traces])
    if quantity.startswith("gap"):
        tol = np.max(np.stack([tr.gap_tol for tr in traces]), axis=0)
    else:
        tol = np.zeros(values.shape[1])
    return values, tol


def sampling_reason(traces):
    """Return why an expectation statement does not apply to these runs, or None.

    The expectation statements need each sample drawn independently of the past;
    under random reshuffling or cyclic order only S1, I1 and I2 are guaranteed.
    """
    kinds = {getattr(tr, "sampling", "uniform") for tr in traces}
    if kinds - {"uniform"}:
        return (
            f"the runs use {'/'.join(sorted(kinds))} sampling; bounds on expectations "
            "need samples drawn independently of the past (uniform with replacement)"
        )
    return None


def replay_command(problem_name, method_label, steps, batch_size, seeds,
                   sampling="uniform"):
    """Return the CLI command that reproduces the runs behind a verdict.

    ``seeds`` is the list of seeds to rerun: one seed replays a single path (enough
    for S1, I1 and I2), the full list replays an expectation verdict.
    """
    from polyakcheck.methods.spec import METHOD_NAMES

    seeds = [int(s) for s in seeds]
    python = (
        f"polyakcheck.run(problem, solution, method, steps={steps}, "
        f"batch_size={batch_size}, seed={seeds[0]}, sampling={sampling!r})"
    )
    if not problem_name or method_label not in METHOD_NAMES:
        return f"{python} (the method or problem was built in Python)"
    if seeds == list(range(len(seeds))) and len(seeds) > 1:
        seed_arg = f"--seeds {len(seeds)}"
    else:
        seed_arg = "--seed-list " + ",".join(str(s) for s in seeds)
    command = (
        f"polyakcheck verify --data {problem_name} --methods {method_label} "
        f"{seed_arg} --steps {steps} --batch-size {batch_size}"
    )
    if sampling != "uniform":
        command += f" --sampling {sampling}"
    return command


def decide_series(statement, title, method, t, values, tol, bound_lo, bound_hi,
                  seeds, confidence, alpha_each, context):
    """Turn per-checkpoint samples and bounds into a ``Verdict`` (shared by all claims).

    ``context`` is (problem name, method label, steps, batch size, sampling), used for
    the replay command of a violation.
    """
    mean, lower, upper = one_sided_limits(values, alpha_each)
    status, worst, margin = decide(lower, upper, tol, bound_lo, bound_hi)
    where = f"t={int(t[worst])}"
    if len(seeds) < 2:
        status, margin = INCONCLUSIVE, float("nan")
        message = (
            "one seed gives no confidence limit for a mean; run at least 2 seeds "
            "(50 by default)"
        )
    elif status == VIOLATED:
        message = (
            f"at {where} the lower {confidence:.0%} limit {lower[worst]:.6g} of the "
            f"mean over {len(seeds)} seeds exceeds the bound {bound_hi[worst]:.6g} "
            f"(tolerance {tol[worst]:.3g}); replay: "
            + replay_command(*context[:4], seeds, context[4])
        )
    else:
        message = (
            f"{status} at all {len(t)} checkpoints" if status == "holds" else
            f"upper limit {upper[worst]:.6g} above the bound {bound_lo[worst]:.6g} at "
            f"{where}, no confident violation"
        )
    return Verdict(
        statement=statement, title=title, method=method, status=status,
        margin=margin, where=where, measured=float(mean[worst]),
        bound=float(bound_hi[worst]), tolerance=float(tol[worst]),
        seeds=tuple(int(s) for s in seeds), confidence=confidence, message=message,
        series={
            "t": t.astype(float).tolist(), "mean": mean.tolist(),
            "lower": lower.tolist(), "upper": upper.tolist(),
            "bound": np.asarray(bound_hi, dtype=float).tolist(),
        },
        tightness=tightness(mean, bound_hi),
    )


def tightness(mean, bound):
    """Return max over checkpoints of mean / bound (NaN when no bound is positive)."""
    bound = np.asarray(bound, dtype=float)
    positive = bound > 0
    if not positive.any():
        return float("nan")
    return float(np.max(np.asarray(mean)[positive] / bound[positive]))


def check_claim(traces, quantity, bound, constants, statement, title,
                confidence=DEFAULT_CONFIDENCE, problem_name="", requires=None):
    """Check ``E[quantity](t) <= bound(t, constants)`` at every checkpoint.

    Parameters
    ----------
    traces : list of Trace
        Runs of one method with independent seeds and a shared checkpoint grid.
    quantity : str
        One of ``QUANTITIES``.
    bound : callable
        ``bound(t, c) -> ndarray`` with c the dict of constant values.
    constants : dict
        Either name -> float or the ``instance_constants`` form name -> {"value", "how"}.
    statement, title : str
        Id and one-line description for the report.
    confidence : float
        Family-wise confidence over the K checkpoints (Bonferroni).
    requires : str, optional
        When set, a reason the claim does not apply; the verdict is then
        ``not applicable`` with that reason.

    Returns
    -------
    Verdict
    """
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence!r}")
    if not traces:
        raise ValueError("traces is empty; run at least one seed")
    first = traces[0]
    seeds = [tr.seed for tr in traces]
    requires = requires or sampling_reason(traces)
    if requires:
        return Verdict(
            statement, title, first.label, NOT_APPLICABLE, float("nan"), "", float("nan"),
            float("nan"), 0.0, tuple(seeds), confidence, requires,
        )
    for tr in traces[1:]:
        if not np.array_equal(tr.t, first.t):
            raise ValueError("traces have different checkpoint grids; run them with one grid")
    c = {k: (v["value"] if isinstance(v, dict) else float(v)) for k, v in constants.items()}
    t = first.t
    values, tol = quantity_samples(traces, quantity)
    bound_values = np.asarray(bound(t, c), dtype=float)
    if bound_values.shape != t.shape:
        raise ValueError(
            f"bound returned shape {bound_values.shape}, expected {t.shape} (one value "
            "per checkpoint)"
        )
    alpha_each = (1.0 - confidence) / len(t)
    context = (problem_name, first.label, first.steps, first.batch_size, first.sampling)
    return decide_series(
        statement, title, first.label, t, values, tol, bound_values, bound_values,
        seeds, confidence, alpha_each, context,
    )
