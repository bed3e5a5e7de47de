"""``reproduce role-of-f-star``: IAM with the exact f_S(x*), with f* and with 0.

IAM's step needs f_S(x*), the batch loss at a minimizer. This experiment replaces it
with f* = f(x*) for every batch (``lower_bound="mean"``) and with 0
(``lower_bound=0.0``), on least-squares instances whose spread of f_i(x*) is set by a
parameter nu, and compares both with the exact values and with SGD with momentum at
the theoretical step 1/(4 L_max).

Instance (``make_instance``): A has i.i.d. N(0, 1/d) entries, x_true ~ N(0, I_d), and

    b = A x_true + nu * o,

with o a fixed vector orthogonal to the range of A, scaled to mean(o_i^2) = 1. Then
x* = x_true for every nu, f_i(x*) = nu^2 o_i^2 / 2 and f* = nu^2 / 2: nu = 0 is
interpolation (every f_i(x*) = 0), and nu > 0 spreads the f_i(x*) without moving x*.
Optional label noise adds sigma * xi with xi ~ N(0, I_n), which does move x*.
"""

import logging
import math

import numpy as np
from tqdm import tqdm

from polyakcheck.experiments import common
from polyakcheck.methods.spec import Method
from polyakcheck.oracle import solve
from polyakcheck.problems import Problem
from polyakcheck.run import checkpoint_grid, run

logger = logging.getLogger(__name__)

NAME = "role-of-f-star"
LAM = 9.0
MOMENTUM = 0.9
CHECKPOINTS = 30
# A final gap below this fraction of the initial gap counts as converged.
CONVERGED_FRACTION = 1e-10
# Ratio of final gaps within which two methods count as equally fast.
SPEED_FACTOR = 2.0
# A final gap more than this factor above the exact method's counts as a stall.
STALL_FACTOR = 10.0
# A run has reached its plateau at the first checkpoint within this factor of its
# final gap.
PLATEAU_FACTOR = 2.0
MODES = {
    "full": {
        "n": 512, "d": 32, "steps": 2000, "seeds": 5,
        "nus": (0.0, 0.1, 1.0, 10.0), "batch_sizes": (1, 4, 16, 64),
    },
    "quick": {
        "n": 128, "d": 8, "steps": 300, "seeds": 2,
        "nus": (0.0, 0.1, 1.0), "batch_sizes": (1, 64),
    },
}
# nu of the safeguard table; the closest nu of the mode is used.
SAFEGUARD_NU = 1.0

EXACT = "exact f_S(x*)"
MEAN = "f* for every batch"
ZERO = "0"
SGDM = "SGD-M, 1/(4 L_max)"


def make_instance(n, d, nu, seed, label_noise=0.0):
    """Build the least-squares instance with offsets of scale ``nu``.

    A, x_true, the offsets o and the noise xi depend only on (n, d, seed), so every
    nu and noise level shares them.

    Parameters
    ----------
    n, d : int
        Samples and dimension, with n > d so that o is not zero.
    nu : float
        Scale of the offsets, >= 0.
    seed : int
    label_noise : float
        Standard deviation sigma of the extra label noise (0 for none).

    Returns
    -------
    problem : Problem
    x_true : ndarray, shape (d,)
    """
    if n <= d:
        raise ValueError(f"make_instance needs n > d, got n={n}, d={d}")
    if not nu >= 0 or not label_noise >= 0:
        raise ValueError(
            f"nu and label_noise must be >= 0, got nu={nu}, label_noise={label_noise}"
        )
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d)) / math.sqrt(d)
    x_true = rng.standard_normal(d)
    raw = rng.standard_normal(n)
    noise = rng.standard_normal(n)
    # Remove the component of raw in range(A), so that A^T o = 0 and x* = x_true.
    offsets = raw - A @ np.linalg.lstsq(A, raw, rcond=None)[0]
    offsets /= math.sqrt(np.mean(offsets**2))
    b = A @ x_true + nu * offsets + label_noise * noise
    name = f"least squares, nu = {nu:g}"
    return Problem(name, "least_squares", A, b), x_true


def methods(problem):
    """Return (label, Method) of the four compared methods."""
    return [
        (EXACT, Method("iam_const", lam=LAM, label=EXACT)),
        (MEAN, Method("iam_const", lam=LAM, lower_bound="mean", label=MEAN)),
        (ZERO, Method("iam_const", lam=LAM, lower_bound=0.0, label=ZERO)),
        (SGDM, Method("sgd_momentum", momentum=MOMENTUM, label=SGDM)),
    ]


def safeguard_methods(problem, solution):
    """Return (label, Method) of the lower-bound safeguard variants of IAM."""
    z_step = (1.0 + LAM) / (4.0 * problem.L_max)
    return [
        ("exact f_S(x*) (reference)", Method("iam_const", lam=LAM)),
        ("0, no safeguard", Method("iam_const", lam=LAM, lower_bound=0.0)),
        (
            "0, max_step_size = (1 + lam)/(4 L_max)",
            Method("iam_const", lam=LAM, lower_bound=0.0, max_step_size=z_step),
        ),
        (
            "0, max_step_size = 8 (1 + lam)/(4 L_max)",
            Method("iam_const", lam=LAM, lower_bound=0.0, max_step_size=8 * z_step),
        ),
        (
            "0, weight_decay = 1e-3",
            Method("iam_const", lam=LAM, lower_bound=0.0, weight_decay=1e-3),
        ),
        (
            "per-sample lower bound 0.5 f_i(x*)",
            Method("iam_const", lam=LAM,
                   lower_bound=0.5 * np.asarray(solution.f_i_star)),
        ),
        (
            "f*, max_step_size = (1 + lam)/(4 L_max)",
            Method("iam_const", lam=LAM, lower_bound="mean", max_step_size=z_step),
        ),
    ]


def run_experiment(quick=False, seed=0, out_dir="reports", progress=False):
    """Run the role-of-f-star experiment and write its HTML and JSON report.

    Parameters
    ----------
    quick : bool
        Run a small instance (n = 128, d = 8, 300 steps, nu in {0, 0.1, 1}, batch
        sizes {1, 64}, 2 seeds) instead of the full one.
    seed : int
        Seed of the instance and first seed of the sample sequences.
    out_dir : str or os.PathLike
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``experiment``, ``claims``, ``html_path``, ``json_path`` and ``seconds``.
    """
    stopwatch = common.Stopwatch()
    mode = MODES["quick" if quick else "full"]
    seeds = common.run_seeds_for(seed, mode["seeds"])
    grid = checkpoint_grid(mode["steps"], CHECKPOINTS)
    instances = {}
    settings_results = []
    run_seconds = 0.0
    oracle_seconds = 0.0
    jobs = [(nu, b) for nu in mode["nus"] for b in mode["batch_sizes"]]
    for nu, batch_size in tqdm(jobs, desc=NAME, disable=not progress):
        if nu not in instances:
            instances[nu] = _instance(mode, nu, seed)
            oracle_seconds += instances[nu]["solution"].solve_seconds
        instance = instances[nu]
        record = {"nu": nu, "batch_size": batch_size, "methods": {}}
        for label, method in methods(instance["problem"]):
            traces = _run(instance, method, mode["steps"], batch_size, seeds, grid)
            run_seconds += sum(trace.seconds for trace in traces)
            record["methods"][label] = _summarize(traces)
        settings_results.append(record)

    safeguards = _safeguards(instances, mode, seeds, grid)
    run_seconds += safeguards.pop("seconds")
    claims = _claims(settings_results, instances, mode)
    results = {
        "instances": {str(nu): inst["info"] for nu, inst in instances.items()},
        "settings": settings_results,
        "safeguards": safeguards,
    }
    figures = _figures(settings_results, mode)
    document = common.build_document(
        NAME, quick, seed, _description(mode), _settings(mode, seeds), claims, results,
        _tables(settings_results, safeguards, mode),
        {"total": stopwatch.seconds, "compiled_loops": run_seconds,
         "oracle": oracle_seconds},
        common.experiment_provenance(seeds),
    )
    html_path, json_path = common.write_experiment(document, figures, out_dir)
    return {
        "experiment": NAME,
        "claims": claims,
        "html_path": str(html_path),
        "json_path": str(json_path),
        "seconds": stopwatch.seconds,
    }


def _instance(mode, nu, seed):
    problem, x_true = make_instance(mode["n"], mode["d"], nu, seed)
    solution = solve(problem)
    f_i_star = np.asarray(solution.f_i_star)
    initial_gap = float(problem.objective(problem.x0)[0] - solution.f_star)
    info = {
        "nu": nu,
        "f_star": solution.f_star,
        "f_i_star_min": float(f_i_star.min()),
        "f_i_star_max": float(f_i_star.max()),
        "f_i_star_std": float(f_i_star.std()),
        "distance_x_star_to_x_true": float(np.linalg.norm(solution.x_star - x_true)),
        "initial_gap": initial_gap,
        "L_max": problem.L_max,
        "certificate": common.solution_certificate(solution),
    }
    logger.info("nu = %g: f* = %.4g, L_max = %.4g", nu, solution.f_star, problem.L_max)
    return {"problem": problem, "solution": solution, "info": info}


def _run(instance, method, steps, batch_size, seeds, grid):
    with np.errstate(over="ignore", invalid="ignore"):
        return [
            run(instance["problem"], instance["solution"], method, steps, batch_size,
                s, grid)
            for s in seeds
        ]


def _summarize(traces):
    gaps = np.array([trace.gap_last for trace in traces])
    summary = common.seed_summary(gaps)
    final_mean = float(summary["mean"][-1])
    return {
        "t": traces[0].t,
        **summary,
        "final_per_seed": gaps[:, -1],
        "final_mean": final_mean,
        "final_rounding_bound": float(max(trace.gap_tol[-1] for trace in traces)),
        "plateau_step": plateau_step(traces[0].t, summary["mean"]),
    }


def floored_ratio(entry, reference):
    """Return the ratio of two final gaps, each raised to its float64 rounding bound.

    Two runs that both reach the rounding level of the gap evaluation then compare as
    about equal, instead of as a ratio of rounding noise.
    """
    value = max(entry["final_mean"], entry["final_rounding_bound"])
    base = max(reference["final_mean"], reference["final_rounding_bound"])
    return common.ratio(value, base)


def plateau_step(t, mean_gap):
    """Return the first checkpoint whose gap is within ``PLATEAU_FACTOR`` of the final.

    A method that still improves at the end has its plateau at the last checkpoint;
    one that stalls early has it early. Returns None for a non-finite final gap.
    """
    final = float(mean_gap[-1])
    if not math.isfinite(final):
        return None
    within = np.flatnonzero(np.asarray(mean_gap) <= PLATEAU_FACTOR * abs(final))
    return int(t[within[0]]) if within.size else int(t[-1])


def _safeguards(instances, mode, seeds, grid):
    """Run the safeguard variants at the nu closest to SAFEGUARD_NU."""
    nu = min(instances, key=lambda v: (abs(v - SAFEGUARD_NU), v))
    instance = instances[nu]
    batch_sizes = sorted({min(mode["batch_sizes"]), max(mode["batch_sizes"])})
    rows = []
    seconds = 0.0
    for label, method in safeguard_methods(instance["problem"], instance["solution"]):
        row = {"variant": label, "method": method.describe(), "final_mean": {}}
        for batch_size in batch_sizes:
            traces = _run(instance, method, mode["steps"], batch_size, seeds, grid)
            seconds += sum(trace.seconds for trace in traces)
            row["final_mean"][str(batch_size)] = float(
                np.mean([trace.gap_last[-1] for trace in traces])
            )
        rows.append(row)
    return {"nu": nu, "batch_sizes": batch_sizes, "rows": rows, "seconds": seconds}


# ----------------------------------------------------------------------- claims


def _lookup(settings_results):
    return {(r["nu"], r["batch_size"]): r["methods"] for r in settings_results}


def _claims(settings_results, instances, mode):
    table = _lookup(settings_results)
    nus = mode["nus"]
    positive = [nu for nu in nus if nu > 0]
    batches = mode["batch_sizes"]
    claims = [_interpolation_claim(table, instances, batches)]

    ratios = {
        f"nu={nu:g}, b={b}": floored_ratio(table[nu, b][EXACT], table[nu, b][SGDM])
        for nu in nus for b in batches
    }
    claims.append(common.make_claim(
        "The exact f_S(x*) converges as fast as SGD with momentum at 1/(4 L_max)",
        {"worst ratio exact / SGD-M": max(ratios.values()),
         "settings within factor": sum(r <= SPEED_FACTOR for r in ratios.values()),
         "settings": len(ratios)},
        f"final gap of the last iterate, mean over seeds, raised to its float64 "
        f"rounding bound, at every (nu, batch); matched when exact / SGD-M <= "
        f"{SPEED_FACTOR:g} in every setting",
        all(r <= SPEED_FACTOR for r in ratios.values()),
    ))

    stall = {
        (nu, b): floored_ratio(table[nu, b][MEAN], table[nu, b][EXACT])
        for nu in positive for b in batches
    }
    claims.append(common.make_claim(
        "Without interpolation (nu > 0), f* in place of f_S(x*) stalls",
        {"min ratio f* / exact": min(stall.values(), default=math.nan),
         "settings stalled": sum(r > STALL_FACTOR for r in stall.values()),
         "settings": len(stall)},
        f"matched when the final gap with f* exceeds the exact method's by more than "
        f"a factor {STALL_FACTOR:g} at every nu > 0 and batch size",
        all(r > STALL_FACTOR for r in stall.values()) if stall else None,
    ))
    claims.append(_increasing_claim(table, positive, batches))
    claims.append(_zero_claim(table, positive, batches))
    claims.append(_batch_claim(table, positive, batches))
    return claims


def _interpolation_claim(table, instances, batches):
    if 0.0 not in instances:
        return common.make_claim(
            "With interpolation (nu = 0), exact, f* and 0 all converge", {},
            "needs nu = 0 in the run", None,
        )
    initial = instances[0.0]["info"]["initial_gap"]
    worst = max(
        table[0.0, b][label]["final_mean"]
        for b in batches for label in (EXACT, MEAN, ZERO)
    )
    return common.make_claim(
        "With interpolation (nu = 0, every f_i(x*) = 0), exact, f* and 0 all converge",
        {"worst final gap": worst, "initial gap": initial},
        f"matched when every final gap at nu = 0 is below {CONVERGED_FRACTION:g} "
        f"times the initial gap",
        worst <= CONVERGED_FRACTION * initial,
    )


def _increasing_claim(table, positive, batches):
    text = "f* stalls earlier (at a higher gap) for larger nu"
    rule = (
        "matched when, at every batch size, the final gap with f* increases strictly "
        "with nu over nu > 0; the plateau step (first checkpoint within a factor "
        f"{PLATEAU_FACTOR:g} of the final gap) is shown for information"
    )
    if len(positive) < 2:
        return common.make_claim(text, {}, rule + " (needs two values of nu > 0)", None)
    measured = {}
    matched = True
    for b in batches:
        finals = [table[nu, b][MEAN]["final_mean"] for nu in positive]
        plateaus = [table[nu, b][MEAN]["plateau_step"] for nu in positive]
        measured[f"b={b} final gaps"] = ", ".join(
            common.format_value(v, 3) for v in finals
        )
        measured[f"b={b} plateau steps"] = ", ".join(str(p) for p in plateaus)
        matched &= all(lo < hi for lo, hi in zip(finals, finals[1:]))
    measured["nu"] = ", ".join(f"{nu:g}" for nu in positive)
    return common.make_claim(text, measured, rule, matched)


def _zero_claim(table, positive, batches):
    ratios = {
        (nu, b): common.ratio(
            table[nu, b][ZERO]["final_mean"], table[nu, b][MEAN]["final_mean"]
        )
        for nu in positive for b in batches
    }
    return common.make_claim(
        "0 in place of f_S(x*) stalls earlier still (higher final gap than f*)",
        {"min ratio 0 / f*": min(ratios.values(), default=math.nan),
         "settings with 0 worse": sum(r > 1 for r in ratios.values()),
         "settings": len(ratios)},
        "matched when the final gap with 0 exceeds the one with f* at every nu > 0 "
        "and batch size",
        all(r > 1 for r in ratios.values()) if ratios else None,
    )


def _batch_claim(table, positive, batches):
    text = "Larger batches widen the gap between 0 and f*"
    small, large = min(batches), max(batches)
    rule = (
        f"ratio of final gaps 0 / f*; matched when it is larger at batch {large} "
        f"than at batch {small} for every nu > 0"
    )
    if small == large or not positive:
        return common.make_claim(text, {}, rule + " (needs two batch sizes)", None)
    measured = {}
    matched = True
    for nu in positive:
        per_batch = [
            common.ratio(
                table[nu, b][ZERO]["final_mean"], table[nu, b][MEAN]["final_mean"]
            )
            for b in batches
        ]
        measured[f"nu={nu:g} ratio by batch"] = ", ".join(
            common.format_value(r, 3) for r in per_batch
        )
        matched &= per_batch[-1] > per_batch[0]
    measured["batch sizes"] = ", ".join(str(b) for b in batches)
    return common.make_claim(text, measured, rule, matched)


# ------------------------------------------------------------ figures and tables


def _figures(settings_results, mode):
    table = _lookup(settings_results)
    nus, batches = mode["nus"], mode["batch_sizes"]
    labels = (EXACT, MEAN, ZERO, SGDM)
    fig, axes = common.panels(len(nus) * len(batches), columns=len(batches),
                              width=3.9, height=3.0)
    for index, (nu, b) in enumerate((nu, b) for nu in nus for b in batches):
        ax = axes[index]
        ax.set_xscale("log")
        ax.set_yscale("log")
        for color, label in zip(common.PALETTE, labels):
            entry = table[nu, b][label]
            common.plot_band(ax, entry["t"], entry, label, color)
        common.finish_axes(ax, f"nu = {nu:g}, batch {b}", "t (steps)", "f(xₜ) − f*",
                           legend=index == 0)
    curves = common.render_figure(
        fig, "role-curves", "Suboptimality of the last iterate",
        f"IAM (lam = {LAM:g}) with the exact f_S(x*), with f* for every batch and with "
        f"0, against SGD with momentum {MOMENTUM} at 1/(4 L_max). Rows: nu; columns: "
        "batch size. Line: mean over seeds; band: min to max over seeds. Values at or "
        "below 0 leave a gap.",
    )
    positive = [nu for nu in nus if nu > 0]
    fig, axes = common.panels(max(len(positive), 1), columns=len(positive) or 1,
                              width=4.2, height=3.4)
    for ax, nu in zip(axes, positive):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        for color, label in zip(common.PALETTE, labels):
            finals = [table[nu, b][label]["final_mean"] for b in batches]
            ax.plot(batches, common.positive_or_nan(finals), marker="o", color=color,
                    label=label)
        common.finish_axes(ax, f"nu = {nu:g}", "batch size", "final f(xₜ) − f*",
                           legend=nu == positive[0])
    finals = common.render_figure(
        fig, "role-finals", "Final suboptimality against the batch size",
        f"Mean over seeds of the last-iterate gap after {mode['steps']} steps. The "
        "distance between the '0' and the 'f*' lines is the effect the batch size "
        "should widen.",
    )
    return [curves, finals]


def _tables(settings_results, safeguards, mode):
    rows = []
    for record in settings_results:
        entries = record["methods"]
        rows.append(
            [record["nu"], record["batch_size"]]
            + [entries[label]["final_mean"] for label in (EXACT, MEAN, ZERO, SGDM)]
            + [entries[MEAN]["plateau_step"], entries[ZERO]["plateau_step"]]
        )
    main = common.make_table(
        f"Final last-iterate gap after {mode['steps']} steps (mean over seeds)",
        ["nu", "batch", EXACT, MEAN, ZERO, SGDM, "plateau step f*", "plateau step 0"],
        rows,
        f"Plateau step: first checkpoint whose seed-mean gap is within a factor "
        f"{PLATEAU_FACTOR:g} of the final gap.",
    )
    batch_sizes = safeguards["batch_sizes"]
    safeguard_rows = [
        [row["variant"]] + [row["final_mean"][str(b)] for b in batch_sizes]
        for row in safeguards["rows"]
    ]
    guard = common.make_table(
        f"Lower-bound safeguards at nu = {safeguards['nu']:g} (IAM, lam = {LAM:g})",
        ["lower bound and safeguard"] + [f"final gap, batch {b}" for b in batch_sizes],
        safeguard_rows,
        "(1 + lam)/(4 L_max) is the step on the anchor z that matches SGD with "
        "momentum at learning rate 1/(4 L_max). weight_decay shrinks z toward 0 each "
        "step. The per-sample lower bound is half the true f_i(x*).",
    )
    return [main, guard]


def _settings(mode, seeds):
    return {
        "n": mode["n"],
        "d": mode["d"],
        "steps": mode["steps"],
        "nus": list(mode["nus"]),
        "batch_sizes": list(mode["batch_sizes"]),
        "seeds": seeds,
        "label_noise": 0.0,
        "iam_lam": LAM,
        "sgd_momentum": MOMENTUM,
        "sgd_step": "1/(4 L_max) of each instance",
        "checkpoints": CHECKPOINTS,
    }


def _description(mode):
    return [
        f"Least squares with n = {mode['n']} samples in d = {mode['d']} dimensions. "
        "A has i.i.d. N(0, 1/d) entries and x_true ~ N(0, I). The targets are "
        "b = A x_true + nu o, where o is a fixed Gaussian vector projected onto the "
        "orthogonal complement of range(A) and scaled to mean(o_i^2) = 1. So x* = "
        "x_true for every nu, f_i(x*) = nu^2 o_i^2 / 2 and f* = nu^2 / 2. nu = 0 is "
        "interpolation (every f_i(x*) = 0); larger nu spreads the f_i(x*). No extra "
        "label noise is added (label_noise = 0). A, x_true and o come from the seed, "
        "so every nu shares them, and polyakcheck.solve certifies x* and f_i(x*).",
        f"Methods: IAM with constant lam = {LAM:g} and, in place of f_S(x*), (1) the "
        "exact batch mean of f_i(x*), (2) f* for every batch (lower_bound='mean'), "
        "(3) 0 (lower_bound=0.0); and SGD with heavy-ball momentum "
        f"{MOMENTUM} at the theoretical learning rate 1/(4 L_max) as the reference. "
        f"Each runs {mode['steps']} steps from x_0 = 0 with batches drawn uniformly "
        "with replacement; a seed gives every method the same batches.",
        "Expected shape: the exact value converges as fast as SGD with momentum; f* "
        "stalls, earlier for larger nu; 0 stalls earlier still; and larger batches "
        "widen the gap between 0 and f*, because the batch mean of f_i(x*) "
        "concentrates around f* while 0 stays f* below it.",
    ]
