"""The ``Verification`` dataclass: everything one ``verify`` call measured and decided."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verification:
    """Result of the whole pipeline on one problem.

    Attributes
    ----------
    problem : dict
        ``name``, ``loss``, ``n``, ``d``, ``reg`` and ``assumptions``.
    solution : dict
        ``f_star``, ``x_star_norm``, ``D`` and the oracle certificate
        (``Solution.certificate()``).
    constants : dict
        Constant name -> {"value": float, "how": str}: how each was obtained.
    traces : dict
        Method label -> list of ``Trace`` (one per seed, same seeds for every method).
    verdicts : list of Verdict
    settings : dict
        ``steps``, ``batch_size``, ``seeds``, ``confidence``, ``sampling``.
    seconds : float
        Wall time of solve, runs and checks.
    rates : list of dict
        Fitted tail slopes per method (``checks.rates.fit_rate``).
    """

    problem: dict
    solution: dict
    constants: dict
    traces: dict
    verdicts: list
    settings: dict
    seconds: float
    rates: list = field(default_factory=list)

    @property
    def violated(self):
        """True when any verdict is ``violated``."""
        return any(v.status == "violated" for v in self.verdicts)
