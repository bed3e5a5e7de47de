"""Random convex instances for property tests (Hypothesis) and benchmarks (numpy).

Every instance is built by one deterministic function, ``build_problem``, from a
``ProblemDraw``: sizes, a feature matrix and vectors with bounded entries, and a few
scalars. The Hypothesis strategies draw a ``ProblemDraw`` with sizes first and arrays
second, so that shrinking ends at small sizes and simple entries. ``random_problem``
draws the same fields from a seeded numpy generator, for scripts that need many
reproducible instances without Hypothesis.

The loss families that can be drawn live in ``FAMILY_GENERATORS``. A new family needs a
``FamilyGenerator`` entry: a function that turns the scaled features, the planted point
and the offsets into targets, and the smallest regularization for which a minimizer
always exists.

Examples
--------
>>> from hypothesis import given
>>> from polyakcheck.strategies import instances
>>> @given(instances())
... def test_runs(instance):
...     problem, method, batch_size, seed = instance
"""

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from polyakcheck.methods.spec import Method
from polyakcheck.problems.problem import Problem

MAX_SAMPLES = 60
MAX_DIMENSION = 8
MAX_CONDITION = 100.0
MAX_OFFSET_SCALE = 2.0
MAX_REG = 1.0
# Smallest regularization drawn by default when a family draws reg > 0.
MIN_POSITIVE_REG = 1e-3
MAX_LAM = 20.0
MAX_BATCH_SIZE = 8
# Entries of the starting point lie in [-X0_BOUND, X0_BOUND]; features, the planted point
# and the offsets lie in [-1, 1].
X0_BOUND = 2.0
# Nonzero drawn entries are at least this large in absolute value by default.
# NOTE: with entries near 1e-77 or below, B D^2 in the S2 bound underflows to 0 while the
# measured gap does not, so the checker reports a false violation. A smaller floor is
# opt-in through ``min_magnitude``.
MIN_ENTRY_MAGNITUDE = 1e-6
METHOD_KINDS = ("sps_star", "iam", "iam_const")


@dataclass(frozen=True)
class ProblemDraw:
    """Raw random fields from which ``build_problem`` makes a ``Problem``.

    Attributes
    ----------
    family : str
        Key of ``FAMILY_GENERATORS``.
    features : ndarray, shape (n, d)
        Unscaled rows a_i, entries in [-1, 1].
    x_true : ndarray, shape (d,)
        Planted point, entries in [-1, 1].
    offsets : ndarray, shape (n,)
        Per-sample offsets before scaling, entries in [-1, 1].
    x0 : ndarray, shape (d,)
        Starting point, entries in [-X0_BOUND, X0_BOUND].
    condition : float
        Ratio >= 1 of the largest to the smallest column scale.
    interpolate : bool
        Plant x_true as a minimizer of every f_i (see the family's targets).
    offset_scale : float
        Scale nu >= 0 of the offsets.
    reg : float
        Requested L2 regularization, >= 0 (the family may raise it or set it to 0).
    """

    family: str
    features: np.ndarray
    x_true: np.ndarray
    offsets: np.ndarray
    x0: np.ndarray
    condition: float
    interpolate: bool
    offset_scale: float
    reg: float


@dataclass(frozen=True)
class FamilyGenerator:
    """Recipe that turns a ``ProblemDraw`` into the targets and reg of one loss family.

    Attributes
    ----------
    loss : str
        Loss name accepted by ``Problem``.
    targets : callable
        ``targets(A, x_true, offsets, interpolate) -> b`` with A the column-scaled
        features, shape (n, d), and ``offsets`` already multiplied by nu.
    min_reg : float
        Smallest reg that guarantees a minimizer; drawn values below it are raised to it.
    interpolating_reg_is_zero : bool
        True when an interpolating draw must have reg = 0 so that x_true minimizes every
        f_i (a ridge term moves each f_i's minimizer toward 0).
    """

    loss: str
    targets: Callable
    min_reg: float
    interpolating_reg_is_zero: bool


def _least_squares_targets(A, x_true, offsets, interpolate):
    if interpolate:
        return A @ x_true
    return A @ x_true + offsets


def _logistic_targets(A, x_true, offsets, interpolate):
    # Labels are the signs of the planted margins, with the offsets acting as label noise.
    margins = A @ x_true if interpolate else A @ x_true + offsets
    return np.where(margins >= 0.0, 1.0, -1.0)


def _poisson_targets(A, x_true, offsets, interpolate):
    # Rates exp(a_i^T x_true), perturbed on the log scale by the offsets and clipped
    # so that exp stays moderate.
    margins = A @ x_true if interpolate else A @ x_true + offsets
    return np.exp(np.clip(margins, -5.0, 3.0))


FAMILY_GENERATORS = {
    "least_squares": FamilyGenerator(
        loss="least_squares", targets=_least_squares_targets, min_reg=0.0,
        interpolating_reg_is_zero=True,
    ),
    # With reg = 0 separable labels leave f without a minimizer, so reg > 0 always.
    # "interpolate" then means noise-free labels, not a common minimizer of the f_i.
    "logistic": FamilyGenerator(
        loss="logistic", targets=_logistic_targets, min_reg=MIN_POSITIVE_REG,
        interpolating_reg_is_zero=False,
    ),
    # Non-smooth regression: the least-squares targets; the loss is bounded below and
    # piecewise linear, so a minimizer exists at every reg >= 0.
    "absolute": FamilyGenerator(
        loss="absolute", targets=_least_squares_targets, min_reg=0.0,
        interpolating_reg_is_zero=True,
    ),
    "huber": FamilyGenerator(
        loss="huber", targets=_least_squares_targets, min_reg=0.0,
        interpolating_reg_is_zero=True,
    ),
    # The hinge losses are bounded below by 0 and piecewise polynomial, so their
    # minimum is attained even on separable labels.
    "squared_hinge": FamilyGenerator(
        loss="squared_hinge", targets=_logistic_targets, min_reg=0.0,
        interpolating_reg_is_zero=False,
    ),
    "hinge": FamilyGenerator(
        loss="hinge", targets=_logistic_targets, min_reg=0.0,
        interpolating_reg_is_zero=False,
    ),
    # Poisson needs counts >= 0, and reg > 0 so that a zero count cannot push a margin
    # to -inf.
    "poisson": FamilyGenerator(
        loss="poisson", targets=_poisson_targets, min_reg=MIN_POSITIVE_REG,
        interpolating_reg_is_zero=False,
    ),
}


def column_scales(d, condition):
    """Return the geometric sequence condition^(-j / (d - 1)), j = 0..d-1 (1 when d = 1).

    Multiplying column j of the features by the j-th scale makes the ratio of the
    largest to the smallest column scale equal to ``condition``, so for features with
    roughly orthogonal columns the condition number of A^T A grows like condition^2.
    """
    if d == 1:
        return np.ones(1)
    return condition ** (-np.arange(d) / (d - 1))


def build_problem(draw, name=None):
    """Build the ``Problem`` described by ``draw``.

    Least squares: b = A x_true when interpolating (reg forced to 0, so x_true
    minimizes every f_i), else b = A x_true + nu * offsets. Logistic: labels are the
    signs of A x_true (+ nu * offsets unless interpolating), and reg is at least
    ``FAMILY_GENERATORS["logistic"].min_reg``.

    Parameters
    ----------
    draw : ProblemDraw
    name : str, optional
        Problem name; defaults to ``"fuzz-<family>-n<n>-d<d>"``.

    Returns
    -------
    Problem
    """
    if draw.family not in FAMILY_GENERATORS:
        raise ValueError(
            f"unknown loss family {draw.family!r}; use one of {sorted(FAMILY_GENERATORS)}"
        )
    family = FAMILY_GENERATORS[draw.family]
    n, d = draw.features.shape
    A = draw.features * column_scales(d, draw.condition)
    b = family.targets(A, draw.x_true, draw.offset_scale * draw.offsets, draw.interpolate)
    if draw.interpolate and family.interpolating_reg_is_zero:
        reg = 0.0
    else:
        reg = max(float(draw.reg), family.min_reg)
    if name is None:
        name = f"fuzz-{draw.family}-n{n}-d{d}"
    return Problem(name, family.loss, A, b, reg=reg, x0=draw.x0)


def _as_strategy(value):
    """Wrap a fixed value in ``st.just``; pass a strategy through unchanged."""
    if isinstance(value, st.SearchStrategy):
        return value
    return st.just(value)


def _bounded_floats(bound, min_magnitude):
    """Floats in [-bound, bound] that are 0 or at least ``min_magnitude`` in size."""
    # Subnormal entries are excluded: the rounding slacks assume the standard model
    # fl(a op b) = (a op b)(1 + e), which gradual underflow breaks.
    if min_magnitude <= 0.0:
        return st.floats(
            -bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False,
        )
    positive = st.floats(min_magnitude, bound, allow_nan=False, allow_infinity=False)
    return st.one_of(st.just(0.0), positive, positive.map(lambda v: -v))


def _default_reg():
    return st.one_of(st.just(0.0), st.floats(MIN_POSITIVE_REG, MAX_REG))


@st.composite
def problem_draws(
    draw,
    families=tuple(FAMILY_GENERATORS),
    n=st.integers(1, MAX_SAMPLES),
    d=st.integers(1, MAX_DIMENSION),
    condition=st.floats(1.0, MAX_CONDITION),
    interpolate=st.booleans(),
    offset_scale=st.floats(0.0, MAX_OFFSET_SCALE),
    reg=None,
    min_magnitude=MIN_ENTRY_MAGNITUDE,
):
    """Draw a ``ProblemDraw``: the raw fields behind ``problems``.

    The arguments are as for ``problems``. Sizes are drawn before the arrays, so
    shrinking reduces n and d first and then the entries toward 0.
    """
    family = draw(st.sampled_from(list(families)))
    n_samples = draw(_as_strategy(n))
    dim = draw(_as_strategy(d))
    if n_samples < 1 or dim < 1:
        raise ValueError(f"invalid sizes n={n_samples}, d={dim}: both must be >= 1")
    cond = draw(_as_strategy(condition))
    if not cond >= 1.0:
        raise ValueError(f"invalid condition {cond!r}: it must be >= 1")
    interp = draw(_as_strategy(interpolate))
    nu = draw(_as_strategy(offset_scale))
    reg_value = draw(_default_reg() if reg is None else _as_strategy(reg))
    unit = _bounded_floats(1.0, min_magnitude)
    features = draw(arrays(np.float64, (n_samples, dim), elements=unit))
    x_true = draw(arrays(np.float64, dim, elements=unit))
    offsets = draw(arrays(np.float64, n_samples, elements=unit))
    x0 = draw(arrays(np.float64, dim, elements=_bounded_floats(X0_BOUND, min_magnitude)))
    return ProblemDraw(
        family=family, features=features, x_true=x_true, offsets=offsets, x0=x0,
        condition=float(cond), interpolate=bool(interp), offset_scale=float(nu),
        reg=float(reg_value),
    )


def problems(
    families=tuple(FAMILY_GENERATORS),
    n=st.integers(1, MAX_SAMPLES),
    d=st.integers(1, MAX_DIMENSION),
    condition=st.floats(1.0, MAX_CONDITION),
    interpolate=st.booleans(),
    offset_scale=st.floats(0.0, MAX_OFFSET_SCALE),
    reg=None,
    min_magnitude=MIN_ENTRY_MAGNITUDE,
):
    """Strategy for valid convex ``Problem`` instances.

    Each argument other than ``families`` is a strategy or a fixed value.

    Parameters
    ----------
    families : sequence of str
        Keys of ``FAMILY_GENERATORS`` to sample from, uniformly.
    n : int or strategy of int
        Number of samples, >= 1. Default 1..60.
    d : int or strategy of int
        Dimension, >= 1. Default 1..8.
    condition : float or strategy of float
        Ratio >= 1 of the largest to the smallest column scale; the columns of the
        features are scaled by the geometric sequence ``column_scales(d, condition)``.
        Default 1..100.
    interpolate : bool or strategy of bool
        Least squares: b = A x_true exactly and reg = 0, so x_true minimizes every f_i.
        Logistic: noise-free labels sign(A x_true), reg stays > 0. Default either.
    offset_scale : float or strategy of float
        Scale nu of the per-sample offsets nu * o_i, o_i in [-1, 1], added to the
        targets (least squares) or to the margins before taking signs (logistic) when
        not interpolating. Default 0..2.
    reg : float or strategy of float, optional
        L2 regularization. Default: 0 or a value in [1e-3, 1]. The logistic family
        raises any value below 1e-3 to 1e-3, since with reg = 0 a separable sample has
        no minimizer.
    min_magnitude : float
        Every drawn array entry is 0 or at least this large in absolute value.
        Default 1e-6; 0 allows any normal float.

    Returns
    -------
    SearchStrategy of Problem
        Features with entries in [-1, 1] before column scaling, a planted point and
        offsets in [-1, 1], and a starting point x0 with entries in [-2, 2]. No entry is
        NaN, infinite or subnormal.
    """
    return problem_draws(
        families=families, n=n, d=d, condition=condition, interpolate=interpolate,
        offset_scale=offset_scale, reg=reg, min_magnitude=min_magnitude,
    ).map(build_problem)


@st.composite
def methods(draw, kinds=METHOD_KINDS, lam=st.floats(0.0, MAX_LAM), max_step_size=None):
    """Draw a Polyak-type ``Method``.

    Parameters
    ----------
    kinds : sequence of str
        Method kinds to sample from: ``"sps_star"``, ``"iam"`` (lam_t = t) and
        ``"iam_const"`` (constant lam).
    lam : float or strategy of float
        The constant lam of ``"iam_const"``, >= 0. Default 0..20.
    max_step_size : float or strategy of float, optional
        Cap on the Polyak step. Default None: no cap. A strategy may draw None.

    Returns
    -------
    Method
        Labeled by its kind, with no mutation.
    """
    kind = draw(st.sampled_from(list(kinds)))
    cap = math.inf
    if max_step_size is not None:
        drawn = draw(_as_strategy(max_step_size))
        cap = math.inf if drawn is None else float(drawn)
    if kind == "iam":
        return Method("iam", lam="t", max_step_size=cap)
    if kind == "iam_const":
        return Method("iam_const", lam=float(draw(_as_strategy(lam))), max_step_size=cap)
    return Method(kind, max_step_size=cap)


def batch_sizes(n, max_size=MAX_BATCH_SIZE):
    """Strategy for minibatch sizes 1..min(n, max_size).

    Batches are drawn with replacement, so any size is valid; the cap keeps runs short
    and batches no larger than the data.
    """
    return st.integers(1, max(1, min(int(n), int(max_size))))


class Instance(NamedTuple):
    """One fuzzed check: a problem, a method, a batch size and a seed of the runs."""

    problem: Problem
    method: Method
    batch_size: int
    seed: int


@st.composite
def instances(draw, problem_strategy=None, method_strategy=None):
    """Draw an ``Instance``: (problem, method, batch_size, seed).

    Parameters
    ----------
    problem_strategy : strategy of Problem, optional
        Default ``problems()``.
    method_strategy : strategy of Method, optional
        Default ``methods()``.

    Returns
    -------
    Instance
        The batch size is drawn from ``batch_sizes(problem.n)`` and the seed from
        0..2^32 - 1.
    """
    problem = draw(problems() if problem_strategy is None else problem_strategy)
    method = draw(methods() if method_strategy is None else method_strategy)
    batch_size = draw(batch_sizes(problem.n))
    seed = draw(st.integers(0, 2**32 - 1))
    return Instance(problem, method, batch_size, seed)


def random_problem_draw(
    rng,
    families=tuple(FAMILY_GENERATORS),
    max_samples=MAX_SAMPLES,
    max_dimension=MAX_DIMENSION,
    max_condition=MAX_CONDITION,
    max_offset_scale=MAX_OFFSET_SCALE,
):
    """Draw a ``ProblemDraw`` from a numpy ``Generator``, for reproducible scripts.

    n and d are uniform on 1..max, log10(condition) is uniform on
    [0, log10(max_condition)], interpolation has probability 1/2, nu is uniform on
    [0, max_offset_scale], and reg is 0 with probability 1/2, else log-uniform on
    [1e-3, 1]. Array entries are uniform on their bounds.
    """
    family = str(rng.choice(list(families)))
    n = int(rng.integers(1, max_samples + 1))
    d = int(rng.integers(1, max_dimension + 1))
    condition = float(10.0 ** rng.uniform(0.0, math.log10(max_condition)))
    interpolate = bool(rng.random() < 0.5)
    offset_scale = float(rng.uniform(0.0, max_offset_scale))
    if rng.random() < 0.5:
        reg = 0.0
    else:
        reg = float(10.0 ** rng.uniform(math.log10(MIN_POSITIVE_REG), math.log10(MAX_REG)))
    return ProblemDraw(
        family=family,
        features=rng.uniform(-1.0, 1.0, size=(n, d)),
        x_true=rng.uniform(-1.0, 1.0, size=d),
        offsets=rng.uniform(-1.0, 1.0, size=n),
        x0=rng.uniform(-X0_BOUND, X0_BOUND, size=d),
        condition=condition,
        interpolate=interpolate,
        offset_scale=offset_scale,
        reg=reg,
    )


def random_problem(rng, **options):
    """Draw a ``Problem`` from a numpy ``Generator`` (options of ``random_problem_draw``)."""
    return build_problem(random_problem_draw(rng, **options))


def random_method(rng, kinds=METHOD_KINDS, max_lam=MAX_LAM):
    """Draw a ``Method`` from a numpy ``Generator``, with lam uniform on [0, max_lam]."""
    kind = str(rng.choice(list(kinds)))
    if kind == "iam":
        return Method("iam", lam="t")
    if kind == "iam_const":
        return Method("iam_const", lam=float(rng.uniform(0.0, max_lam)))
    return Method(kind)
