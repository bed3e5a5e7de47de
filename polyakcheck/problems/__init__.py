"""Problems: convex finite sums, their loss kernels and the data sets."""

from polyakcheck.problems.datasets import (
    BUNDLED, COMPATIBLE, load_dataset, load_svmlight,
)
from polyakcheck.problems.families import FAMILIES
from polyakcheck.problems.problem import ASSUMPTIONS, Problem
from polyakcheck.problems.synthetic import make_synthetic

__all__ = [
    "ASSUMPTIONS", "BUNDLED", "COMPATIBLE", "FAMILIES", "Problem", "load_dataset",
    "load_svmlight", "make_synthetic",
]
