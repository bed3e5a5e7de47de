"""The ``Solution`` dataclass: the certified minimizer of a ``Problem``."""

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Solution:
    """Minimizer x_star of f with the per-sample optimal values f_i(x_star).

    Attributes
    ----------
    x_star : ndarray, shape (d,)
        The minimizer every check measures against.
    f_star : float
        f(x_star), the mean of ``f_i_star``.
    f_i_star : ndarray, shape (n,)
        f_i(x_star) for every sample, all evaluated at the same ``x_star``.
    grad_norm : float
        Certificate after polishing: ||grad f(x_star)||_2 for a differentiable loss, or
        the distance from 0 to the subdifferential of f at x_star for hinge and
        absolute loss (``info["certificate"]`` names which).
    grad_norm_tol : float
        Float64 rounding floor of ``grad_norm``: a residual at or below it is as small
        as float64 evaluation of the gradient can show.
    solver : str
        cvxpy solver that produced the starting point of the polish.
    solver_status : str
        Status that cvxpy reported.
    polish_steps : int
        Newton steps taken after the cvxpy solve.
    solve_seconds : float
        Wall time of solve plus polish.
    """

    x_star: np.ndarray
    f_star: float
    f_i_star: np.ndarray
    grad_norm: float
    grad_norm_tol: float
    solver: str
    solver_status: str
    polish_steps: int = 0
    solve_seconds: float = 0.0
    info: dict = field(default_factory=dict)

    def certificate(self):
        """Return the certificate as a JSON-ready dict."""
        return {
            "grad_norm": float(self.grad_norm),
            "grad_norm_tol": float(self.grad_norm_tol),
            "solver": self.solver,
            "solver_status": self.solver_status,
            "polish_steps": int(self.polish_steps),
            "solve_seconds": float(self.solve_seconds),
        }
