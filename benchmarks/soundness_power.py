"""Measure the soundness and the power of the polyakcheck checkers on fuzzed instances.

Soundness: every statement is true on a convex instance, so a "violated" verdict for an
unmutated method is a false violation. The script draws convex instances with a seeded
numpy generator (``polyakcheck.strategies.random_problem``), runs SPS*, IAM (lam_t = t)
and IAM with a constant lam on each, and counts the verdicts per statement.

Power: deliberately wrong methods and bounds, each checked against the claims of the
method it imitates. A mutant counts as detected on an instance when some checker
reports "violated". For the instances where a mutant goes undetected the script
records why, and checks the explanation numerically.

Usage::

    python benchmarks/soundness_power.py --out soundness_power.json
    python benchmarks/soundness_power.py --quick --out quick.json

The full run draws 1,000 instances (3,000 instance-method pairs), checks the mutants
on the first 400, and uses 2 worker processes by default.
"""

import argparse
import concurrent.futures
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from polyakcheck import Method, OracleError, check_claim, run_seeds, solve
from polyakcheck.checks.anytime import s2_bound
from polyakcheck.checks.claims import DEFAULT_CONFIDENCE
from polyakcheck.constants import instance_constants
from polyakcheck.methods.spec import CLAIMS
from polyakcheck.strategies import (
    MAX_BATCH_SIZE, MAX_LAM, build_problem, random_problem_draw,
)
from polyakcheck.verify import method_verdicts

FULL = {"instances": 1000, "power_instances": 400, "steps": 2000, "seeds": 20}
QUICK = {"instances": 24, "power_instances": 12, "steps": 200, "seeds": 10}

# Mutants of the Polyak target f_i(x_star), the step and the positive part, as
# ``Method.mutation`` dicts. A scale of mean_i f_i(x_star) is filled in per instance.
TARGET_MUTANTS = {
    "f_i(x*) - 1": lambda mean_star: {"f_star_shift": -1.0},
    "f_i(x*) - 0.1 mean f_i(x*)": lambda mean_star: {"f_star_shift": -0.1 * mean_star},
    "f_i(x*) + noise, std 0.5 mean f_i(x*)": lambda mean_star: {
        "f_star_noise": 0.5 * mean_star
    },
    "step x 2": lambda mean_star: {"step_scale": 2.0},
    "no positive part": lambda mean_star: {"positive_part": False},
}
MUTATED_KINDS = ("sps_star", "iam")
LAM_CONSTANT_MUTANT = "IAM with constant lam = 9 claiming I2"
# A target mutation smaller than this fraction of f(x0) - f_star counts as rounding level.
ROUNDING_LEVEL = 1e-12
NONCONVEX_MUTANT = "non-convex f_i (negative ridge), f convex"
NOT_COVERED = {}


def draw_instance(base_seed, index):
    """Return (ProblemDraw, batch size, iam_const lam, first run seed) for one index."""
    rng = np.random.default_rng([base_seed, index])
    draw = random_problem_draw(rng)
    n = draw.features.shape[0]
    batch_size = int(rng.integers(1, min(n, MAX_BATCH_SIZE) + 1))
    lam = float(rng.uniform(0.0, MAX_LAM))
    first_seed = int(rng.integers(0, 2**31))
    return draw, batch_size, lam, first_seed


def describe_instance(draw, problem, batch_size, solution, constants):
    """Return the features of an instance that the report groups by."""
    return {
        "family": draw.family,
        "interpolate": draw.interpolate,
        "n": problem.n,
        "d": problem.d,
        "batch_size": batch_size,
        "reg": problem.reg,
        "condition": draw.condition,
        "offset_scale": draw.offset_scale,
        "D": constants["D"]["value"],
        "mean_f_i_star": float(np.mean(solution.f_i_star)),
        "gap_at_x0": float(problem.objective(problem.x0)[0] - solution.f_star),
    }


def summarize_verdicts(verdicts):
    """Return statuses, margins and tightness (max mean / bound) per statement."""
    statuses, margins, tightness = {}, {}, {}
    for verdict in verdicts:
        statuses[verdict.statement] = verdict.status
        margins[verdict.statement] = _finite(verdict.margin)
        series = verdict.series
        if series and series.get("bound"):
            bound = np.asarray(series["bound"], dtype=float)
            mean = np.asarray(series["mean"], dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(bound > 0, mean / bound, np.nan)
            tightness[verdict.statement] = _finite(np.nanmax(ratio)) if np.any(
                np.isfinite(ratio)) else None
    return statuses, margins, tightness


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None


def traces_identical(first, second):
    """True when two lists of traces have bit-identical gaps and distances."""
    return all(
        np.array_equal(a.gap_last, b.gap_last) and np.array_equal(a.dist, b.dist)
        for a, b in zip(first, second)
    )


def divided_bound(statement):
    """Return the bound of S2 (SPS*) or I4 (IAM) divided by 10, as a claim callable."""
    if statement == "S2":
        def bound(t, c):
            pairs = [s2_bound(t, c["A_" + p], c["B_" + p], c["D"])
                     for p in ("S3", "S4a", "S4b")]
            return np.min(pairs, axis=0) / 10.0
    else:
        def bound(t, c):
            return c["D"] * c["G_D"] / np.sqrt(t + 1.0) / 10.0
    return bound


def check_instance(task):
    """Run the soundness pairs, and the mutants when ``power`` is set, for one instance."""
    base_seed, index, steps, seed_count, power = task
    logging.getLogger("polyakcheck").setLevel(logging.ERROR)
    draw, batch_size, lam, first_seed = draw_instance(base_seed, index)
    problem = build_problem(draw, name=f"fuzz-{index}")
    try:
        solution = solve(problem)
    except OracleError as exc:
        return {"index": index, "rejected": str(exc)[:200]}
    constants = instance_constants(problem, solution, batch_size)
    instance = describe_instance(draw, problem, batch_size, solution, constants)
    seeds = range(first_seed, first_seed + seed_count)
    started = time.perf_counter()

    def verdicts_of(method, claims):
        traces = run_seeds(problem, solution, method, steps, batch_size, seeds)
        verdicts = method_verdicts(traces, claims, constants, problem.assumptions,
                                   DEFAULT_CONFIDENCE, problem.name)
        return traces, verdicts

    pairs, base_traces = [], {}
    for method in (Method("sps_star"), Method("iam", lam="t"),
                   Method("iam_const", lam=lam)):
        traces, verdicts = verdicts_of(method, method.claims)
        base_traces[method.kind] = traces
        statuses, margins, tightness = summarize_verdicts(verdicts)
        pairs.append({
            "method": method.kind, "lam": method.lam, "statuses": statuses,
            "margins": margins, "tightness": tightness,
            "worst_monotone_ratio": max(
                tr.monotone["worst_ratio"] for tr in traces),
        })
    result = {"index": index, "instance": instance, "pairs": pairs}
    if power:
        result["mutants"] = mutant_results(
            problem, solution, constants, batch_size, steps, seeds, base_traces,
            verdicts_of,
        )
    result["seconds"] = time.perf_counter() - started
    return result


def mutant_results(problem, solution, constants, batch_size, steps, seeds, base_traces,
                   verdicts_of):
    """Check every mutant on one instance; return one record per (mutant, method)."""
    records = []
    mean_star = float(np.mean(solution.f_i_star))
    for name, make_mutation in TARGET_MUTANTS.items():
        mutation = make_mutation(mean_star)
        for kind in MUTATED_KINDS:
            lam = "t" if kind == "iam" else None
            method = Method(kind, lam=lam, label=f"{kind}-mutant", mutation=mutation)
            traces, verdicts = verdicts_of(method, method.claims)
            records.append(mutant_record(name, kind, mutation, verdicts, traces,
                                         base_traces[kind]))
    # Wrong averaging weights: the update with a constant lam = 9, or with
    # lam_t = t + 2, does not make x_t the mean of z_0..z_t, so I2 must fail for it.
    method = Method("iam", lam="t", label="iam-lam-9", mutation={"lam_constant": 9.0})
    traces, verdicts = verdicts_of(method, CLAIMS["iam"])
    records.append(mutant_record(LAM_CONSTANT_MUTANT, "iam", {"lam_constant": 9.0},
                                 verdicts, traces, None))
    method = Method("iam", lam="t", label="iam-lam-shift", mutation={"lam_shift": 2.0})
    traces, verdicts = verdicts_of(method, CLAIMS["iam"])
    records.append(mutant_record("IAM with lam_t = t + 2 claiming I2", "iam",
                                 {"lam_shift": 2.0}, verdicts, traces, None))
    for kind, statement in (("sps_star", "S2"), ("iam", "I4")):
        verdict = check_claim(base_traces[kind], "gap_avg" if kind == "sps_star"
                              else "gap_last", divided_bound(statement), constants,
                              f"{statement}/10", f"{statement} divided by 10",
                              problem_name=problem.name)
        records.append(mutant_record(f"{statement} bound / 10", kind, {}, [verdict],
                                     base_traces[kind], None))
    records += nonconvex_records(problem, batch_size, steps, seeds)
    return records


def nonconvex_variant(problem):
    """Return a least-squares problem whose every f_i is non-convex, and its solution.

    f_i(x) = (a_i^T x - b_i)^2 / 2 + reg ||x||^2 / 2 with reg = -lambda_min(A^T A / n) / 2
    has the negative curvature reg in every direction orthogonal to a_i (d >= 2), while
    f stays strongly convex, so x_star is the unique solution of a linear system. The
    theory's convexity assumption on each f_i fails, which S1 and I1 use. Returns None
    when the instance is not least squares, has d < 2, or A^T A / n is near singular.
    ``Problem`` rejects a negative reg, so the mutant sets it after construction.
    """
    from polyakcheck import Problem, Solution

    if problem.loss != "least_squares" or problem.d < 2 or problem.sparse:
        return None
    H = problem.A.T @ problem.A / problem.n
    lam_min = float(np.linalg.eigvalsh(H)[0])
    if lam_min <= 1e-3:
        return None
    mutant = Problem(problem.name + "-nonconvex", "least_squares", problem.A, problem.b,
                     x0=problem.x0)
    reg = -0.5 * lam_min
    object.__setattr__(mutant, "reg", reg)
    x_star = np.linalg.solve(H + reg * np.eye(problem.d), problem.A.T @ problem.b / problem.n)
    f_i_star = mutant.values(x_star)[0]
    grad_norm = float(np.linalg.norm(mutant.gradient(x_star)))
    return mutant, Solution(x_star, float(f_i_star.mean()), f_i_star, grad_norm, 0.0,
                            "numpy", "closed form")


def nonconvex_records(problem, batch_size, steps, seeds):
    """Check S1 (SPS*) and I1 (IAM) on the non-convex variant; [] when it has none."""
    from polyakcheck.checks.monotone import monotone_verdict

    variant = nonconvex_variant(problem)
    if variant is None:
        return []
    mutant, solution = variant
    records = []
    for kind, statement in (("sps_star", "S1"), ("iam", "I1")):
        method = Method(kind, lam="t" if kind == "iam" else None)
        traces = run_seeds(mutant, solution, method, steps, batch_size, seeds)
        verdict = monotone_verdict(traces, statement, mutant.name)
        records.append(mutant_record(NONCONVEX_MUTANT, kind, {"reg": mutant.reg},
                                     [verdict], traces, None))
    return records


def mutant_record(name, kind, mutation, verdicts, traces, base):
    statuses, margins, tightness = summarize_verdicts(verdicts)
    violated = sorted(s for s, status in statuses.items() if status == "violated")
    return {
        "mutant": name,
        "method": kind,
        "mutation": {k: (float(v) if not isinstance(v, bool) else v)
                     for k, v in mutation.items()},
        "detected": bool(violated),
        "violated": violated,
        "tightness": tightness,
        "identical_to_unmutated": None if base is None else traces_identical(traces, base),
        "monotone_violations": int(sum(tr.monotone["violations"] for tr in traces)),
        "max_average_error": float(max(np.max(tr.avg_err) for tr in traces)),
    }


def double_step_identity(count, base_seed):
    """Measure how far step x 2 on interpolating least squares is from a projection.

    For f_S(x) = mean_i (a_i^T x - b_i)^2 / 2 with b = A x_star, <g, x - x_star> = 2 s
    with s = f_S(x) - f_S(x_star), so the doubled Polyak step gamma = 2 s / ||g||^2 gives
    ||x+ - x*||^2 = ||x - x*||^2 - 4 s^2 / ||g||^2, which satisfies S1 with room to spare.
    Returns the largest relative deviation from that identity over random steps.
    """
    rng = np.random.default_rng([base_seed, 10**6])
    worst = 0.0
    for _ in range(count):
        n, d = int(rng.integers(1, 61)), int(rng.integers(1, 9))
        batch = int(rng.integers(1, 9))
        A = rng.uniform(-1, 1, (n, d))
        x_star = rng.uniform(-1, 1, d)
        b = A @ x_star
        x = rng.uniform(-2, 2, d)
        rows = rng.integers(0, n, batch)
        residuals = A[rows] @ x - b[rows]
        s = 0.5 * np.mean(residuals**2)
        g = A[rows].T @ residuals / batch
        gg = float(g @ g)
        if gg == 0.0:
            continue
        x_next = x - 2.0 * s / gg * g
        before = float(np.sum((x - x_star) ** 2))
        after = float(np.sum((x_next - x_star) ** 2))
        predicted = before - 4.0 * s * s / gg
        worst = max(worst, abs(after - predicted) / max(before, 1e-300))
    return worst


def soundness_summary(results, steps, seed_count):
    accepted = [r for r in results if "pairs" in r]
    rejected = [r for r in results if "rejected" in r]
    counts = defaultdict(Counter)
    false_violations = []
    closest = {}
    for result in accepted:
        for pair in result["pairs"]:
            for statement, status in pair["statuses"].items():
                counts[statement][status] += 1
                if status == "violated":
                    false_violations.append({"index": result["index"],
                                             "method": pair["method"],
                                             "statement": statement})
                ratio = pair["tightness"].get(statement)
                if ratio is not None and ratio > closest.get(statement, -math.inf):
                    closest[statement] = ratio
    return {
        "instances": len(accepted),
        "rejected_by_oracle": len(rejected),
        "pairs": sum(len(r["pairs"]) for r in accepted),
        "steps": steps,
        "seeds_per_pair": seed_count,
        "false_violations": len(false_violations),
        "false_violation_list": false_violations,
        "status_counts": {s: dict(c) for s, c in sorted(counts.items())},
        "max_tightness": closest,
    }


def group_key(instance):
    """Return the instance group that the power table breaks detections down by.

    The group is the loss family, and for the regression families also whether the
    draw interpolates (every f_i minimized at x*, so f_i(x*) is 0 up to rounding).
    """
    family = instance["family"].replace("_", " ")
    if instance["family"] in ("least_squares", "absolute", "huber"):
        return f"{family}, {'interpolating' if instance['interpolate'] else 'offsets'}"
    return family


def relative_mutation(record, instance):
    """Return the size of a target mutation relative to the initial gap, or None.

    A shift or noise far below the gap f(x0) - f_star is at the rounding level of the
    targets and cannot change a step by more than rounding.
    """
    size = max((abs(v) for k, v in record["mutation"].items()
                if k in ("f_star_shift", "f_star_noise")), default=None)
    if size is None:
        return None
    return size / max(abs(instance["gap_at_x0"]), np.finfo(float).tiny)


def power_summary(results):
    """Return one power-table row per (mutant, method) with its undetected instances."""
    rows = {}
    for result in results:
        instance = result.get("instance")
        for record in result.get("mutants", []):
            key = (record["mutant"], record["method"])
            row = rows.setdefault(key, {
                "mutant": record["mutant"], "method": record["method"],
                "instances": 0, "detected": 0, "by_group": defaultdict(lambda: [0, 0]),
                "detected_by": Counter(), "undetected": [],
            })
            group = group_key(instance)
            row["instances"] += 1
            row["by_group"][group][1] += 1
            if record["detected"]:
                row["detected"] += 1
                row["by_group"][group][0] += 1
                row["detected_by"].update(record["violated"])
                continue
            ratios = [v for v in record["tightness"].values() if v is not None]
            row["undetected"].append({
                "index": result["index"], "group": group, "n": instance["n"],
                "batch_size": instance["batch_size"],
                "identical_runs": record["identical_to_unmutated"],
                "relative_mutation": relative_mutation(record, instance),
                "max_average_error": record["max_average_error"],
                "tightness": max(ratios) if ratios else None,
            })
    table = []
    for row in rows.values():
        undetected = row["undetected"]
        tight = [u["tightness"] for u in undetected if u["tightness"] is not None]
        table.append({
            **row,
            "fraction_detected": row["detected"] / row["instances"],
            "by_group": {g: {"detected": v[0], "instances": v[1]}
                         for g, v in sorted(row["by_group"].items())},
            "detected_by": dict(row["detected_by"].most_common()),
            "undetected_identical_runs": sum(bool(u["identical_runs"]) for u in undetected),
            "undetected_rounding_level_mutation": sum(
                u["relative_mutation"] is not None
                and u["relative_mutation"] < ROUNDING_LEVEL for u in undetected),
            "undetected_single_sample": sum(u["n"] == 1 for u in undetected),
            "undetected_median_tightness": float(np.median(tight)) if tight else None,
            "undetected_max_average_error": max(
                (u["max_average_error"] for u in undetected), default=0.0),
        })
    return table


def explanations(table, identity_error):
    """Return, per mutant that some instances do not expose, the reasons and evidence."""
    notes = {}
    for row in table:
        undetected = row["instances"] - row["detected"]
        if undetected == 0:
            continue
        groups = ", ".join(
            f"{g} {v['detected']}/{v['instances']}" for g, v in row["by_group"].items()
        )
        parts = [f"{undetected} of {row['instances']} undetected. Detected per group: "
                 f"{groups}."]
        if row["undetected_rounding_level_mutation"]:
            parts.append(
                f"{row['undetected_rounding_level_mutation']} of the undetected have a "
                f"shift or noise below {ROUNDING_LEVEL:g} times f(x0) - f*: mean "
                "f_i(x*) is rounding noise (interpolating least squares, or offsets of "
                "scale near 0), so the mutation adds nothing a float64 check can see."
            )
        if row["undetected_identical_runs"]:
            parts.append(
                f"{row['undetected_identical_runs']} produce runs bit-identical to the "
                "unmutated method: the mutation never changes a step."
            )
        single = row["undetected_single_sample"]
        if row["mutant"] == "step x 2":
            parts.append(
                "The doubled step breaks S1/I1 at a step exactly when <g_t, z_t - x*> "
                "< 1.25 s_t, that is when the linearization gap f_S(x*) - f_S(x_t) - "
                "<g_t, x* - x_t> is below s_t / 4. A quadratic with minimizer x* has "
                "gap = s_t, so the check cannot fire on interpolating least squares "
                "(SPS*) or, near x*, on a single sample (n = 1 in "
                f"{single} of the undetected)."
            )
        if row["mutant"] == "step x 2" and row["method"] == "sps_star":
            parts.append(
                "Numerical check of ||x+ - x*||^2 = ||x - x*||^2 - 4 s^2/||g||^2 on "
                "interpolating least squares, largest relative deviation over 2,000 "
                f"random steps: {identity_error:.2e}."
            )
        if row["mutant"] == "no positive part":
            parts.append(
                "On interpolating least squares f_S(x*) = min f_S up to the rounding of "
                "f_i(x*), so s_t < 0 happens only at rounding level, and the negative "
                "step it causes moves z by a rounding-level amount. With n = 1 (in "
                f"{single} of the undetected) every batch is f, and s_t >= f(z_t) - f* "
                ">= 0 by convexity, so the positive part never acts."
            )
        if row["mutant"] == LAM_CONSTANT_MUTANT:
            parts.append(
                "The largest recorded ||x_t - mean(z_0..z_t)|| over the undetected "
                f"runs is {row['undetected_max_average_error']:.3g}: there the anchors "
                "z_k barely move, so any weighting of them gives nearly the same x_t."
            )
        if row["undetected_median_tightness"] is not None:
            parts.append(
                "Median over the undetected of max_t (mean / checked bound): "
                f"{row['undetected_median_tightness']:.3g}."
            )
        notes[f"{row['mutant']} ({row['method']})"] = " ".join(parts)
    return notes


def print_table(soundness, table, notes, seconds):
    print(f"Soundness: {soundness['pairs']} instance-method pairs on "
          f"{soundness['instances']} instances ({soundness['rejected_by_oracle']} "
          f"rejected by the oracle), {soundness['seeds_per_pair']} seeds x "
          f"{soundness['steps']} steps")
    print(f"  false violations: {soundness['false_violations']}")
    for statement, counts in soundness["status_counts"].items():
        closest = soundness["max_tightness"].get(statement)
        closest_text = f", max mean/bound {closest:.3g}" if closest is not None else ""
        print(f"  {statement:4s} " + ", ".join(
            f"{k}: {v}" for k, v in sorted(counts.items())) + closest_text)
    print()
    print(f"{'mutant':42s} {'method':9s} {'detected':>12s}  detected by")
    for row in table:
        fraction = f"{row['detected']}/{row['instances']}"
        by = ", ".join(f"{k} {v}" for k, v in list(row["detected_by"].items())[:4])
        print(f"{row['mutant']:42s} {row['method']:9s} {fraction:>12s}  {by}")
    for name, reason in NOT_COVERED.items():
        print(f"{name:42s} {'-':9s} {'not covered':>12s}  {reason}")
    print()
    for key, note in notes.items():
        print(f"- {key}: {note}")
    print(f"\nwall time {seconds:.1f} s")


def git_commit():
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True,
                               text=True, check=True, cwd=Path(__file__).parent)
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"head": head.stdout.strip(), "uncommitted_changes": bool(dirty.stdout.strip())}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path,
                        help="path of the JSON file to write the results to")
    parser.add_argument("--quick", action="store_true",
                        help=f"small run: {QUICK['instances']} instances instead of "
                             f"{FULL['instances']}, fewer steps and seeds")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=20250401,
                        help="base seed of the instance generator")
    return parser.parse_args(argv)


def run_tasks(tasks, workers, started):
    """Run ``check_instance`` over the tasks in worker processes, in task order."""
    results = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        for done, result in enumerate(pool.map(check_instance, tasks, chunksize=4), 1):
            results.append(result)
            if done % 50 == 0:
                print(f"{done}/{len(tasks)} instances, "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return results


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.workers < 1:
        raise SystemExit(f"invalid --workers {args.workers}: pass 1 or more")
    config = dict(QUICK if args.quick else FULL)
    started = time.perf_counter()

    tasks = [
        (args.seed, i, config["steps"], config["seeds"], i < config["power_instances"])
        for i in range(config["instances"])
    ]
    results = run_tasks(tasks, args.workers, started)
    identity_error = double_step_identity(2000, args.seed)
    seconds = time.perf_counter() - started

    soundness = soundness_summary(results, config["steps"], config["seeds"])
    table = power_summary(results)
    notes = explanations(table, identity_error)
    print_table(soundness, table, notes, seconds)

    output = {
        "command": "python benchmarks/soundness_power.py " + " ".join(argv),
        "config": config | {"base_seed": args.seed, "workers": args.workers,
                            "confidence": DEFAULT_CONFIDENCE},
        "environment": {
            "python": platform.python_version(), "numpy": np.__version__,
            "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "git": git_commit(),
        },
        "seconds": seconds,
        "soundness": soundness,
        "power": table,
        "double_step_identity_max_relative_error": identity_error,
        "explanations": notes,
        "not_covered": NOT_COVERED,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(output, indent=1, default=_json_default))
    return 0


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return _finite(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


if __name__ == "__main__":
    sys.exit(main())
