"""Problems: convex finite sums, their loss kernels and the bundled data sets."""

from polyakcheck.problems.datasets import BUNDLED, load_dataset
from polyakcheck.problems.problem import ASSUMPTIONS, Problem

__all__ = ["ASSUMPTIONS", "BUNDLED", "Problem", "load_dataset"]
