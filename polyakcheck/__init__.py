"""polyakcheck: numerical checks of the theory of stochastic Polyak step sizes.

The pipeline is ``load_dataset`` or ``Problem`` -> ``solve`` -> ``run`` -> checkers,
with ``verify`` running all of it for one problem.
"""

__version__ = "0.1.0"

from polyakcheck.checks import Verdict, check_claim
from polyakcheck.methods import Method, make_method
from polyakcheck.oracle import OracleError, solve
from polyakcheck.problems import Problem, load_dataset, load_svmlight, make_synthetic
from polyakcheck.run import run, run_seeds
from polyakcheck.solution import Solution
from polyakcheck.trace import Trace
from polyakcheck.verification import Verification
from polyakcheck.verify import verify

__all__ = [
    "Method", "OracleError", "Problem", "Solution", "Trace", "Verdict", "Verification",
    "check_claim", "load_dataset", "load_svmlight", "make_method", "make_synthetic", "run",
    "run_seeds", "solve", "verify",
]
