"""I3-I5: last-iterate bounds for IAM with lam_t = t.

I3 (data-dependent). E[f(x_T)] - f_star <= D sqrt(sum_{t=0}^{T} E||g_t||^2) / (T + 1),
where the sum includes g_T drawn at x_T. Its right side is estimated from the same runs.
I4 (Lipschitz). E[f(x_T)] - f_star <= D G_D / sqrt(T + 1).
I5 (local bound). With E||g||^2 <= A (f - f_star) + B on B_D,
E[f(x_T)] - f_star <= A D^2 H_{T+1} / (T + 1) + D sqrt(B / (T + 1)), H_k = sum_{j<=k} 1/j.
Source: Gower et al., arXiv:2504.01898 (2025); derivations in docs/theory.md.
"""

import numpy as np
from scipy.special import digamma

from polyakcheck.checks.claims import (
    DEFAULT_CONFIDENCE, check_claim, quantity_samples, replay_command, sampling_reason,
    tightness,
)
from polyakcheck.checks.stats import bernstein_upper, one_sided_limits
from polyakcheck.checks.verdict import (
    HOLDS, INCONCLUSIVE, NOT_APPLICABLE, VIOLATED, Verdict,
)


def harmonic(k):
    """Return H_k = sum_{j=1}^{k} 1/j for an array of k >= 1 (exact to rounding)."""
    k = np.asarray(k, dtype=float)
    return digamma(k + 1.0) + np.euler_gamma


def i5_bound(T, A, B, D):
    """Return A D^2 H_{T+1} / (T + 1) + D sqrt(B / (T + 1))."""
    T = np.asarray(T, dtype=float)
    return A * D**2 * harmonic(T + 1) / (T + 1) + D * np.sqrt(B / (T + 1))


def i3_verdict(traces, constants, confidence=DEFAULT_CONFIDENCE, problem_name=""):
    """Check I3 with its right side estimated from the same runs.

    With S_T = sum_{t<=T} ||g_t||^2 per run and R_T = D sqrt(E S_T) / (T + 1):

    - holds at T when the upper limit of E[gap_T - D sqrt(S_T) / (T + 1)] plus the
      rounding tolerance is <= 0. This suffices because E sqrt(S_T) <= sqrt(E S_T)
      (Jensen), and the paired difference has a far smaller variance than either side.
    - violated at T when the lower limit of E[gap_T] less the tolerance exceeds
      D sqrt(upper limit of E S_T) / (T + 1). The upper limit of E S_T is the
      empirical Bernstein limit with range (T + 1) G_D^2 (the iterates of IAM stay
      in B_D by I1, where every (sub)gradient norm is at most G_D), because a t limit
      is 0 when every seed drew only samples with a zero gradient, which happens
      with positive probability and would report a false violation.

    The error budget 1 - confidence is split evenly between the two limits of each
    test and then over the K checkpoints (Bonferroni).
    """
    first = traces[0]
    reason = sampling_reason(traces)
    if len(traces) < 2:
        reason = ("one seed gives no confidence limit for a mean; run at least 2 "
                  "seeds (50 by default)")
        return Verdict(
            "I3", "data-dependent last-iterate bound", first.label, INCONCLUSIVE,
            float("nan"), "", float("nan"), float("nan"), 0.0,
            tuple(tr.seed for tr in traces), confidence, reason,
        )
    if reason:
        return Verdict(
            "I3", "data-dependent last-iterate bound", first.label, NOT_APPLICABLE,
            float("nan"), "", float("nan"), float("nan"), 0.0,
            tuple(tr.seed for tr in traces), confidence, reason,
        )
    t = first.t
    D = constants["D"]["value"]
    gaps, tol = quantity_samples(traces, "gap_last")
    S = np.stack([tr.g2_sum for tr in traces])
    alpha_each = (1.0 - confidence) / (2 * len(t))
    scaled_root = D * np.sqrt(S) / (t + 1)
    _, _, diff_upper = one_sided_limits(gaps - scaled_root, alpha_each)
    gap_mean, gap_lower, gap_upper = one_sided_limits(gaps, alpha_each)
    S_range = np.maximum((t + 1) * constants["G_D"]["value"] ** 2, S.max(axis=0))
    S_upper = bernstein_upper(S, alpha_each, S_range)
    bound_mean = D * np.sqrt(S.mean(axis=0)) / (t + 1)
    bound_high = D * np.sqrt(S_upper) / (t + 1)
    scale = np.maximum(bound_mean, np.finfo(float).tiny)
    excess = (gap_lower - tol - bound_high) / scale
    seeds = [tr.seed for tr in traces]
    title = "E f(x_T) - f* <= D sqrt(sum_{t<=T} E||g_t||^2) / (T+1), right side measured"
    if np.any(excess > 0):
        k = int(np.argmax(excess))
        status, margin = VIOLATED, float(-excess[k])
        message = (
            f"at t={int(t[k])} the lower limit {gap_lower[k]:.6g} of the mean gap exceeds "
            f"D sqrt(upper limit of E S_T)/(T+1) = {bound_high[k]:.6g}; replay: "
            + replay_command(problem_name, first.label, first.steps, first.batch_size,
                             seeds, first.sampling)
        )
    else:
        slack = (-diff_upper - tol) / scale
        k = int(np.argmin(slack))
        margin = float(slack[k])
        status = HOLDS if np.all(slack >= 0) else INCONCLUSIVE
        message = (
            f"{status}: upper limit of E[gap - D sqrt(S_T)/(T+1)] is "
            f"{diff_upper[k]:.3g} at t={int(t[k])}, the closest checkpoint"
        )
    return Verdict(
        "I3", title, first.label, status, margin, f"t={int(t[k])}", float(gap_mean[k]),
        float(bound_mean[k]), float(tol[k]), tuple(seeds), confidence, message,
        series={
            "t": t.astype(float).tolist(), "mean": gap_mean.tolist(),
            "lower": gap_lower.tolist(), "upper": gap_upper.tolist(),
            "bound": bound_mean.tolist(),
        },
        tightness=tightness(gap_mean, bound_mean),
    )


def last_iterate_verdicts(traces, constants, assumptions,
                          confidence=DEFAULT_CONFIDENCE, problem_name=""):
    """Check I3, I4 and I5 on IAM (lam_t = t) traces."""
    smooth = assumptions.get("smooth_globally", False)
    pairs = ["S4a", "S4b"] if smooth else []

    def i4(t, c):
        return c["D"] * c["G_D"] / np.sqrt(t + 1.0)

    def i5(t, c):
        return np.min([i5_bound(t, c["A_" + p], c["B_" + p], c["D"]) for p in pairs],
                      axis=0)

    verdicts = [
        i3_verdict(traces, constants, confidence, problem_name),
        check_claim(traces, "gap_last", i4, constants, "I4",
                    "E f(x_T) - f* <= D G_D / sqrt(T+1)", confidence, problem_name),
    ]
    if pairs:
        verdicts.append(check_claim(
            traces, "gap_last", i5, constants, "I5",
            "E f(x_T) - f* <= A D^2 H_{T+1}/(T+1) + D sqrt(B/(T+1)), min over the S4 "
            "pairs (A, B)", confidence, problem_name,
        ))
    else:
        verdicts.append(Verdict(
            "I5", "local bound last iterate", traces[0].label, NOT_APPLICABLE,
            float("nan"), "", float("nan"), float("nan"), 0.0,
            tuple(tr.seed for tr in traces), confidence,
            "the smooth (A, B) pairs need a globally smooth loss; I4 covers this case",
        ))
    return verdicts
