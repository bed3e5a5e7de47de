"""Tests of the bundled data sets, svmlight files and synthetic problems."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file

from polyakcheck.oracle import separating_direction, solve
from polyakcheck.problems.datasets import (
    BUNDLED,
    CLASSIFICATION_FAMILIES,
    COMPATIBLE,
    DEFAULT_LOGISTIC_REG,
    REGRESSION_FAMILIES,
    load_breast_cancer,
    load_dataset,
    load_diabetes,
    load_svmlight,
)
from polyakcheck.problems.families import FAMILIES, margin_infimum
from polyakcheck.problems.synthetic import make_synthetic

# ---------------------------------------------------------------- bundled sets

PAIRS = [(name, loss) for name, families in COMPATIBLE.items() for loss in families]


def test_bundled_names():
    assert set(BUNDLED) == {"diabetes", "breast_cancer", "digits", "wine", "iris", "linnerud"}
    assert set(COMPATIBLE) == set(BUNDLED)


@pytest.mark.parametrize("name, loss", PAIRS)
def test_every_compatible_pair_loads(name, loss):
    problem = load_dataset(name, loss=loss)

    assert problem.loss == loss
    assert problem.name == name
    assert problem.A.shape == (problem.n, problem.n_features)
    assert problem.d == problem.n_features * problem.n_classes
    assert not problem.sparse
    np.testing.assert_allclose(problem.A.mean(axis=0), 0.0, atol=1e-12)
    column_std = problem.A.std(axis=0)
    assert np.all((np.abs(column_std - 1.0) <= 1e-12) | (column_std == 0.0))
    classification = loss in CLASSIFICATION_FAMILIES or loss == "multinomial"
    expected_reg = DEFAULT_LOGISTIC_REG if classification else 0.0
    assert problem.reg == expected_reg


@pytest.mark.parametrize("name", BUNDLED)
def test_default_loss_is_first_compatible(name):
    assert load_dataset(name).loss == COMPATIBLE[name][0]


def test_defaults_unchanged():
    diabetes = load_dataset("diabetes")
    breast_cancer = load_dataset("breast_cancer")

    assert (diabetes.loss, diabetes.reg, diabetes.A.shape) == ("least_squares", 0.0, (442, 10))
    assert (breast_cancer.loss, breast_cancer.reg) == ("logistic", 1e-2)
    assert breast_cancer.A.shape == (569, 30)
    np.testing.assert_array_equal(diabetes.A, load_diabetes().A)
    np.testing.assert_array_equal(diabetes.b, load_diabetes().b)
    np.testing.assert_array_equal(breast_cancer.b, load_breast_cancer().b)
    assert abs(diabetes.b.mean()) <= 1e-12
    assert abs(diabetes.b.std() - 1.0) <= 1e-12


def test_reg_argument_overrides_default():
    assert load_dataset("breast_cancer", reg=0.5).reg == 0.5
    assert load_dataset("diabetes", loss="huber", reg=0.0, loss_param=0.5).loss_param == 0.5


@pytest.mark.parametrize("name", ["diabetes", "linnerud"])
def test_poisson_targets_are_counts(name):
    problem = load_dataset(name, loss="poisson")

    assert np.all(problem.b >= 0)
    np.testing.assert_array_equal(problem.b, np.round(problem.b))
    assert problem.b.max() >= 5


def test_diabetes_counts_range():
    counts = load_dataset("diabetes", loss="poisson").b
    assert counts.min() == 0.0
    assert counts.max() == 7.0


def test_linnerud_poisson_uses_chin_ups():
    problem = load_dataset("linnerud", loss="poisson")
    assert problem.A.shape == (20, 3)
    assert (problem.b.min(), problem.b.max()) == (1.0, 17.0)


@pytest.mark.parametrize(
    "name, positives",
    [("digits", 178 + 177 + 181 + 181 + 174), ("wine", 59), ("iris", 50), ("breast_cancer", 357)],
)
def test_binary_labels(name, positives):
    problem = load_dataset(name)

    assert set(np.unique(problem.b)) == {-1.0, 1.0}
    assert int(np.sum(problem.b == 1.0)) == positives


@pytest.mark.parametrize("name, loss", [("diabetes", "hinge"), ("iris", "least_squares")])
def test_incompatible_pair_raises(name, loss):
    with pytest.raises(ValueError) as excinfo:
        load_dataset(name, loss=loss)

    message = str(excinfo.value)
    assert repr(name) in message
    assert repr(loss) in message
    for family in COMPATIBLE[name]:
        assert family in message


def test_unknown_loss_raises():
    with pytest.raises(ValueError) as excinfo:
        load_dataset("diabetes", loss="cubic")

    assert "unknown loss 'cubic'" in str(excinfo.value)


def test_unknown_name_raises():
    with pytest.raises(ValueError) as excinfo:
        load_dataset("no_such_set")

    message = str(excinfo.value)
    assert "no_such_set" in message
    assert "diabetes" in message


@pytest.mark.parametrize("name, loss", [("linnerud", "absolute"), ("iris", "hinge"),
                                        ("wine", "squared_hinge"), ("linnerud", "poisson")])
def test_small_sets_solve(name, loss):
    solution = solve(load_dataset(name, loss=loss))

    assert solution.grad_norm <= 10 * solution.grad_norm_tol


# ---------------------------------------------------------------- svmlight files


def write_svmlight(path, labels, seed=0, n=30, d=8):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.4)
    y = np.asarray(labels, dtype=float)[rng.integers(0, len(labels), n)]
    y[: len(labels)] = labels
    dump_svmlight_file(X, y, str(path))
    return X, y


@pytest.mark.parametrize("labels", [[0, 1], [1, 2], [-1, 1]])
def test_svmlight_binary_labels(tmp_path, labels):
    path = tmp_path / "binary.svm"
    X, y = write_svmlight(path, labels)

    problem = load_svmlight(path, "logistic")

    assert problem.sparse
    assert problem.name == "binary"
    np.testing.assert_allclose(problem.A.toarray(), X)
    np.testing.assert_array_equal(problem.b, np.where(y == max(labels), 1.0, -1.0))
    assert problem.reg == DEFAULT_LOGISTIC_REG


def test_svmlight_dense_option(tmp_path):
    path = tmp_path / "binary.svm"
    X, _ = write_svmlight(path, [0, 1])

    problem = load_svmlight(path, "hinge", reg=0.1, dense=True)

    assert not problem.sparse
    np.testing.assert_allclose(problem.A, X)
    assert problem.reg == 0.1


def test_svmlight_multiclass_raises(tmp_path):
    path = tmp_path / "three.svm"
    write_svmlight(path, [1, 2, 3])

    with pytest.raises(ValueError) as excinfo:
        load_svmlight(path, "squared_hinge")

    message = str(excinfo.value)
    assert "3 distinct labels" in message
    assert str(path) in message
    assert "one class against the rest" in message


def test_svmlight_regression_targets(tmp_path):
    path = tmp_path / "regression.svm"
    rng = np.random.default_rng(1)
    X = rng.standard_normal((25, 4))
    y = rng.standard_normal(25)
    dump_svmlight_file(X, y, str(path))

    problem = load_svmlight(path, "huber")

    np.testing.assert_allclose(problem.b, y)
    assert problem.reg == 0.0
    assert sp.issparse(problem.A)


def test_svmlight_missing_file_names_path(tmp_path):
    path = tmp_path / "missing.svm"

    with pytest.raises(FileNotFoundError) as excinfo:
        load_svmlight(path, "logistic")

    assert str(path) in str(excinfo.value)


def test_load_dataset_accepts_path(tmp_path):
    path = tmp_path / "binary.svm"
    write_svmlight(path, [0, 1])

    inferred = load_dataset(str(path))
    chosen = load_dataset(path, loss="hinge", reg=0.2)

    assert inferred.loss == "logistic"
    assert inferred.sparse
    assert (chosen.loss, chosen.reg) == ("hinge", 0.2)


def test_svmlight_problem_solves(tmp_path):
    path = tmp_path / "binary.svm"
    write_svmlight(path, [0, 1], n=60)

    solution = solve(load_dataset(path, loss="squared_hinge"))

    assert solution.grad_norm <= 10 * solution.grad_norm_tol


# ---------------------------------------------------------------- synthetic problems

# f_i(x_star) that counts as 0 after solve: a few roundings of terms of size O(1).
INTERPOLATION_TOL = 1e-12


@pytest.mark.parametrize(
    "loss, n, d",
    [("least_squares", 60, 10), ("least_squares", 10, 30), ("absolute", 60, 5),
     ("huber", 60, 5), ("hinge", 80, 5), ("squared_hinge", 80, 5)],
)
def test_interpolation_zero_optimal_values(loss, n, d):
    problem = make_synthetic(loss, n=n, d=d, interpolate=True, seed=2)

    solution = solve(problem)

    assert np.max(np.abs(solution.f_i_star)) <= INTERPOLATION_TOL
    assert solution.grad_norm <= 10 * solution.grad_norm_tol


def test_interpolation_poisson_minimizes_every_term():
    # Poisson cannot reach f_i = 0; interpolation means f_i(x_star) = inf f_i.
    problem = make_synthetic("poisson", n=60, d=5, interpolate=True, seed=2)

    solution = solve(problem)

    np.testing.assert_allclose(
        solution.f_i_star, margin_infimum("poisson", problem.b), rtol=0, atol=1e-12
    )


def test_interpolation_logistic_needs_reg():
    with pytest.raises(ValueError) as excinfo:
        make_synthetic("logistic", interpolate=True, reg=0.0)

    assert "reg > 0" in str(excinfo.value)


def test_interpolation_logistic_separable():
    problem = make_synthetic("logistic", n=80, d=5, interpolate=True, reg=1e-2)

    solution = solve(problem)

    assert separating_direction(problem) is not None
    assert solution.grad_norm <= 10 * solution.grad_norm_tol


def test_interpolating_labels_separable_with_margin():
    problem = make_synthetic("hinge", n=200, d=6, interpolate=True, seed=5)
    rng = np.random.default_rng(5)
    rng.standard_normal((200, 6))
    x_true = rng.standard_normal(6) / np.sqrt(6)
    u = x_true / np.linalg.norm(x_true)

    signed = problem.b * (problem.A @ u)

    assert signed.min() > 0


@pytest.mark.parametrize("condition", [10.0, 1e4])
def test_condition_number_matches(condition):
    # The sample A^T A is within a factor cond(Z^T Z) of the request; for Gaussian Z
    # with n = 4000, d = 10 that factor is near ((1 + 0.05) / (1 - 0.05))^2 = 1.22,
    # and the test allows 2.
    problem = make_synthetic(n=4000, d=10, condition=condition, seed=1)

    measured = np.linalg.cond(problem.A.T @ problem.A)

    assert condition / 2 <= measured <= 2 * condition


@pytest.mark.parametrize("correlation", [0.6, -0.4])
def test_correlation_in_sample_covariance(correlation):
    problem = make_synthetic(n=20000, d=5, correlation=correlation, seed=3)

    sample = np.corrcoef(problem.A, rowvar=False)

    for lag in (1, 2):
        expected = correlation**lag
        measured = np.diag(sample, k=lag)
        # Standard error of a sample correlation is about (1 - rho^2) / sqrt(n) < 0.01.
        np.testing.assert_allclose(measured, expected, atol=0.03)


def test_seed_reproduces():
    first = make_synthetic("logistic", n=50, d=7, noise=0.1, seed=11)
    again = make_synthetic("logistic", n=50, d=7, noise=0.1, seed=11)
    other = make_synthetic("logistic", n=50, d=7, noise=0.1, seed=12)

    np.testing.assert_array_equal(first.A, again.A)
    np.testing.assert_array_equal(first.b, again.b)
    assert not np.array_equal(first.A, other.A)


def test_shapes_both_regimes():
    wide = make_synthetic(n=10, d=40)
    tall = make_synthetic(n=300, d=4)

    assert wide.A.shape == (10, 40)
    assert tall.A.shape == (300, 4)
    assert wide.name == "synthetic-least_squares-n10-d40-seed0"


def test_offset_spread_grows_with_scale():
    # With noise = 0 and reg = 0, f_i(x_star) = nu^2 r_i^2 / 2 for the residual r of
    # the fixed offset vector, so doubling nu multiplies every f_i(x_star) by 4.
    small = solve(make_synthetic(n=100, d=5, offset_scale=0.5, seed=4))
    large = solve(make_synthetic(n=100, d=5, offset_scale=1.0, seed=4))

    np.testing.assert_allclose(large.f_i_star, 4.0 * small.f_i_star, rtol=1e-9, atol=1e-15)
    assert np.std(large.f_i_star) > 0


def test_label_noise_flips_fraction():
    clean = make_synthetic("logistic", n=5000, d=5, seed=6)
    noisy = make_synthetic("logistic", n=5000, d=5, noise=0.2, seed=6)

    flipped = np.mean(clean.b != noisy.b)

    np.testing.assert_array_equal(clean.A, noisy.A)
    assert abs(flipped - 0.2) <= 0.02


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"n": 0}, "n=0"),
        ({"d": -3}, "d=-3"),
        ({"condition": 0.5}, "condition=0.5"),
        ({"correlation": 1.0}, "correlation=1.0"),
        ({"correlation": -1.5}, "correlation=-1.5"),
        ({"noise": -0.1}, "noise=-0.1"),
        ({"loss": "logistic", "noise": 0.7}, "noise=0.7"),
        ({"loss": "hinge", "offset_scale": 1.0}, "offset_scale=1.0"),
        ({"loss": "poisson", "noise": 0.1}, "noise=0.1"),
        ({"interpolate": True, "noise": 0.1}, "noise=0.1"),
        ({"loss": "cubic"}, "'cubic'"),
    ],
)
def test_invalid_parameters_raise(kwargs, fragment):
    with pytest.raises(ValueError) as excinfo:
        make_synthetic(**kwargs)

    assert fragment in str(excinfo.value)


@pytest.mark.parametrize("loss", sorted(set(FAMILIES) - {"multinomial"}))
def test_every_family_generates(loss):
    problem = make_synthetic(loss, n=40, d=4, seed=9)

    assert problem.loss == loss
    if loss in REGRESSION_FAMILIES and loss != "poisson":
        assert np.all(np.isfinite(problem.b))
    if loss == "poisson":
        np.testing.assert_array_equal(problem.b, np.round(problem.b))


def test_synthetic_multinomial_is_rejected():
    with pytest.raises(ValueError, match="load_dataset"):
        make_synthetic(loss="multinomial")
