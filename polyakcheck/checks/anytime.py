"""S2-S4: anytime bounds on the averaged iterate of SPS*.

S2 (local expected gradient bound). If E||g_xi(x)||^2 <= A (f(x) - f_star) + B on the
ball B_D = {x : ||x - x_star|| <= D}, then for every t >= 1

    E[f(xbar_t)] - f_star <= (A D^2 + sqrt(A^2 D^4 + 4 B D^2 t)) / (2 t).

S3 takes (A, B) = (0, G_D^2) with the local Lipschitz constant G_D, giving D G_D / sqrt(t).
S4 (each f_i convex and L_max-smooth on R^d) takes (a) (2 L_max, 2 L_max Delta*) or
(b) (4 L_max, 2 sigma*^2). Each valid pair gives a valid bound, so "S2" is checked
against their pointwise minimum. Source: Gower, Garrigos, Loizou, Oikonomou, Mishchenko,
Schaipp, "Analysis of an Idealized Stochastic Polyak Method and its Application to
Black-Box Model Distillation", arXiv:2504.01898 (2025); proofs in docs/theory.md.
"""

import numpy as np

from polyakcheck.checks.claims import DEFAULT_CONFIDENCE, check_claim


def s2_bound(t, A, B, D):
    """Return (A D^2 + sqrt(A^2 D^4 + 4 B D^2 t)) / (2 t) for an array of t >= 1.

    Evaluated as D (A D + sqrt(A^2 D^2 + 4 B t)) / (2 t), which equals it for D >= 0
    and does not underflow D^4 to 0 when D is below about 1e-77.
    """
    t = np.asarray(t, dtype=float)
    return D * (A * D + np.sqrt((A * D) ** 2 + 4.0 * B * t)) / (2.0 * t)


def _pair_bound(name):
    def bound(t, c):
        return s2_bound(t, c["A_" + name], c["B_" + name], c["D"])

    return bound


def _min_bound(names):
    def bound(t, c):
        return np.min([_pair_bound(n)(t, c) for n in names], axis=0)

    return bound


def anytime_verdicts(traces, constants, assumptions, confidence=DEFAULT_CONFIDENCE,
                     problem_name=""):
    """Check S2, S3, S4a and S4b on SPS* traces and return the four verdicts."""
    smooth = assumptions.get("smooth_globally", False)
    not_smooth = None if smooth else (
        "S4 needs every f_i smooth on all of R^d, which this loss is not; "
        "S3 with the local G_D applies instead"
    )
    pairs = ["S3", "S4a", "S4b"] if smooth else ["S3"]
    specs = [
        ("S2", _min_bound(pairs),
         f"E f(xbar_t) - f* <= min over valid (A, B) in {{{', '.join(pairs)}}} of "
         "(A D^2 + sqrt(A^2 D^4 + 4 B D^2 t)) / (2t)", None),
        ("S3", _pair_bound("S3"), "E f(xbar_t) - f* <= D G_D / sqrt(t)", None),
        ("S4a", _pair_bound("S4a"),
         "S2 with A = 2 L_max, B = 2 L_max Delta*", not_smooth),
        ("S4b", _pair_bound("S4b"),
         "S2 with A = 4 L_max, B = 2 sigma*^2 (+ certificate term)", not_smooth),
    ]
    return [
        check_claim(traces, "gap_avg", bound, constants, statement, title,
                    confidence, problem_name, requires)
        for statement, bound, title, requires in specs
    ]
