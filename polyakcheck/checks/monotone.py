"""S1, I1 and I2: the almost-sure statements, checked on every step of every run.

S1 (SPS*) and I1 (IAM anchor): for every t and every sample path,

    ||z_{t+1} - x_star||^2 <= ||z_t - x_star||^2 - (s_t)_+^2 / ||g_t||^2,

with z = x for SPS*. The compiled loop evaluates both sides on every step and counts the
steps whose excess passes the float64 rounding slack of ``methods.rounding``; this
module turns those counts into verdicts. I2: with lam_t = t the iterate x_t equals the
mean of z_0..z_t, compared at every checkpoint within the rounding slack of the running
average.
"""

import numpy as np

from polyakcheck.checks.claims import replay_command
from polyakcheck.checks.verdict import HOLDS, NOT_APPLICABLE, VIOLATED, Verdict


def monotone_verdict(traces, statement, problem_name=""):
    """Return the S1 or I1 verdict over all seeds of one method."""
    first = traces[0]
    worst = max(traces, key=lambda tr: tr.monotone["worst_ratio"])
    mono = worst.monotone
    violations = sum(tr.monotone["violations"] for tr in traces)
    total_steps = sum(tr.steps for tr in traces)
    lhs, rhs, tol = mono["worst_lhs"], mono["worst_rhs"], mono["worst_tol"]
    margin = (rhs + tol - lhs) / max(abs(rhs) + tol, np.finfo(float).tiny)
    where = f"seed {worst.seed}, step {mono['worst_step']}"
    anchor = "z" if statement == "I1" else "x"
    if violations:
        status = VIOLATED
        message = (
            f"{violations} of {total_steps} steps break ||{anchor}_(t+1) - x*||^2 <= "
            f"||{anchor}_t - x*||^2 - s_+^2/||g||^2 beyond the rounding slack; worst at "
            f"{where}: left {lhs:.6g}, right {rhs:.6g}, slack {tol:.3g}; replay: "
            + replay_command(problem_name, first.label, first.steps,
                             first.batch_size, [worst.seed], first.sampling)
        )
    else:
        status = HOLDS
        message = (
            f"all {total_steps} steps within the float64 rounding slack; closest step "
            f"at {where}: excess/slack = {mono['worst_ratio']:.3g}"
        )
    title = (
        f"||{anchor}_(t+1) - x*||^2 <= ||{anchor}_t - x*||^2 - (s_t)_+^2 / ||g_t||^2 "
        "on every step"
    )
    return Verdict(
        statement, title, first.label, status, margin, where, lhs, rhs, tol,
        tuple(tr.seed for tr in traces), 1.0, message,
    )


def averaging_verdict(traces, problem_name=""):
    """Return the I2 verdict: x_t equals mean(z_0..z_t) within rounding."""
    first = traces[0]
    if "I2" not in first.claims:
        return Verdict(
            "I2", "x_t = mean(z_0..z_t) with lam_t = t", first.label, NOT_APPLICABLE,
            float("nan"), "", float("nan"), float("nan"), 0.0,
            tuple(tr.seed for tr in traces), 1.0,
            "the running mean of z is measured only for methods that claim I2 "
            "(IAM with lam_t = t)",
        )
    ratios = np.stack([tr.avg_err / tr.avg_tol for tr in traces])
    seed_idx, k = np.unravel_index(int(np.argmax(ratios)), ratios.shape)
    tr = traces[seed_idx]
    err, tol = float(tr.avg_err[k]), float(tr.avg_tol[k])
    where = f"seed {tr.seed}, t={int(tr.t[k])}"
    status = VIOLATED if err > tol else HOLDS
    message = (
        f"largest ||x_t - mean(z_0..z_t)|| = {err:.3g} against a rounding slack of "
        f"{tol:.3g} at {where}"
    )
    if status == VIOLATED:
        message += "; replay: " + replay_command(
            problem_name, first.label, first.steps, first.batch_size, [tr.seed],
            first.sampling,
        )
    return Verdict(
        "I2", "x_t = mean(z_0..z_t) with lam_t = t", first.label, status,
        (tol - err) / tol, where, err, 0.0, tol, tuple(t.seed for t in traces), 1.0,
        message,
    )
