"""The ``Verdict`` dataclass: what one checker concluded about one statement."""

from dataclasses import dataclass, field

HOLDS = "holds"
VIOLATED = "violated"
INCONCLUSIVE = "inconclusive"
NOT_APPLICABLE = "not applicable"
STATUSES = (HOLDS, VIOLATED, INCONCLUSIVE, NOT_APPLICABLE)


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking one statement for one method on one problem.

    Attributes
    ----------
    statement : str
        Id of the statement, for example ``"S1"`` or ``"S4b"``.
    title : str
        One-line description of the statement with its constants.
    method : str
        Label of the method checked.
    status : str
        One of ``STATUSES``.
    margin : float
        Relative slack at the worst point: (bound - measured) / bound, where for an
        expectation bound ``measured`` is the upper confidence limit (for ``holds``) or
        the lower one (for ``violated``), and for S1/I1 the bound is the right side plus
        its rounding slack. Negative means the bound is exceeded there.
    where : str
        The worst step or checkpoint, for example ``"t=1024"``.
    measured : float
        Measured value at ``where`` (the seed mean for expectation bounds).
    bound : float
        Value of the bound at ``where``.
    tolerance : float
        Absolute slack allowed at ``where`` and what it comes from (see ``message``).
    seeds : tuple of int
        Seeds the verdict rests on.
    confidence : float
        Family-wise confidence level of the statistical decision (1.0 for the
        almost-sure checks, which are exact up to the stated rounding slack).
    message : str
        Plain-sentence explanation, including the replay command for a violation.
    series : dict
        Per-checkpoint arrays for the report: ``t``, ``mean``, ``lower``, ``upper``,
        ``bound`` (lists of float), empty for step-wise checks.
    tightness : float
        max over checkpoints of (seed mean) / bound: how close the method comes to the
        bound (1 means it reaches it); NaN for step-wise checks.
    """

    statement: str
    title: str
    method: str
    status: str
    margin: float
    where: str
    measured: float
    bound: float
    tolerance: float
    seeds: tuple
    confidence: float
    message: str
    series: dict = field(default_factory=dict)
    tightness: float = float("nan")

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}")

    def to_dict(self):
        """Return the verdict as a JSON-ready dict."""
        return {
            "statement": self.statement,
            "title": self.title,
            "method": self.method,
            "status": self.status,
            "margin": _num(self.margin),
            "where": self.where,
            "measured": _num(self.measured),
            "bound": _num(self.bound),
            "tolerance": _num(self.tolerance),
            "seeds": [int(s) for s in self.seeds],
            "confidence": float(self.confidence),
            "message": self.message,
            "tightness": _num(self.tightness),
            "series": {k: [_num(v) for v in vals] for k, vals in self.series.items()},
        }


def _num(value):
    if value is None:
        return None
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return value
