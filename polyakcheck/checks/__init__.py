"""Checkers: each statement of the theory turned into a ``Verdict``."""

from polyakcheck.checks.anytime import anytime_verdicts, s2_bound
from polyakcheck.checks.claims import QUANTITIES, check_claim
from polyakcheck.checks.last_iterate import i5_bound, last_iterate_verdicts
from polyakcheck.checks.monotone import averaging_verdict, monotone_verdict
from polyakcheck.checks.verdict import STATUSES, Verdict

__all__ = [
    "QUANTITIES", "STATUSES", "Verdict", "anytime_verdicts", "averaging_verdict",
    "check_claim", "i5_bound", "last_iterate_verdicts", "monotone_verdict", "s2_bound",
]
