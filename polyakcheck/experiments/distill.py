"""``reproduce distill``: black-box distillation of a digits classifier with IAM.

A teacher (scikit-learn's ``MLPClassifier``, one hidden layer) is trained on the
training split of scikit-learn's bundled digits set. The student is multinomial
logistic regression (softmax, weights W of shape (d, K), small L2 term), a convex
problem. The student gets neither the teacher's weights nor its outputs on other data.
The only thing IAM takes from the teacher is its loss on each training batch,

    T_S = mean_{i in S} -log p_teacher(y_i | x_i),

the cross-entropy of the teacher's predicted probabilities on the batch's labels
(not a KL divergence to the teacher), which stands in for f_S(x*).

IAM and Adam-preconditioned IAM run untuned; SGD with momentum and Adam get their
learning rate tuned on a grid, with a constant and with a warm-up plus cosine
schedule. The report compares training loss, learning rates and test accuracy, and
counts the runs and wall time that the tuning took.
"""

import logging
import math
import time
import warnings

import numpy as np
import scipy.optimize
import scipy.special
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from polyakcheck.experiments import common, softmax

logger = logging.getLogger(__name__)

NAME = "distill"
BATCH_SIZE = 32
TEST_FRACTION = 0.25
STUDENT_REG = 1e-3
TEACHER_ALPHA = 1.0
IAM_LAM = 9.0
MOMENTUM = 0.9
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPS = 1e-8
WARMUP_FRACTION = 0.05
SGDM_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
ADAM_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
SCHEDULES = ("constant", "warmup-cosine")
# Smallest teacher probability used in -log p, so that a probability of 0 gives a
# finite loss.
MIN_PROBABILITY = 1e-300
# Claim rules: training loss within this ratio, test accuracy within this many
# percentage points, learning rate within this factor.
LOSS_RATIO = 1.1
# Ratio of final suboptimalities within which two methods count as equally fast.
SPEED_FACTOR = 2.0
ACCURACY_POINTS = 1.0
LEARNING_RATE_FACTOR = 4.0
MODES = {
    "full": {
        "epochs": 30, "seeds": 3, "teacher_hidden": (128,), "teacher_max_iter": 500,
        "teacher_may_stop_early": False,
    },
    "quick": {
        "epochs": 2, "seeds": 1, "teacher_hidden": (32,), "teacher_max_iter": 40,
        "teacher_may_stop_early": True,
    },
}

IAM_TEACHER = "IAM (lam = 9), teacher loss"
IAM_T_TEACHER = "IAM (lam = t), teacher loss"
ADAM_IAM = "Adam-IAM (lam = 9), teacher loss"
IAM_EXACT = "IAM (lam = 9), exact f_S(W*)"


def run_experiment(quick=False, seed=0, out_dir="reports", progress=False):
    """Run the distillation experiment and write ``distill.html`` and ``distill.json``.

    Parameters
    ----------
    quick : bool
        Small teacher, 2 epochs and 1 seed instead of 30 epochs and 3 seeds.
    seed : int
        Seed of the train/test split and the teacher, and first seed of the batches.
    out_dir : str or os.PathLike
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``experiment``, ``claims``, ``html_path``, ``json_path`` and ``seconds``.
    """
    stopwatch = common.Stopwatch()
    mode = MODES["quick" if quick else "full"]
    seeds = common.run_seeds_for(seed, mode["seeds"])
    data = load_data(seed)
    teacher = train_teacher(data, mode, seed)
    optimum = student_optimum(data["X_train"], data["y_train"], STUDENT_REG)
    plan = _plan(data, mode)
    logger.info(
        "distill: teacher train loss %.4g, student optimum %.4g, %d steps",
        teacher["train_loss_mean"], optimum["loss"], plan["steps"],
    )

    adaptive, adaptive_seconds = _run_adaptive(data, teacher, optimum, plan, seeds)
    grid, grid_seconds, grid_runs = _run_grid(data, plan, seeds, progress)
    tuned = _pick_tuned(grid)
    claims = _claims(adaptive, tuned, teacher, optimum)
    results = {
        "epochs": np.arange(mode["epochs"] + 1),
        "teacher": {
            key: value for key, value in teacher.items()
            if key not in ("model", "seconds")
        },
        "student_optimum": {
            key: value for key, value in optimum.items() if key not in ("W", "seconds")
        },
        "adaptive": adaptive,
        "grid": grid,
        "tuned": tuned,
        "tuning_cost": {
            "runs": grid_runs,
            "adaptive_runs": len(adaptive) * len(seeds),
        },
    }
    figures = _figures(results, plan, mode)
    timing = {
        "total": stopwatch.seconds,
        "teacher_training": teacher["seconds"],
        "student_optimum": optimum["seconds"],
        "tuning_grid": grid_seconds,
        "adaptive_runs": adaptive_seconds,
    }
    tables = _tables(adaptive, tuned, grid, teacher, optimum, grid_runs, timing,
                     len(seeds))
    document = common.build_document(
        NAME, quick, seed, _description(data, mode, plan),
        _settings(data, mode, plan, seeds), claims, results, tables, timing,
        common.experiment_provenance(seeds),
    )
    html_path, json_path = common.write_experiment(document, figures, out_dir)
    return {
        "experiment": NAME,
        "claims": claims,
        "html_path": str(html_path),
        "json_path": str(json_path),
        "seconds": stopwatch.seconds,
    }


# ------------------------------------------------------------- data and teacher


def load_data(seed):
    """Split and standardize the bundled digits set; append a bias column of ones.

    Returns
    -------
    dict
        ``X_train``, ``X_test`` of shape (m, 65) with the bias column last,
        ``y_train``, ``y_test`` (int64 labels 0..9), ``classes`` (10).
    """
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_FRACTION, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(X_train)
    return {
        "X_train": _with_bias(scaler.transform(X_train)),
        "X_test": _with_bias(scaler.transform(X_test)),
        "y_train": np.ascontiguousarray(y_train, dtype=np.int64),
        "y_test": np.ascontiguousarray(y_test, dtype=np.int64),
        "classes": int(np.max(y)) + 1,
    }


def _with_bias(X):
    return np.ascontiguousarray(np.hstack([X, np.ones((X.shape[0], 1))]))


def train_teacher(data, mode, seed):
    """Train the MLP teacher and return its per-sample training losses and accuracy.

    The teacher is fit on the same standardized features, without the bias column.
    """
    started = time.perf_counter()
    model = MLPClassifier(
        hidden_layer_sizes=mode["teacher_hidden"], alpha=TEACHER_ALPHA,
        max_iter=mode["teacher_max_iter"], random_state=seed,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(data["X_train"][:, :-1], data["y_train"])
    converged = True
    for caught_warning in caught:
        if issubclass(caught_warning.category, ConvergenceWarning):
            converged = False
        else:
            warnings.warn_explicit(
                caught_warning.message, caught_warning.category,
                caught_warning.filename, caught_warning.lineno,
            )
    if not converged:
        # The quick mode stops the teacher early on purpose, so only a full run warns.
        log = logger.info if mode["teacher_may_stop_early"] else logger.warning
        log(
            "teacher MLP stopped at max_iter=%d before its tolerance was met",
            mode["teacher_max_iter"],
        )
    probabilities = model.predict_proba(data["X_train"][:, :-1])
    label_probability = probabilities[np.arange(data["y_train"].size), data["y_train"]]
    losses = -np.log(np.maximum(label_probability, MIN_PROBABILITY))
    return {
        "model": model,
        "train_losses": losses,
        "train_loss_mean": float(losses.mean()),
        "train_accuracy": float(model.score(data["X_train"][:, :-1], data["y_train"])),
        "test_accuracy": float(model.score(data["X_test"][:, :-1], data["y_test"])),
        "hidden_layer_sizes": list(mode["teacher_hidden"]),
        "alpha": TEACHER_ALPHA,
        "iterations": int(model.n_iter_),
        "converged": converged,
        "seconds": time.perf_counter() - started,
    }


def student_optimum(X, y, reg):
    """Minimize the student's training objective with L-BFGS (numpy and scipy).

    Returns
    -------
    dict
        ``W`` (d, K), ``loss`` f(W*), ``sample_values``, ``mean_cross_entropy``,
        ``grad_norm``, ``iterations`` and ``seconds``. ``sample_values`` contains
        f_i(W*), the cross-entropy of each training sample at W* plus the L2 term, so
        that a batch mean of it is f_S(W*) as the training loops compute it.
        ``mean_cross_entropy`` is the mean without the L2 term.
    """
    started = time.perf_counter()
    n, d = X.shape
    K = int(np.max(y)) + 1
    rows = np.arange(n)

    def value_and_gradient(w):
        W = w.reshape(d, K)
        logits = X @ W
        lse = scipy.special.logsumexp(logits, axis=1)
        value = np.mean(lse - logits[rows, y]) + 0.5 * reg * w @ w
        P = np.exp(logits - lse[:, None])
        P[rows, y] -= 1.0
        return value, (X.T @ P / n).ravel() + reg * w

    result = scipy.optimize.minimize(
        value_and_gradient, np.zeros(d * K), jac=True, method="L-BFGS-B",
        options={"maxiter": 10000, "gtol": 1e-10, "ftol": 1e-15},
    )
    W = result.x.reshape(d, K)
    logits = X @ W
    cross_entropy = scipy.special.logsumexp(logits, axis=1) - logits[rows, y]
    return {
        "W": W,
        "loss": float(result.fun),
        "sample_values": cross_entropy + 0.5 * reg * float(np.sum(W * W)),
        "mean_cross_entropy": float(cross_entropy.mean()),
        "grad_norm": float(np.linalg.norm(result.jac)),
        "iterations": int(result.nit),
        "seconds": time.perf_counter() - started,
    }


def _plan(data, mode):
    n = data["y_train"].size
    steps_per_epoch = math.ceil(n / BATCH_SIZE)
    return {
        "n": n,
        "steps_per_epoch": steps_per_epoch,
        "steps": steps_per_epoch * mode["epochs"],
        "W0": np.zeros((data["X_train"].shape[1], data["classes"])),
    }


def sample_batches(n, steps, seed):
    """Draw the batches of a run uniformly with replacement.

    Returns an int64 array of shape (steps, BATCH_SIZE).
    """
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(steps, BATCH_SIZE), dtype=np.int64)


def learning_rates(peak, schedule, steps):
    """Return the learning rate of every step, shape (steps,).

    ``constant`` keeps ``peak``. ``warmup-cosine`` rises linearly over the first
    ``WARMUP_FRACTION`` of the steps to ``peak`` and then follows a half cosine down
    to 0 at the last step.
    """
    if schedule == "constant":
        return np.full(steps, float(peak))
    if schedule != "warmup-cosine":
        raise ValueError(f"unknown schedule {schedule!r}; use one of {SCHEDULES}")
    warmup = max(1, int(round(WARMUP_FRACTION * steps)))
    t = np.arange(steps, dtype=float)
    rates = peak * 0.5 * (1.0 + np.cos(np.pi * (t - warmup) / max(steps - warmup, 1)))
    rates[:warmup] = peak * (t[:warmup] + 1.0) / warmup
    return rates


# ------------------------------------------------------------------------- runs


def _accuracy(data, W):
    return float(np.mean(softmax.predict(data["X_test"], W) == data["y_test"]))


def _run_adaptive(data, teacher, optimum, plan, seeds):
    """Run the untuned Polyak methods; return label -> record and their wall time."""
    configs = (
        (IAM_TEACHER, teacher["train_losses"], softmax.LAM_CONSTANT,
         softmax.PRECONDITIONER_IDENTITY),
        (IAM_T_TEACHER, teacher["train_losses"], softmax.LAM_T,
         softmax.PRECONDITIONER_IDENTITY),
        (ADAM_IAM, teacher["train_losses"], softmax.LAM_CONSTANT,
         softmax.PRECONDITIONER_ADAM),
        (IAM_EXACT, optimum["sample_values"], softmax.LAM_CONSTANT,
         softmax.PRECONDITIONER_IDENTITY),
    )
    records = {}
    started = time.perf_counter()
    for label, target, lam_rule, preconditioner in configs:
        losses, accuracies, steps = [], [], []
        for seed in seeds:
            batches = sample_batches(plan["n"], plan["steps"], seed)
            W, run_losses, run_steps = softmax.train_iam(
                data["X_train"], data["y_train"], STUDENT_REG, plan["W0"], batches,
                np.ascontiguousarray(target), lam_rule, IAM_LAM, preconditioner,
                ADAM_BETA2, ADAM_EPS, math.inf, plan["steps_per_epoch"],
            )
            losses.append(run_losses)
            accuracies.append(_accuracy(data, W))
            steps.append(run_steps)
        records[label] = _adaptive_record(losses, accuracies, steps, plan, lam_rule)
    return records, time.perf_counter() - started


def _adaptive_record(losses, accuracies, steps, plan, lam_rule):
    """Summarize one adaptive method, with its step also as a heavy-ball learning rate.

    With constant lam, IAM is heavy-ball momentum beta = lam / (1 + lam) with learning
    rate step / (1 + lam), the convention of the SGD-M baseline. With lam = t that
    rate is step / (t + 2) at step t.
    """
    steps = np.array(steps)
    t = np.arange(steps.shape[1])
    lam = t + 1.0 if lam_rule == softmax.LAM_T else IAM_LAM
    heavy_ball_rate = steps / (1.0 + lam)
    losses = np.array(losses)
    return {
        "loss": {"per_seed": losses, **common.seed_summary(losses)},
        "final_loss_mean": float(losses[:, -1].mean()),
        "test_accuracy_per_seed": accuracies,
        "test_accuracy_mean": float(np.mean(accuracies)),
        "step_mean": float(steps.mean()),
        "heavy_ball_rate_mean": float(heavy_ball_rate.mean()),
        "step_per_epoch": _per_epoch(steps, plan["steps_per_epoch"]),
        "heavy_ball_rate_per_epoch": _per_epoch(
            heavy_ball_rate, plan["steps_per_epoch"]
        ),
    }


def _per_epoch(values, steps_per_epoch):
    """Summarize per epoch over the steps of all seeds, each entry of shape (epochs,).

    ``mean``, ``min`` and ``max``, and the 10% and 90% quantiles ``p10`` and ``p90``.
    The Polyak step is 0 whenever the batch loss is below the target, so ``min`` is
    often 0 and the figures draw the quantile band.
    """
    blocks = values.reshape(values.shape[0], -1, steps_per_epoch)
    blocks = np.moveaxis(blocks, 1, 0).reshape(blocks.shape[1], -1)
    return {
        "mean": blocks.mean(axis=1),
        "min": blocks.min(axis=1),
        "max": blocks.max(axis=1),
        "p10": np.quantile(blocks, 0.1, axis=1),
        "p90": np.quantile(blocks, 0.9, axis=1),
    }


def _run_grid(data, plan, seeds, progress):
    """Run every grid point of the tuned baselines; return records, seconds, runs."""
    jobs = [
        (optimizer, schedule, rate)
        for optimizer, rates in (("SGD-M", SGDM_GRID), ("Adam", ADAM_GRID))
        for schedule in SCHEDULES
        for rate in rates
    ]
    batches = {seed: sample_batches(plan["n"], plan["steps"], seed) for seed in seeds}
    grid = {}
    started = time.perf_counter()
    progress_bar = tqdm(jobs, desc="distill grid", disable=not progress)
    for optimizer, schedule, rate in progress_bar:
        rates = learning_rates(rate, schedule, plan["steps"])
        losses, accuracies = [], []
        for seed in seeds:
            W, run_losses = _train_baseline(data, plan, optimizer, batches[seed], rates)
            losses.append(run_losses)
            accuracies.append(_accuracy(data, W))
        losses = np.array(losses)
        grid.setdefault(optimizer, {}).setdefault(schedule, []).append({
            "learning_rate": rate,
            "loss": {"per_seed": losses, **common.seed_summary(losses)},
            "final_loss_mean": float(np.mean(losses[:, -1])),
            "test_accuracy_per_seed": accuracies,
            "test_accuracy_mean": float(np.mean(accuracies)),
        })
    return grid, time.perf_counter() - started, len(jobs) * len(seeds)


def _train_baseline(data, plan, optimizer, batches, rates):
    if optimizer == "SGD-M":
        return softmax.train_sgd_momentum(
            data["X_train"], data["y_train"], STUDENT_REG, plan["W0"], batches, rates,
            MOMENTUM, plan["steps_per_epoch"],
        )
    return softmax.train_adam(
        data["X_train"], data["y_train"], STUDENT_REG, plan["W0"], batches, rates,
        ADAM_BETA1, ADAM_BETA2, ADAM_EPS, plan["steps_per_epoch"],
    )


def _pick_tuned(grid):
    """Return the best grid point per optimizer and schedule, and per optimizer.

    Best means the lowest final training loss, averaged over seeds; a diverged run
    never wins.
    """
    tuned = {}
    for optimizer, schedules in grid.items():
        per_schedule = {}
        for schedule, points in schedules.items():
            best = min(points, key=lambda p: common.finite_or_inf(p["final_loss_mean"]))
            per_schedule[schedule] = {
                "learning_rate": best["learning_rate"],
                "final_loss_mean": best["final_loss_mean"],
                "test_accuracy_mean": best["test_accuracy_mean"],
                "at_grid_edge": best["learning_rate"] in (
                    points[0]["learning_rate"], points[-1]["learning_rate"]
                ),
            }
        overall = min(
            per_schedule,
            key=lambda s: common.finite_or_inf(per_schedule[s]["final_loss_mean"]),
        )
        tuned[optimizer] = {"schedules": per_schedule, "best_schedule": overall,
                            **per_schedule[overall]}
    return tuned


# ----------------------------------------------------------------------- claims


def _claims(adaptive, tuned, teacher, optimum):
    claims = [common.make_claim(
        "The teacher's training loss lies below the student's optimal training loss, "
        "so the teacher's batch loss is below f_S(W*) on average",
        {"teacher mean loss": teacher["train_loss_mean"],
         "student optimum f(W*)": optimum["loss"],
         "student cross-entropy at W*": optimum["mean_cross_entropy"]},
        "f(W*) is the mean of f_S(W*) over batches, the value the teacher's loss "
        "stands in for; matched when the teacher's mean cross-entropy is below f(W*)",
        teacher["train_loss_mean"] < optimum["loss"],
    )]
    exact_gap = adaptive[IAM_EXACT]["final_loss_mean"] - optimum["loss"]
    tuned_gap = tuned["SGD-M"]["final_loss_mean"] - optimum["loss"]
    gap_ratio = common.ratio(exact_gap, tuned_gap)
    claims.append(common.make_claim(
        "Control: IAM with the exact f_S(W*) in place of the teacher's loss converges "
        "as fast as SGD-M with a tuned learning rate",
        {f"{IAM_EXACT} f - f(W*)": exact_gap, "tuned SGD-M f - f(W*)": tuned_gap,
         "ratio": gap_ratio},
        f"suboptimality of the training loss after the last epoch, mean over seeds; "
        f"matched when the ratio is at most {SPEED_FACTOR:g}",
        gap_ratio <= SPEED_FACTOR,
    ))
    for label, baseline in ((IAM_TEACHER, "SGD-M"), (ADAM_IAM, "Adam")):
        ours = adaptive[label]
        best = tuned[baseline]
        loss_ratio = common.ratio(ours["final_loss_mean"], best["final_loss_mean"])
        claims.append(common.make_claim(
            f"{label}, untuned, reaches the training loss of {baseline} with a tuned "
            f"learning rate",
            {f"{label} final loss": ours["final_loss_mean"],
             f"tuned {baseline} final loss": best["final_loss_mean"],
             "ratio": loss_ratio,
             f"tuned {baseline}":
                 f"{best['best_schedule']}, lr {best['learning_rate']:g}"},
            f"training loss after the last epoch, mean over seeds; matched when the "
            f"ratio is at most {LOSS_RATIO:g}",
            loss_ratio <= LOSS_RATIO,
        ))
        points = 100.0 * (best["test_accuracy_mean"] - ours["test_accuracy_mean"])
        claims.append(common.make_claim(
            f"{label}, untuned, reaches the test accuracy of tuned {baseline}",
            {f"{label} test accuracy": ours["test_accuracy_mean"],
             f"tuned {baseline} test accuracy": best["test_accuracy_mean"],
             "shortfall (points)": points},
            f"mean over seeds; matched when the shortfall is at most "
            f"{ACCURACY_POINTS:g} percentage point",
            points <= ACCURACY_POINTS,
        ))
    constant = tuned["SGD-M"]["schedules"]["constant"]["learning_rate"]
    adaptive_rate = adaptive[IAM_TEACHER]["heavy_ball_rate_mean"]
    rate_ratio = common.ratio(adaptive_rate, constant)
    claims.append(common.make_claim(
        "IAM's adaptive learning rate is of the order of the tuned constant SGD-M "
        "learning rate",
        {"IAM mean step / (1 + lam)": adaptive_rate,
         "tuned constant SGD-M learning rate": constant,
         "ratio": rate_ratio},
        f"matched when the ratio is within a factor {LEARNING_RATE_FACTOR:g} either "
        f"way",
        1.0 / LEARNING_RATE_FACTOR <= rate_ratio <= LEARNING_RATE_FACTOR,
    ))
    return claims


# ------------------------------------------------------------ figures and tables


def _figures(results, plan, mode):
    return [
        _loss_figure(results),
        _rate_figure(results, plan, mode),
        _grid_figure(results),
    ]


def _loss_figure(results):
    epochs = results["epochs"]
    optimum = results["student_optimum"]["loss"]
    fig, axes = common.panels(2, columns=2, width=6.4, height=4.8)
    for ax, shift, ylabel in (
        (axes[0], 0.0, "training loss f(W)"),
        (axes[1], optimum, "f(W) − f(W*)"),
    ):
        ax.set_yscale("log")
        for index, (label, summary, style) in enumerate(_loss_curves(results)):
            shifted = {
                key: np.asarray(summary[key]) - shift for key in ("mean", "min", "max")
            }
            common.plot_band(ax, epochs, shifted, label, common.PALETTE[index],
                             linestyle=style)
        if shift == 0.0:
            ax.axhline(results["teacher"]["train_loss_mean"], color="black",
                       linestyle="-.", label="teacher, average training loss")
            ax.axhline(optimum, color="gray", linestyle=":",
                       label="student optimum f(W*)")
        common.finish_axes(ax, ylabel, "epoch", ylabel, legend=shift == 0.0)
    return common.render_figure(
        fig, "distill-loss", "Training loss of the student",
        "Full training objective (cross-entropy plus L2) after each epoch, and its "
        "distance to the student's optimum f(W*) from L-BFGS: mean over seeds as a "
        "line, min to max as a band. Dashed: baselines at their tuned learning rate. "
        "The dash-dotted line is the teacher's average loss, the value IAM aims for.",
    )


def _loss_curves(results):
    """Return (label, seed summary, line style) of every training-loss curve."""
    curves = []
    for label, record in results["adaptive"].items():
        curves.append((label, record["loss"], ":" if label == IAM_EXACT else "-"))
    for optimizer, info in results["tuned"].items():
        for schedule, best in info["schedules"].items():
            rate = best["learning_rate"]
            point = _grid_point(results["grid"], optimizer, schedule, rate)
            label = f"{optimizer}, {schedule}, tuned lr {best['learning_rate']:g}"
            curves.append((label, point["loss"], "--"))
    return curves


def _grid_point(grid, optimizer, schedule, rate):
    for point in grid[optimizer][schedule]:
        if point["learning_rate"] == rate:
            return point
    raise KeyError(f"no grid point {optimizer}, {schedule}, lr {rate}")


def _rate_figure(results, plan, mode):
    epochs = np.arange(1, mode["epochs"] + 1)
    step_epochs = np.arange(1, plan["steps"] + 1) / plan["steps_per_epoch"]
    fig, axes = common.panels(2, columns=2, width=5.8, height=4.2)
    pairs = (
        (axes[0], IAM_TEACHER, "heavy_ball_rate_per_epoch", "SGD-M",
         "IAM: step / (1 + lam)"),
        (axes[1], ADAM_IAM, "step_per_epoch", "Adam", "Adam-IAM: step"),
    )
    for ax, label, key, optimizer, legend in pairs:
        ax.set_yscale("log")
        common.plot_band(ax, epochs, results["adaptive"][label][key], legend,
                         "tab:green", marker="o", low_key="p10", high_key="p90")
        for color, (schedule, best) in zip(
            ("tab:red", "tab:purple"), results["tuned"][optimizer]["schedules"].items()
        ):
            rates = learning_rates(best["learning_rate"], schedule, plan["steps"])
            ax.plot(step_epochs, common.positive_or_nan(rates), color=color,
                    linestyle="--", label=f"tuned {optimizer}, {schedule}")
        common.finish_axes(ax, f"{legend} against tuned {optimizer}", "epoch",
                           "learning rate")
    return common.render_figure(
        fig, "distill-rates", "Adaptive learning rate against the tuned ones",
        "Left: IAM with lam = 9 is heavy-ball momentum 0.9 with learning rate "
        "step / (1 + lam), the SGD-M convention. Right: Adam-IAM's step multiplies "
        "D^-1 g like Adam's learning rate multiplies m_hat / D, and both average the "
        "recent directions, so the step is compared with Adam's learning rate as is. "
        "Line: mean per epoch over steps and seeds; band: 10% to 90% quantile over "
        "those steps.",
    )


def _grid_figure(results):
    fig, axes = common.panels(2, columns=2, width=5.6, height=4.0)
    pairs = (("SGD-M", IAM_TEACHER), ("Adam", ADAM_IAM))
    for ax, (optimizer, label) in zip(axes, pairs):
        ax.set_xscale("log")
        ax.set_yscale("log")
        for color, (schedule, points) in zip(
            ("tab:red", "tab:purple"), results["grid"][optimizer].items()
        ):
            ax.plot([p["learning_rate"] for p in points],
                    common.positive_or_nan([p["final_loss_mean"] for p in points]),
                    marker="o", color=color, label=f"{optimizer}, {schedule}")
        ax.axhline(results["adaptive"][label]["final_loss_mean"], color="tab:green",
                   label=f"{label} (untuned)")
        ax.axhline(results["teacher"]["train_loss_mean"], color="black",
                   linestyle="-.", label="teacher average loss")
        common.finish_axes(ax, f"{optimizer} learning-rate grid", "learning rate",
                           "final training loss")
    return common.render_figure(
        fig, "distill-grid", "The tuning that IAM avoids",
        "Final training loss (mean over seeds) at every learning rate of the grid, "
        "against the untuned adaptive method. A diverged run leaves a gap.",
    )


def _tables(adaptive, tuned, grid, teacher, optimum, grid_runs, timing, seed_count):
    rows = [
        ["teacher MLP", teacher["train_loss_mean"], teacher["test_accuracy"], "—"],
        ["student optimum W* (L-BFGS)", optimum["loss"], "—", "—"],
    ]
    for label, record in adaptive.items():
        rows.append([label, record["final_loss_mean"], record["test_accuracy_mean"],
                     "none"])
    for optimizer, info in tuned.items():
        for schedule, best in info["schedules"].items():
            rows.append([
                f"{optimizer}, {schedule}", best["final_loss_mean"],
                best["test_accuracy_mean"],
                f"lr {best['learning_rate']:g}"
                + (" (grid edge)" if best["at_grid_edge"] else ""),
            ])
    results_table = common.make_table(
        "Training loss and test accuracy",
        ["model", "final training loss", "test accuracy", "tuned learning rate"],
        rows,
        "Students: mean over seeds after the last epoch. The teacher's training loss "
        "is its mean cross-entropy on the training labels, without its L2 term.",
    )
    cost_rows = [
        ["SGD-M and Adam grids", grid_runs,
         f"({len(SGDM_GRID)} SGD-M + {len(ADAM_GRID)} Adam learning rates) × "
         f"{len(SCHEDULES)} schedules × {seed_count} seeds", timing["tuning_grid"]],
        ["adaptive methods (all four)", len(adaptive) * seed_count,
         f"{len(adaptive)} methods × {seed_count} seeds", timing["adaptive_runs"]],
        ["teacher training", 1, "one MLPClassifier fit", timing["teacher_training"]],
    ]
    cost_table = common.make_table(
        "Cost of the tuning that IAM avoids",
        ["runs", "count", "made of", "wall time (s)"],
        cost_rows,
        "Wall time of the compiled training loops plus test-accuracy evaluation, on "
        "the machine that wrote this report.",
        volatile=True,
    )
    grid_rows = [
        [optimizer, schedule, point["learning_rate"], point["final_loss_mean"],
         point["test_accuracy_mean"]]
        for optimizer, schedules in grid.items()
        for schedule, points in schedules.items()
        for point in points
    ]
    grid_table = common.make_table(
        "Learning-rate grid", ["optimizer", "schedule", "learning rate",
                               "final training loss", "test accuracy"],
        grid_rows, "Mean over seeds.",
    )
    return [results_table, cost_table, grid_table]


def _settings(data, mode, plan, seeds):
    return {
        "data": "digits (scikit-learn bundled), standardized with training statistics",
        "n_train": int(data["y_train"].size),
        "n_test": int(data["y_test"].size),
        "features_with_bias": int(data["X_train"].shape[1]),
        "classes": data["classes"],
        "epochs": mode["epochs"],
        "batch_size": BATCH_SIZE,
        "steps": plan["steps"],
        "seeds": seeds,
        "student_reg": STUDENT_REG,
        "teacher": {
            "model": "MLPClassifier",
            "hidden_layer_sizes": list(mode["teacher_hidden"]),
            "alpha": TEACHER_ALPHA,
            "max_iter": mode["teacher_max_iter"],
        },
        "iam_lam": IAM_LAM,
        "adam": {"beta1": ADAM_BETA1, "beta2": ADAM_BETA2, "eps": ADAM_EPS},
        "sgd_momentum": MOMENTUM,
        "sgdm_grid": list(SGDM_GRID),
        "adam_grid": list(ADAM_GRID),
        "schedules": list(SCHEDULES),
        "warmup_fraction": WARMUP_FRACTION,
    }


def _description(data, mode, plan):
    return [
        f"Data: scikit-learn's bundled digits (8x8 images, 10 classes), split "
        f"{1 - TEST_FRACTION:.0%} / {TEST_FRACTION:.0%} (stratified, seeded) into "
        f"{data['y_train'].size} training and {data['y_test'].size} test samples, "
        f"features standardized with training statistics.",
        f"Teacher: MLPClassifier with hidden layers {list(mode['teacher_hidden'])}, "
        f"L2 alpha = {TEACHER_ALPHA:g}, trained on the training split. The only "
        f"output the student uses is the teacher's cross-entropy on each training "
        f"sample, -log p_teacher(y_i | x_i); a batch's stand-in for f_S(x*) is its "
        f"mean over the batch.",
        f"Student: multinomial logistic regression with a bias column (W of shape "
        f"{data['X_train'].shape[1]} x {data['classes']}), objective mean "
        f"cross-entropy plus ({STUDENT_REG:g}/2) ||W||^2, trained from W = 0 for "
        f"{mode['epochs']} epochs of batch {BATCH_SIZE} ({plan['steps']} steps, "
        f"batches drawn with replacement; a seed gives every method the same "
        f"batches). All student loops are Numba-compiled.",
        f"Untuned methods: IAM with lam = {IAM_LAM:g} and with lam = t, and "
        f"Adam-preconditioned IAM: step = (loss - teacher loss + <g, z - x>)_+ / "
        f"<g, D^-1 g>, z -= step D^-1 g, x = (lam x + z) / (1 + lam), with D = "
        f"sqrt(v_hat) + eps from Adam's second moment (beta2 = {ADAM_BETA2}). As an "
        f"oracle reference, IAM also runs with the exact per-sample losses at the "
        f"student's optimum W*.",
        f"Tuned baselines: SGD with momentum {MOMENTUM} (learning rates "
        f"{', '.join(f'{r:g}' for r in SGDM_GRID)}) and Adam (learning rates "
        f"{', '.join(f'{r:g}' for r in ADAM_GRID)}), each with a constant rate and "
        f"with linear warm-up over {WARMUP_FRACTION:.0%} of the steps followed by "
        f"cosine decay to 0. The tuned rate is the one with the lowest final "
        f"training loss averaged over seeds, chosen on the same seeds.",
    ]
