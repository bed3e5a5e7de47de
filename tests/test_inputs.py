"""Invalid input raises a clear error that names the value."""

import numpy as np
import pytest

from polyakcheck import Method, Problem, make_method, run, solve, verify


def test_wrong_shapes():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        Problem("p", "least_squares", np.ones((3, 2)), np.ones(4))
    with pytest.raises(ValueError, match="2-D"):
        Problem("p", "least_squares", np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"x0 must have shape \(2,\)"):
        Problem("p", "least_squares", np.ones((3, 2)), np.ones(3), x0=np.ones(3))


def test_nan_in_data():
    A = np.ones((3, 2))
    A[1, 0] = np.nan
    with pytest.raises(ValueError, match="row 1, column 0: nan"):
        Problem("p", "least_squares", A, np.ones(3))
    with pytest.raises(ValueError, match="index 2"):
        Problem("p", "least_squares", np.ones((3, 2)), np.array([1.0, 2.0, np.inf]))


def test_zero_samples():
    with pytest.raises(ValueError, match="zero samples"):
        Problem("p", "least_squares", np.ones((0, 2)), np.ones(0))


def test_bad_labels_and_reg():
    with pytest.raises(ValueError, match="2\\*y - 1"):
        Problem("p", "logistic", np.ones((2, 2)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="reg must be"):
        Problem("p", "least_squares", np.ones((2, 2)), np.ones(2), reg=-1.0)
    with pytest.raises(ValueError, match="unknown loss 'hinge2'"):
        Problem("p", "hinge2", np.ones((2, 2)), np.ones(2))


def test_negative_step_count(diabetes):
    problem, solution = diabetes
    with pytest.raises(ValueError, match="steps must be >= 1, got -5"):
        run(problem, solution, "sps_star", -5)
    with pytest.raises(TypeError, match="steps must be an integer"):
        run(problem, solution, "sps_star", 2.5)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        run(problem, solution, "sps_star", 10, batch_size=0)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        verify(problem, steps=-1, solution=solution)


def test_unknown_method(diabetes):
    problem, solution = diabetes
    with pytest.raises(ValueError, match="unknown method 'adam'"):
        make_method("adam")
    with pytest.raises(ValueError, match="unknown method 'adam'"):
        run(problem, solution, "adam", 10)
    with pytest.raises(ValueError, match="lam=0.5"):
        Method("iam", lam=0.5)


def test_mismatched_solution(diabetes, breast_cancer):
    problem, _ = diabetes
    _, other = breast_cancer
    with pytest.raises(ValueError, match="do not match the problem"):
        run(problem, other, "sps_star", 10)
    with pytest.raises(TypeError, match="Problem"):
        solve("diabetes")


def test_batch_larger_than_n_warns(diabetes, caplog):
    problem, solution = diabetes
    with caplog.at_level("WARNING", logger="polyakcheck.verify"):
        verify(problem, methods=["sps_star"], steps=5, batch_size=1000, seeds=2,
               solution=solution)
    assert "batch_size 1000 exceeds n = 442" in caplog.text
