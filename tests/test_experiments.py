"""The ``reproduce`` experiments: quick runs, reports, determinism, softmax kernels."""

import argparse
import json
import math

import numpy as np
import pytest
import scipy.special

from polyakcheck import solve
from polyakcheck.experiments import REGISTRY, add_reproduce_parser, cmd_reproduce
from polyakcheck.experiments import common, distill, role_of_f_star, softmax


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """Run every experiment's quick mode twice with seed 0, in two directories."""
    runs = {}
    for name, run_experiment in REGISTRY.items():
        outcomes = []
        for attempt in ("first", "second"):
            out_dir = tmp_path_factory.mktemp(f"{name}-{attempt}")
            outcome = run_experiment(quick=True, seed=0, out_dir=out_dir)
            outcomes.append((out_dir, outcome))
        runs[name] = outcomes
    return runs


# --------------------------------------------------------------- quick runs


@pytest.mark.parametrize("name", list(REGISTRY))
def test_quick_run_writes_reports(quick_runs, name):
    out_dir, outcome = quick_runs[name][0]
    html_path = out_dir / f"{name}.html"
    json_path = out_dir / f"{name}.json"
    assert html_path.is_file()
    assert json_path.is_file()
    assert outcome["html_path"] == str(html_path)
    assert outcome["json_path"] == str(json_path)
    document = json.loads(json_path.read_text())
    assert document["format"] == common.JSON_FORMAT
    assert document["experiment"] == name
    assert document["quick"] is True
    assert document["claims"] == json.loads(json.dumps(outcome["claims"]))


@pytest.mark.parametrize("name", list(REGISTRY))
def test_quick_run_claims_table(quick_runs, name):
    _, outcome = quick_runs[name][0]
    claims = outcome["claims"]
    assert claims
    for claim in claims:
        assert set(claim) == {"claim", "measured", "rule", "matched"}
        assert claim["claim"]
        assert claim["rule"]
        assert claim["matched"] in (True, False, None)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_html_is_self_contained(quick_runs, name):
    out_dir, _ = quick_runs[name][0]
    html = (out_dir / f"{name}.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "<svg" in html
    assert "<script" not in html.lower()
    links = {
        link for link in _urls(html)
        if not link.startswith("http://www.w3.org/")
    }
    assert links == set()
    assert "<td class=\"matched-" in html


def _urls(text):
    import re

    return set(re.findall(r"https?://[^\s\"'<>)]+", text))


@pytest.mark.parametrize("name", list(REGISTRY))
def test_same_seed_same_numbers(quick_runs, name):
    (first_dir, _), (second_dir, _) = quick_runs[name]
    first = json.loads((first_dir / f"{name}.json").read_text())
    second = json.loads((second_dir / f"{name}.json").read_text())
    assert common.deterministic_part(first) == common.deterministic_part(second)
    dropped = set(first) - set(common.deterministic_part(first))
    assert dropped == set(common.VOLATILE_KEYS)


def test_deterministic_part_drops_volatile_keys():
    document = {"claims": [1], "timing": {"total": 1.0}, "provenance": {"x": 1}}
    assert common.deterministic_part(document) == {"claims": [1]}


# ------------------------------------------------------------------ CLI


def _parse(argv):
    parser = argparse.ArgumentParser(prog="polyakcheck")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_reproduce_parser(subparsers)
    return parser.parse_args(argv)


def _fake_experiment(matched):
    def run_experiment(quick, seed, out_dir, progress=False):
        claim = common.make_claim("fake claim", {"value": 1.0}, "always", matched)
        return {"experiment": "fake", "claims": [claim], "html_path": "x.html",
                "json_path": "x.json", "seconds": 0.0}
    return run_experiment


def test_cmd_reproduce_strict_exit(monkeypatch, capsys):
    monkeypatch.setitem(REGISTRY, "diabetes", _fake_experiment(False))
    args = _parse(["reproduce", "diabetes", "--quick", "--quiet"])
    assert cmd_reproduce(args) == 0
    args = _parse(["reproduce", "diabetes", "--quick", "--quiet", "--strict"])
    assert cmd_reproduce(args) == 1
    printed = capsys.readouterr().out
    assert "[NO] fake claim" in printed
    assert "0 matched, 1 not matched" in printed


def test_cmd_reproduce_all(monkeypatch, capsys):
    for name in REGISTRY:
        monkeypatch.setitem(REGISTRY, name, _fake_experiment(True))
    args = _parse(["reproduce", "all", "--quick", "--quiet", "--strict"])
    assert cmd_reproduce(args) == 0
    printed = capsys.readouterr().out
    for name in REGISTRY:
        assert f"== {name}: 1 matched" in printed


def test_cmd_reproduce_rejects_negative_seed():
    args = _parse(["reproduce", "diabetes", "--seed", "-1"])
    with pytest.raises(ValueError, match="--seed -1"):
        cmd_reproduce(args)


def test_parser_rejects_unknown_name():
    with pytest.raises(SystemExit):
        _parse(["reproduce", "no-such-experiment"])


# ------------------------------------------------------------ softmax kernels


def _softmax_case(seed=0, n=9, d=5, classes=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[2, 1] = 0.0
    y = rng.integers(0, classes, size=n).astype(np.int64)
    W = rng.standard_normal((d, classes))
    return X, y, W


def _reference_loss(X, y, W, reg, batch):
    logits = X[batch] @ W
    label_logits = logits[np.arange(len(batch)), y[batch]]
    cross_entropy = scipy.special.logsumexp(logits, axis=1) - label_logits
    return cross_entropy.mean() + 0.5 * reg * np.sum(W * W)


def test_softmax_loss_matches_scipy():
    X, y, W = _softmax_case()
    reg = 0.3
    batch = np.array([0, 3, 3, 7, 1], dtype=np.int64)
    G = np.empty_like(W)
    value = softmax.batch_loss_grad(X, y, W, reg, batch, G, np.empty(W.shape[1]))
    assert value == pytest.approx(_reference_loss(X, y, W, reg, batch), rel=1e-13)
    full = softmax.dataset_loss(X, y, W, reg)
    everything = np.arange(X.shape[0], dtype=np.int64)
    assert full == pytest.approx(_reference_loss(X, y, W, reg, everything), rel=1e-13)


def test_softmax_loss_large_logits_finite():
    X, y, W = _softmax_case()
    W = 400.0 * W
    batch = np.arange(X.shape[0], dtype=np.int64)
    G = np.empty_like(W)
    value = softmax.batch_loss_grad(X, y, W, 0.0, batch, G, np.empty(W.shape[1]))
    assert math.isfinite(value)
    assert np.all(np.isfinite(G))
    assert value == pytest.approx(_reference_loss(X, y, W, 0.0, batch), rel=1e-12)


def test_softmax_gradient_matches_finite_differences():
    X, y, W = _softmax_case(seed=1)
    reg = 0.05
    batch = np.array([4, 0, 8, 8, 2], dtype=np.int64)
    logits = np.empty(W.shape[1])
    G = np.empty_like(W)
    softmax.batch_loss_grad(X, y, W, reg, batch, G, logits)
    h = 1e-6
    numeric = np.empty_like(W)
    scratch = np.empty_like(W)
    for j in range(W.shape[0]):
        for k in range(W.shape[1]):
            plus, minus = W.copy(), W.copy()
            plus[j, k] += h
            minus[j, k] -= h
            f_plus = softmax.batch_loss_grad(X, y, plus, reg, batch, scratch, logits)
            f_minus = softmax.batch_loss_grad(X, y, minus, reg, batch, scratch, logits)
            numeric[j, k] = (f_plus - f_minus) / (2 * h)
    np.testing.assert_allclose(G, numeric, rtol=1e-6, atol=1e-8)


def test_predict_is_argmax():
    X, _, W = _softmax_case()
    np.testing.assert_array_equal(softmax.predict(X, W), np.argmax(X @ W, axis=1))


# ----------------------------------------------------- Polyak step and loops


def test_polyak_step_identity_is_iam_step():
    rng = np.random.default_rng(3)
    G, Z, W = (rng.standard_normal((4, 3)) for _ in range(3))
    loss, target = 1.7, 0.2
    step = softmax.polyak_step(loss, target, G, Z, W, np.ones_like(G))
    expected = max(loss - target + np.sum(G * (Z - W)), 0.0) / np.sum(G * G)
    assert step == pytest.approx(expected, rel=1e-14)


def test_polyak_step_zero_cases():
    G = np.ones((2, 2))
    Z = W = np.zeros((2, 2))
    assert softmax.polyak_step(0.1, 0.5, G, Z, W, np.ones_like(G)) == 0.0
    assert softmax.polyak_step(0.5, 0.1, np.zeros((2, 2)), Z, W, np.ones_like(G)) == 0.0


def _reference_iam(X, y, reg, W0, samples, target, lam, adam, beta2=0.999, eps=1e-8):
    """IAM and Adam-IAM written out in numpy from their update formulas."""
    W, Z = W0.copy(), W0.copy()
    v = np.zeros_like(W0)
    n = X.shape[0]
    steps = []
    for t, batch in enumerate(samples):
        logits = X[batch] @ W
        lse = scipy.special.logsumexp(logits, axis=1)
        label_logits = logits[np.arange(len(batch)), y[batch]]
        loss = np.mean(lse - label_logits) + 0.5 * reg * np.sum(W * W)
        P = np.exp(logits - lse[:, None])
        P[np.arange(len(batch)), y[batch]] -= 1.0
        G = X[batch].T @ P / len(batch) + reg * W
        if adam:
            v = beta2 * v + (1 - beta2) * G**2
            Dinv = 1.0 / (np.sqrt(v / (1 - beta2 ** (t + 1))) + eps)
        else:
            Dinv = np.ones_like(G)
        numerator = loss - target[batch].mean() + np.sum(G * (Z - W))
        step = max(numerator, 0.0) / np.sum(G * Dinv * G)
        steps.append(step)
        Z = Z - step * Dinv * G
        W = (lam * W + Z) / (1 + lam)
    assert n > 0
    return W, np.array(steps)


@pytest.mark.parametrize(
    "preconditioner", [softmax.PRECONDITIONER_IDENTITY, softmax.PRECONDITIONER_ADAM]
)
def test_train_iam_matches_numpy(preconditioner):
    X, y, _ = _softmax_case(seed=2, n=20, d=6, classes=3)
    rng = np.random.default_rng(5)
    samples = rng.integers(0, 20, size=(12, 4)).astype(np.int64)
    target = 0.05 * rng.random(20)
    W0 = np.zeros((6, 3))
    adam = preconditioner == softmax.PRECONDITIONER_ADAM
    W, losses, steps = softmax.train_iam(
        X, y, 0.01, W0, samples, target, softmax.LAM_CONSTANT, 9.0, preconditioner,
        0.999, 1e-8, math.inf, 4,
    )
    W_ref, steps_ref = _reference_iam(X, y, 0.01, W0, samples, target, 9.0, adam)
    np.testing.assert_allclose(steps, steps_ref, rtol=1e-10)
    np.testing.assert_allclose(W, W_ref, rtol=1e-10, atol=1e-13)
    assert losses.shape == (4,)
    assert losses[0] == pytest.approx(math.log(3.0), rel=1e-14)
    assert losses[-1] == pytest.approx(softmax.dataset_loss(X, y, W, 0.01), rel=1e-14)


def test_adam_iam_with_uniform_metric_is_iam():
    """A uniform D = c I scales the step by c and the direction by 1 / c.

    With eps = 1e12, D = sqrt(v_hat) + eps equals eps I to about 1e-12 relative, so
    Adam-IAM must move the anchor and the iterate exactly as IAM (D = I) does.
    """
    X, y, _ = _softmax_case(seed=4, n=30, d=4, classes=3)
    samples = np.random.default_rng(6).integers(0, 30, size=(25, 5)).astype(np.int64)
    target = np.full(30, 0.02)
    W0 = np.zeros((4, 3))
    eps = 1e12
    W_plain, losses_plain, steps_plain = softmax.train_iam(
        X, y, 0.01, W0, samples, target, softmax.LAM_CONSTANT, 9.0,
        softmax.PRECONDITIONER_IDENTITY, 0.999, 1e-8, math.inf, 5,
    )
    W_adam, losses_adam, steps_adam = softmax.train_iam(
        X, y, 0.01, W0, samples, target, softmax.LAM_CONSTANT, 9.0,
        softmax.PRECONDITIONER_ADAM, 0.999, eps, math.inf, 5,
    )
    assert np.count_nonzero(steps_plain) > 10
    np.testing.assert_allclose(steps_adam, eps * steps_plain, rtol=1e-9)
    np.testing.assert_allclose(W_adam, W_plain, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(losses_adam, losses_plain, rtol=1e-9)


def test_train_iam_step_cap():
    X, y, _ = _softmax_case(seed=2, n=20, d=6, classes=3)
    samples = np.random.default_rng(1).integers(0, 20, size=(10, 2)).astype(np.int64)
    _, _, steps = softmax.train_iam(
        X, y, 0.0, np.zeros((6, 3)), samples, np.zeros(20), softmax.LAM_T, 0.0,
        softmax.PRECONDITIONER_IDENTITY, 0.999, 1e-8, 0.01, 5,
    )
    assert np.max(steps) <= 0.01


def test_sgd_momentum_matches_numpy():
    X, y, _ = _softmax_case(seed=7, n=12, d=3, classes=3)
    samples = np.random.default_rng(2).integers(0, 12, size=(6, 3)).astype(np.int64)
    rates = np.linspace(0.1, 0.05, 6)
    W, losses = softmax.train_sgd_momentum(
        X, y, 0.1, np.zeros((3, 3)), samples, rates, 0.9, 3
    )
    W_ref = np.zeros((3, 3))
    buf = np.zeros((3, 3))
    for t, batch in enumerate(samples):
        G = _reference_gradient(X, y, W_ref, 0.1, batch)
        buf = 0.9 * buf + G
        W_ref = W_ref - rates[t] * buf
    np.testing.assert_allclose(W, W_ref, rtol=1e-12)
    assert losses.shape == (3,)


def test_adam_matches_numpy():
    X, y, _ = _softmax_case(seed=8, n=12, d=3, classes=3)
    samples = np.random.default_rng(3).integers(0, 12, size=(6, 3)).astype(np.int64)
    rates = np.full(6, 0.01)
    W, _ = softmax.train_adam(
        X, y, 0.0, np.zeros((3, 3)), samples, rates, 0.9, 0.999, 1e-8, 6
    )
    W_ref = np.zeros((3, 3))
    m = np.zeros((3, 3))
    v = np.zeros((3, 3))
    for t, batch in enumerate(samples):
        G = _reference_gradient(X, y, W_ref, 0.0, batch)
        m = 0.9 * m + 0.1 * G
        v = 0.999 * v + 0.001 * G**2
        m_hat = m / (1 - 0.9 ** (t + 1))
        v_hat = v / (1 - 0.999 ** (t + 1))
        W_ref = W_ref - rates[t] * m_hat / (np.sqrt(v_hat) + 1e-8)
    np.testing.assert_allclose(W, W_ref, rtol=1e-12)


def _reference_gradient(X, y, W, reg, batch):
    logits = X[batch] @ W
    P = scipy.special.softmax(logits, axis=1)
    P[np.arange(len(batch)), y[batch]] -= 1.0
    return X[batch].T @ P / len(batch) + reg * W


# ------------------------------------------------------- experiment helpers


def test_learning_rate_schedules():
    constant = distill.learning_rates(0.3, "constant", 100)
    np.testing.assert_array_equal(constant, np.full(100, 0.3))
    rates = distill.learning_rates(0.3, "warmup-cosine", 100)
    warmup = round(distill.WARMUP_FRACTION * 100)
    assert rates[0] == pytest.approx(0.3 / warmup)
    assert rates[warmup - 1] == pytest.approx(0.3)
    assert rates[warmup] == pytest.approx(0.3)
    assert np.all(np.diff(rates[warmup:]) <= 0)
    assert rates[-1] < 1e-3 * 0.3
    with pytest.raises(ValueError, match="unknown schedule"):
        distill.learning_rates(0.3, "step", 100)


def test_student_optimum_gradient_small():
    data = distill.load_data(0)
    optimum = distill.student_optimum(data["X_train"], data["y_train"], 1e-2)
    assert optimum["grad_norm"] < 1e-6
    value = softmax.dataset_loss(data["X_train"], data["y_train"], optimum["W"], 1e-2)
    assert value == pytest.approx(optimum["loss"], rel=1e-12)
    sample_mean = np.mean(optimum["sample_values"])
    assert sample_mean == pytest.approx(optimum["loss"], rel=1e-12)


@pytest.mark.parametrize("nu", [0.0, 0.5, 3.0])
def test_instance_offsets_keep_minimizer(nu):
    problem, x_true = role_of_f_star.make_instance(60, 5, nu, seed=11)
    solution = solve(problem)
    np.testing.assert_allclose(solution.x_star, x_true, atol=1e-9)
    assert solution.f_star == pytest.approx(nu**2 / 2, abs=1e-12)
    residual = problem.A @ x_true - problem.b
    np.testing.assert_allclose(solution.f_i_star, 0.5 * residual**2, atol=1e-12)


def test_instance_rejects_wide_matrix():
    with pytest.raises(ValueError, match="n > d"):
        role_of_f_star.make_instance(5, 5, 1.0, seed=0)


def test_plateau_step():
    t = np.array([1, 2, 4, 8, 16])
    assert role_of_f_star.plateau_step(t, np.array([1.0, 0.5, 0.11, 0.1, 0.1])) == 4
    assert role_of_f_star.plateau_step(t, np.array([1.0, 0.5, 0.25, 0.12, 0.05])) == 16
    diverged = np.array([1.0, 1.0, 1.0, 1.0, np.nan])
    assert role_of_f_star.plateau_step(t, diverged) is None


def test_ratio_edge_cases():
    assert common.ratio(1.0, 2.0) == 0.5
    assert common.ratio(1.0, 0.0) == math.inf
    assert math.isnan(common.ratio(0.0, 0.0))
    assert common.finite_or_inf(math.nan) == math.inf
    assert common.finite_or_inf(-math.inf) == math.inf
