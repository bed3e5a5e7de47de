"""Numba kernels for a multinomial logistic (softmax) student and its training loops.

The student has weights W of shape (d, K) and minimizes

    f(W) = (1/n) sum_i [logsumexp(x_i^T W) - x_i^T W[:, y_i]] + (reg / 2) ||W||_F^2,

the mean cross-entropy on the labels plus an L2 term, which is convex in W. A
minibatch loss f_S averages the cross-entropy over the samples of S.

Every training loop runs a whole run in one call. The minibatch indices come in as
an int64 array of shape (T, batch_size) drawn outside with numpy, so the loops draw
no random numbers. Each loop records the full training loss at every step that is a
multiple of ``eval_every`` (including step 0), which is once per epoch when
``eval_every`` is the number of steps per epoch.

Preconditioner codes of ``train_iam``: ``PRECONDITIONER_IDENTITY`` gives IAM, and
``PRECONDITIONER_ADAM`` gives IAM in the metric D = diag(sqrt(v_hat) + eps), with
v_hat Adam's bias-corrected second moment of the gradients.
"""

import math

import numpy as np
from numba import njit

PRECONDITIONER_IDENTITY = 0
PRECONDITIONER_ADAM = 1

LAM_CONSTANT = 0
LAM_T = 1


@njit(cache=True)
def sample_loss_grad(X, y, W, i, G, logits, weight):
    """Add ``weight`` times the gradient of sample i's cross-entropy to ``G``.

    Parameters
    ----------
    X : ndarray, shape (n, d)
    y : ndarray of int64, shape (n,)
        Labels in [0, K).
    W : ndarray, shape (d, K)
    i : int
        Sample index.
    G : ndarray, shape (d, K)
        Gradient accumulator, updated in place.
    logits : ndarray, shape (K,)
        Work buffer.
    weight : float
        Factor on the gradient; 0 skips the gradient.

    Returns
    -------
    float
        The cross-entropy logsumexp(x_i^T W) - x_i^T W[:, y_i].
    """
    d, K = W.shape
    for k in range(K):
        logits[k] = 0.0
    for j in range(d):
        xj = X[i, j]
        if xj != 0.0:
            for k in range(K):
                logits[k] += xj * W[j, k]
    top = logits[0]
    for k in range(1, K):
        if logits[k] > top:
            top = logits[k]
    total = 0.0
    for k in range(K):
        total += math.exp(logits[k] - top)
    lse = top + math.log(total)
    loss = lse - logits[y[i]]
    if weight != 0.0:
        for k in range(K):
            logits[k] = math.exp(logits[k] - lse)
        logits[y[i]] -= 1.0
        for j in range(d):
            xj = X[i, j] * weight
            if xj != 0.0:
                for k in range(K):
                    G[j, k] += xj * logits[k]
    return loss


@njit(cache=True)
def batch_loss_grad(X, y, W, reg, batch, G, logits):
    """Evaluate f_S(W) on the minibatch ``batch`` and write its gradient into ``G``.

    Returns
    -------
    float
        Mean cross-entropy over the batch plus (reg / 2) ||W||_F^2.
    """
    d, K = W.shape
    s = batch.shape[0]
    inv = 1.0 / s
    G[:, :] = 0.0
    loss = 0.0
    for q in range(s):
        loss += sample_loss_grad(X, y, W, batch[q], G, logits, inv)
    sq = 0.0
    for j in range(d):
        for k in range(K):
            G[j, k] += reg * W[j, k]
            sq += W[j, k] * W[j, k]
    return loss * inv + 0.5 * reg * sq


@njit(cache=True)
def dataset_loss(X, y, W, reg):
    """Return the full objective f(W) over all n samples."""
    n = X.shape[0]
    d, K = W.shape
    logits = np.empty(K)
    G = np.empty((1, 1))
    loss = 0.0
    for i in range(n):
        loss += sample_loss_grad(X, y, W, i, G, logits, 0.0)
    sq = 0.0
    for j in range(d):
        for k in range(K):
            sq += W[j, k] * W[j, k]
    return loss / n + 0.5 * reg * sq


@njit(cache=True)
def _record(X, y, W, reg, t, eval_every, losses):
    if t % eval_every == 0:
        losses[t // eval_every] = dataset_loss(X, y, W, reg)


@njit(cache=True)
def train_sgd_momentum(X, y, reg, W0, samples, lr, momentum, eval_every):
    """Train with heavy-ball SGD: buf = momentum buf + g, W -= lr[t] buf.

    This is the update of ``torch.optim.SGD`` with dampening 0 (PyTorch 2.0
    documentation), which starts from buf = g at the first step as this loop does.

    Parameters
    ----------
    X, y, reg
        Data and L2 strength of the objective.
    W0 : ndarray, shape (d, K)
        Starting weights (not modified).
    samples : ndarray of int64, shape (T, batch_size)
        Minibatch of every step.
    lr : ndarray, shape (T,)
        Learning rate of every step (the schedule).
    momentum : float
    eval_every : int
        Steps between two evaluations of the full training loss.

    Returns
    -------
    W : ndarray, shape (d, K)
        Final weights.
    losses : ndarray, shape (T // eval_every + 1,)
        Full training loss at steps 0, eval_every, 2 eval_every, ...
    """
    T = samples.shape[0]
    d, K = W0.shape
    W = W0.copy()
    G = np.empty((d, K))
    buf = np.zeros((d, K))
    logits = np.empty(K)
    losses = np.full(T // eval_every + 1, np.nan)
    for t in range(T):
        _record(X, y, W, reg, t, eval_every, losses)
        batch_loss_grad(X, y, W, reg, samples[t], G, logits)
        for j in range(d):
            for k in range(K):
                buf[j, k] = momentum * buf[j, k] + G[j, k]
                W[j, k] -= lr[t] * buf[j, k]
    _record(X, y, W, reg, T, eval_every, losses)
    return W, losses


@njit(cache=True)
def train_adam(X, y, reg, W0, samples, lr, beta1, beta2, eps, eval_every):
    """Train with Adam (bias-corrected moments, L2 in the gradient, not AdamW).

    Parameters and returns are those of ``train_sgd_momentum``, with ``beta1``,
    ``beta2`` and ``eps`` of Adam in place of ``momentum``.
    """
    T = samples.shape[0]
    d, K = W0.shape
    W = W0.copy()
    G = np.empty((d, K))
    m = np.zeros((d, K))
    v = np.zeros((d, K))
    logits = np.empty(K)
    losses = np.full(T // eval_every + 1, np.nan)
    for t in range(T):
        _record(X, y, W, reg, t, eval_every, losses)
        batch_loss_grad(X, y, W, reg, samples[t], G, logits)
        bias1 = 1.0 - beta1 ** (t + 1)
        bias2 = 1.0 - beta2 ** (t + 1)
        for j in range(d):
            for k in range(K):
                g = G[j, k]
                m[j, k] = beta1 * m[j, k] + (1.0 - beta1) * g
                v[j, k] = beta2 * v[j, k] + (1.0 - beta2) * g * g
                denom = math.sqrt(v[j, k] / bias2) + eps
                W[j, k] -= lr[t] * (m[j, k] / bias1) / denom
    _record(X, y, W, reg, T, eval_every, losses)
    return W, losses


@njit(cache=True)
def polyak_step(loss, target, G, Z, W, Dinv):
    """Return the preconditioned Polyak step of IAM.

    step = (loss - target + <G, Z - W>)_+ / <G, Dinv G>, and 0 when the denominator
    is 0. With ``Dinv`` all ones this is IAM's gamma_t; the anchor update that goes
    with it is Z -= step Dinv G.
    """
    d, K = G.shape
    gz = 0.0
    gdg = 0.0
    for j in range(d):
        for k in range(K):
            g = G[j, k]
            gz += g * (Z[j, k] - W[j, k])
            gdg += g * Dinv[j, k] * g
    numerator = loss - target + gz
    if numerator <= 0.0 or gdg <= 0.0:
        return 0.0
    return numerator / gdg


@njit(cache=True)
def train_iam(
    X, y, reg, W0, samples, target, lam_rule, lam, preconditioner, beta2, eps,
    max_step_size, eval_every,
):
    """Train with IAM, using ``target`` in place of the per-sample f_i(x_star).

    At step t with batch S, loss f_S(W_t), gradient G_t and batch target
    T_S = mean_{i in S} target[i]:

        step_t  = (f_S(W_t) - T_S + <G_t, Z_t - W_t>)_+ / <G_t, D_t^-1 G_t>,
        Z_{t+1} = Z_t - min(step_t, max_step_size) D_t^-1 G_t,
        W_{t+1} = (lam_{t+1} W_t + Z_{t+1}) / (1 + lam_{t+1}).

    Parameters
    ----------
    X, y, reg, W0, samples, eval_every
        As for ``train_sgd_momentum``.
    target : ndarray, shape (n,)
        Per-sample values that stand in for f_i(x_star), for example a teacher's
        per-sample cross-entropy.
    lam_rule : int
        ``LAM_CONSTANT`` (lam_t = lam) or ``LAM_T`` (lam_t = t, the theory's choice).
    lam : float
        The constant lam of ``LAM_CONSTANT``.
    preconditioner : int
        ``PRECONDITIONER_IDENTITY`` (D = I) or ``PRECONDITIONER_ADAM``
        (D = sqrt(v_hat) + eps, elementwise, with v_hat Adam's bias-corrected
        second moment of the gradients, updated with G_t before the step).
    beta2, eps : float
        Adam's second-moment decay and epsilon (``PRECONDITIONER_ADAM`` only).
    max_step_size : float
        Cap on step_t (inf for none).

    Returns
    -------
    W : ndarray, shape (d, K)
        Final weights.
    losses : ndarray, shape (T // eval_every + 1,)
        Full training loss at steps 0, eval_every, ...
    steps : ndarray, shape (T,)
        step_t after the cap.
    """
    T = samples.shape[0]
    d, K = W0.shape
    W = W0.copy()
    Z = W0.copy()
    G = np.empty((d, K))
    v = np.zeros((d, K))
    Dinv = np.ones((d, K))
    logits = np.empty(K)
    losses = np.full(T // eval_every + 1, np.nan)
    steps = np.empty(T)
    s = samples.shape[1]
    for t in range(T):
        _record(X, y, W, reg, t, eval_every, losses)
        batch = samples[t]
        loss = batch_loss_grad(X, y, W, reg, batch, G, logits)
        batch_target = 0.0
        for q in range(s):
            batch_target += target[batch[q]]
        batch_target /= s
        if preconditioner == PRECONDITIONER_ADAM:
            bias2 = 1.0 - beta2 ** (t + 1)
            for j in range(d):
                for k in range(K):
                    g = G[j, k]
                    v[j, k] = beta2 * v[j, k] + (1.0 - beta2) * g * g
                    Dinv[j, k] = 1.0 / (math.sqrt(v[j, k] / bias2) + eps)
        step = polyak_step(loss, batch_target, G, Z, W, Dinv)
        if step > max_step_size:
            step = max_step_size
        steps[t] = step
        lam_next = float(t + 1) if lam_rule == LAM_T else lam
        inv = 1.0 / (1.0 + lam_next)
        for j in range(d):
            for k in range(K):
                Z[j, k] -= step * Dinv[j, k] * G[j, k]
                W[j, k] = (lam_next * W[j, k] + Z[j, k]) * inv
    _record(X, y, W, reg, T, eval_every, losses)
    return W, losses, steps


@njit(cache=True)
def predict(X, W):
    """Return the arg max class of x_i^T W for every row of X, shape (n,)."""
    n = X.shape[0]
    scores = X @ W
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = np.argmax(scores[i])
    return out
