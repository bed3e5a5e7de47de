"""``Method``: which update a run uses, its parameters, and the statements it claims."""

import math
from dataclasses import dataclass, field

METHOD_NAMES = ("sps_star", "iam", "iam_const", "sgd", "sgd_momentum")

# Statements of the theory that each method claims (see docs/theory.md).
CLAIMS = {
    "sps_star": ("S1", "S2", "S3", "S4a", "S4b"),
    "iam": ("I1", "I2", "I3", "I4", "I5"),
    "iam_const": ("I1",),
    "sgd": (),
    "sgd_momentum": (),
}


@dataclass(frozen=True)
class Method:
    """A method and its parameters.

    Attributes
    ----------
    kind : str
        One of ``METHOD_NAMES``.
    lam : "t", float or None
        IAM's averaging weight: ``"t"`` for lam_t = t, a constant, or None (no averaging).
    step_size : float or None
        Constant step for the SGD baselines. None means 1 / (4 L_max) of the problem.
    momentum : float
        Heavy-ball coefficient beta of ``sgd_momentum``.
    max_step_size : float
        Cap on the Polyak step (inf for none).
    lower_bound : None, "mean", float or ndarray of shape (n,)
        What the Polyak step uses in place of f_i(x_star): None for the oracle's exact
        values (SPS*, IAM), ``"mean"`` for f_star on every sample, a float for one
        constant lower bound (0 is common), or per-sample lower bounds, which a
        minibatch averages.
    weight_decay : float
        Decoupled decay of the anchor, z_{t+1} = (1 - weight_decay) z_t - gamma_t g_t.
    label : str
        Name shown in reports; defaults to ``kind``.
    mutation : dict
        Deliberate defects for negative controls only: ``step_scale`` (float),
        ``positive_part`` (bool), ``f_star_shift`` (float added to f_i_star),
        ``f_star_noise`` (std of Gaussian noise added to f_i_star), ``lam_shift``
        (IAM uses lam_t = t + lam_shift, wrong averaging weights), ``lam_constant``
        (IAM uses this constant lam while claiming lam_t = t). A mutated method
        keeps the claims of its kind, so the checkers test it against them.
    """

    kind: str
    lam: object = None
    step_size: float = None
    momentum: float = 0.0
    max_step_size: float = math.inf
    lower_bound: object = None
    weight_decay: float = 0.0
    label: str = ""
    mutation: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in METHOD_NAMES:
            raise ValueError(
                f"unknown method {self.kind!r}; use one of {', '.join(METHOD_NAMES)}"
            )
        if self.kind == "iam" and self.lam != "t":
            raise ValueError(
                f"method 'iam' uses lam='t', got lam={self.lam!r}; "
                "use kind='iam_const' for a constant lam"
            )
        if self.kind == "iam_const":
            if isinstance(self.lam, str) or self.lam is None or not self.lam >= 0:
                raise ValueError(
                    f"iam_const needs a constant lam >= 0, got lam={self.lam!r}"
                )
        if self.step_size is not None and not (
            math.isfinite(self.step_size) and self.step_size > 0
        ):
            raise ValueError(
                f"step_size must be finite and > 0, got {self.step_size!r}"
            )
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not self.max_step_size > 0:
            raise ValueError(
                f"max_step_size must be > 0 (inf for no cap), got {self.max_step_size!r}"
            )
        if isinstance(self.lower_bound, str) and self.lower_bound != "mean":
            raise ValueError(
                f"lower_bound must be None, 'mean', a number or an array, "
                f"got {self.lower_bound!r}"
            )
        if not (math.isfinite(self.weight_decay) and 0.0 <= self.weight_decay < 1.0):
            raise ValueError(
                f"weight_decay must be in [0, 1), got {self.weight_decay!r}"
            )
        unknown = set(self.mutation) - {
            "step_scale", "positive_part", "f_star_shift", "f_star_noise", "lam_shift",
            "lam_constant",
        }
        if unknown:
            raise ValueError(f"unknown mutation keys {sorted(unknown)}")
        if not self.label:
            object.__setattr__(self, "label", self.kind)

    @property
    def exact(self):
        """True when the method is the idealized one the theory covers.

        A step cap, a lower bound in place of f_i(x_star) or weight decay changes the
        step, and S1/I1 in their stated form no longer follow, so such variants claim
        nothing. Mutations keep the claims on purpose: negative controls test them.
        """
        return (
            self.lower_bound is None
            and self.weight_decay == 0.0
            and math.isinf(self.max_step_size)
        )

    @property
    def claims(self):
        """Statements of the theory this method claims, as a tuple of ids."""
        return CLAIMS[self.kind] if self.exact else ()

    def describe(self):
        """Return the parameters as a JSON-ready dict."""
        return {
            "kind": self.kind,
            "label": self.label,
            "lam": self.lam,
            "step_size": self.step_size,
            "momentum": self.momentum,
            "max_step_size": None
            if math.isinf(self.max_step_size)
            else self.max_step_size,
            "lower_bound": _describe_lower_bound(self.lower_bound),
            "weight_decay": self.weight_decay,
            "mutation": dict(self.mutation),
        }


def _describe_lower_bound(value):
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        return f"per-sample array of shape {tuple(value.shape)}"
    return float(value)


def make_method(name, **params):
    """Build a ``Method`` from a CLI-style name.

    ``sps_star``; ``iam`` (lam = t); ``iam_const`` (constant lam, default 9);
    ``sgd`` (constant step, default 1 / (4 L_max)); ``sgd_momentum`` (default beta 0.9).
    Dashes are accepted in place of underscores, and ``sps`` for ``sps_star``.
    """
    key = str(name).strip().lower().replace("-", "_")
    key = {"sps": "sps_star", "sps*": "sps_star"}.get(key, key)
    if key not in METHOD_NAMES:
        raise ValueError(
            f"unknown method {name!r}; use one of {', '.join(METHOD_NAMES)}"
        )
    if key == "iam":
        params.setdefault("lam", "t")
    if key == "iam_const":
        params.setdefault("lam", 9.0)
    if key == "sgd_momentum":
        params.setdefault("momentum", 0.9)
    return Method(kind=key, **params)
