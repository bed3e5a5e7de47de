"""Time the compiled SPS*/IAM loop against a bare Numba SGD loop and other baselines.

Every row of the ratio table runs on the same data and the same sample sequence in
one process: a dense least-squares problem with d = 100 and n = 1,000 (A fits in the
L2 cache), 200,000 or 2,000,000 rows, batch size 1. The timed loops are

- the compiled loop of ``polyakcheck.methods.kernel`` that ``polyakcheck.run.run``
  calls for SPS* and IAM (lam_t = t), called directly with the exact arguments that
  ``run`` builds, and the general ``run_loop`` (minibatches, sparse rows) when run
  takes a dedicated loop for batch size 1;
- a bare Numba SGD loop, x -= eta (a_i.x - b_i) a_i and nothing else: the
  memory-bound floor of one step. It is compiled with the kernel's fastmath flags,
  and once more without them for reference;
- a bare Numba IAM loop with the same update as ``run_loop`` but none of its per-step
  checks, which separates the cost of the update from the cost of the checks;
- a plain Python loop that calls numpy each step (the IAM update);
- a PyTorch optimizer with the IAM step, when torch can be imported.

Each time is the median of ``--repeats`` calls after one warm-up call. The script also
times ``run_loop`` against steps, n and d, the peak memory of ``polyakcheck.run``
against steps, and the oracle ``polyakcheck.solve``. It prints Markdown.

Usage::

    python benchmarks/bench_kernels.py
    python benchmarks/bench_kernels.py --quick      # smaller sizes, a smoke test
"""

import argparse
import contextlib
import functools
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
from numba import njit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numba  # noqa: E402
import polyakcheck  # noqa: E402
from polyakcheck import Problem, Solution, load_dataset, run, solve  # noqa: E402
from polyakcheck.methods import kernel  # noqa: E402
# Private helpers of the loss kernels, timed on their own in the breakdown table.
from polyakcheck.problems.losses import (  # noqa: E402
    _add_row, _margin, batch_value_grad,
)
from polyakcheck.run import sample_indices  # noqa: E402

# polyakcheck/__init__.py binds the name polyakcheck.run to the function run, so
# the module itself comes from sys.modules.
run_module = sys.modules["polyakcheck.run"]

DIMENSION = 100
SEED = 0


# ------------------------------------------------------------------ problems


@functools.lru_cache(maxsize=None)
def synthetic_problem(n, d, seed=SEED):
    """Return dense least squares on Gaussian data, b = A x_true + 0.1 noise.

    Problems are cached, because the largest (n = 2,000,000) takes seconds to build.
    """
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d))
    x_true = rng.standard_normal(d) / np.sqrt(d)
    b = A @ x_true + 0.1 * rng.standard_normal(n)
    return Problem(f"synthetic n={n} d={d}", "least_squares", A, b)


@functools.lru_cache(maxsize=None)
def solved_problem(n, d):
    """Return the cached ``synthetic_problem(n, d)`` and its ``lstsq_solution``."""
    problem = synthetic_problem(n, d)
    return problem, lstsq_solution(problem)


def lstsq_solution(problem):
    """Return a ``Solution`` from numpy's least-squares solver, without certificate.

    The timed loops only need x_star and f_i(x_star); the oracle is timed on its own.
    """
    x_star, *_ = np.linalg.lstsq(problem.A, problem.b, rcond=None)
    f_i_star = problem.values(x_star)[0]
    return Solution(x_star, float(f_i_star.mean()), f_i_star, 0.0, 0.0, "lstsq",
                    "numpy")


class _Captured(Exception):
    pass


class KernelCall:
    """One call of a compiled loop of ``polyakcheck.methods.kernel``, to repeat."""

    def __init__(self, name, function, args):
        self.name = name
        self.function = function
        self.args = args

    def __call__(self):
        return self.function(*self.args)


def kernel_call(problem, solution, method, steps, general=False):
    """Return the kernel call that ``polyakcheck.run`` makes, with its arguments.

    ``run`` is called with every ``run_loop*`` function of the kernel module replaced
    by a stub that records its name and arguments and stops the run. The call is
    therefore the one that the current run.py makes, which for batch size 1 on dense
    data is a dedicated single-sample loop. ``general=True`` sets
    ``run._GENERAL_LOOP_ONLY`` so that run takes the general loop, and returns None
    when run.py has no such switch.
    """
    if general and not hasattr(run_module, "_GENERAL_LOOP_ONLY"):
        return None
    captured = {}
    loops = {name: value for name, value in vars(kernel).items()
             if name.startswith("run_loop")}

    def recorder(name):
        def capture(*args):
            captured["call"] = KernelCall(name, loops[name], args)
            raise _Captured

        return capture

    with contextlib.ExitStack() as stack:
        for name in loops:
            stack.enter_context(mock.patch.object(kernel, name, recorder(name)))
        if general:
            stack.enter_context(
                mock.patch.object(run_module, "_GENERAL_LOOP_ONLY", True)
            )
        try:
            run(problem, solution, method, steps, batch_size=1, seed=SEED)
        except _Captured:
            pass
    return captured["call"]


# ------------------------------------------------------------------ baselines


# The bare loops get the kernel's fastmath flags (reassociation lets LLVM vectorize
# the dot products), so that the floor is compiled the way the kernel is.
KERNEL_FASTMATH = getattr(kernel, "FASTMATH", False)


def _sgd_steps(A, b, x0, samples, eta):
    """Run T = len(samples) - 1 plain SGD steps on least squares; return x_T."""
    x = x0.copy()
    d = A.shape[1]
    for t in range(samples.shape[0] - 1):
        i = samples[t, 0]
        r = -b[i]
        for j in range(d):
            r += A[i, j] * x[j]
        c = eta * r
        for j in range(d):
            x[j] -= c * A[i, j]
    return x


sgd_loop = njit(cache=True, fastmath=KERNEL_FASTMATH)(_sgd_steps)
# Numba's on-disk cache keys a function by its source location, not its flags, so a
# second cached dispatcher of _sgd_steps would load the fastmath build.
sgd_loop_strict = njit(cache=False)(_sgd_steps)


@njit(cache=True, fastmath=KERNEL_FASTMATH)
def sps_loop(A, b, f_i_star, x0, samples):
    """Run T SPS* steps (Polyak step with f_i(x_star)) on least squares, no checks."""
    x = x0.copy()
    d = A.shape[1]
    for t in range(samples.shape[0] - 1):
        i = samples[t, 0]
        m = 0.0
        aa = 0.0
        for j in range(d):
            a = A[i, j]
            m += a * x[j]
            aa += a * a
        r = m - b[i]
        s = 0.5 * r * r - f_i_star[i]
        gg = r * r * aa
        gamma = s / gg if (s > 0.0 and gg > 0.0) else 0.0
        c = gamma * r
        for j in range(d):
            x[j] -= c * A[i, j]
    return x


@njit(cache=True, fastmath=KERNEL_FASTMATH)
def iam_loop(A, b, f_i_star, x0, samples):
    """Run T IAM steps (lam_t = t, Polyak step on the anchor z) with no checks."""
    x = x0.copy()
    z = x0.copy()
    d = A.shape[1]
    for t in range(samples.shape[0] - 1):
        i = samples[t, 0]
        m = 0.0
        az = 0.0
        aa = 0.0
        for j in range(d):
            a = A[i, j]
            m += a * x[j]
            az += a * z[j]
            aa += a * a
        r = m - b[i]
        # g = r a_i, so <g, z - x> = r (a.z - a.x) and ||g||^2 = r^2 ||a||^2.
        s = 0.5 * r * r - f_i_star[i] + r * (az - m)
        gg = r * r * aa
        gamma = s / gg if (s > 0.0 and gg > 0.0) else 0.0
        lam = t + 1.0
        inv = 1.0 / (1.0 + lam)
        c = gamma * r
        for j in range(d):
            z[j] -= c * A[i, j]
            x[j] = (lam * x[j] + z[j]) * inv
    return x


def iam_numpy(A, b, f_i_star, x0, samples):
    """Run the IAM update in a Python loop with numpy calls; return x_T."""
    x = x0.copy()
    z = x0.copy()
    for t in range(samples.shape[0] - 1):
        i = samples[t, 0]
        a = A[i]
        r = a @ x - b[i]
        g = r * a
        gg = g @ g
        s = 0.5 * r * r - f_i_star[i] + g @ (z - x)
        gamma = max(s, 0.0) / gg if gg > 0.0 else 0.0
        z -= gamma * g
        lam = t + 1.0
        x = (lam * x + z) / (1.0 + lam)
    return x


def make_torch_iam(A, b, f_i_star, x0):
    """Return a function running IAM as a torch optimizer step, or None without torch.

    NOTE: torch is not installed on the machine where docs/benchmarks.md was measured,
    so this path has not been run there.
    """
    try:
        import torch
    except ImportError:
        return None

    class IAM(torch.optim.Optimizer):
        """IAM with lam_t = t: a Polyak step on the anchor z, x the running mean."""

        def __init__(self, params):
            super().__init__(params, defaults={})
            for group in self.param_groups:
                for p in group["params"]:
                    self.state[p]["z"] = p.detach().clone()
                    self.state[p]["t"] = 0

        @torch.no_grad()
        def step(self, loss, f_star):
            for group in self.param_groups:
                for p in group["params"]:
                    state = self.state[p]
                    z, g = state["z"], p.grad
                    gg = torch.dot(g, g)
                    s = loss - f_star + torch.dot(g, z - p)
                    gamma = torch.clamp(s, min=0.0) / gg if gg > 0 else 0.0
                    z.sub_(gamma * g)
                    state["t"] += 1
                    lam = float(state["t"])
                    p.mul_(lam).add_(z).div_(1.0 + lam)

    A_t = torch.from_numpy(np.ascontiguousarray(A))
    b_t = torch.from_numpy(np.ascontiguousarray(b))
    f_t = torch.from_numpy(np.ascontiguousarray(f_i_star))

    def iam_torch(samples):
        x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        optimizer = IAM([x])
        for t in range(samples.shape[0] - 1):
            i = int(samples[t, 0])
            optimizer.zero_grad()
            loss = 0.5 * (A_t[i] @ x - b_t[i]) ** 2
            loss.backward()
            optimizer.step(loss.detach(), f_t[i])
        return x.detach().numpy()

    return iam_torch


# ------------------------------------------------------------------ timing


def median_seconds(function, repeats):
    """Call ``function`` once to warm up; return the median of ``repeats`` calls."""
    function()
    return _median_after(function, repeats)


def _median_after(function, repeats):
    """Return the median of ``repeats`` timed calls, with no warm-up call."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def check_same_update(problem, solution):
    """Check that the bare loops reach the kernel's x_T (T = 200): the same updates."""
    samples = sample_indices(problem.n, 200, 1, SEED)
    data = (problem.A, problem.b, solution.f_i_star, problem.x0, samples)
    x_iam = kernel_call(problem, solution, "iam", 200)()[0][-1]
    x_sps = kernel_call(problem, solution, "sps_star", 200)()[0][-1]
    checks = (("bare Numba IAM", iam_loop(*data), x_iam),
              ("numpy IAM", iam_numpy(*data), x_iam),
              ("bare Numba SPS*", sps_loop(*data), x_sps))
    for name, x, x_kernel in checks:
        if not np.allclose(x, x_kernel, rtol=1e-9, atol=1e-12):
            raise RuntimeError(f"{name} differs from the kernel: not the same update")


def ratio_rows(n, steps, python_steps, repeats):
    """Time every loop on one problem; return rows of (name, steps, s per step)."""
    problem, solution = solved_problem(n, DIMENSION)
    check_same_update(problem, solution)
    A, b, f_i_star, x0 = problem.A, problem.b, solution.f_i_star, problem.x0
    samples = sample_indices(n, steps, 1, SEED)
    eta = 1.0 / (4.0 * problem.L_max)
    sps = kernel_call(problem, solution, "sps_star", steps)
    iam = kernel_call(problem, solution, "iam", steps)
    if not np.array_equal(sps.args[_samples_position(sps.args)], samples):
        raise RuntimeError("run() drew a different sample sequence than the baselines")

    timed = [
        ("bare Numba SGD (floor)", steps, lambda: sgd_loop(A, b, x0, samples, eta)),
        ("bare Numba SGD without fastmath", steps,
         lambda: sgd_loop_strict(A, b, x0, samples, eta)),
        (f"SPS* {sps.name}", steps, sps),
        (f"IAM {iam.name}", steps, iam),
    ]
    for method, label, call in (("sps_star", "SPS*", sps), ("iam", "IAM", iam)):
        general = kernel_call(problem, solution, method, steps, general=True)
        if general is not None and general.name != call.name:
            timed.append((f"{label} {general.name} (general loop)", steps, general))
    timed.append(("bare Numba SPS*, no checks", steps,
                  lambda: sps_loop(A, b, f_i_star, x0, samples)))
    timed.append(("bare Numba IAM, no checks", steps,
                  lambda: iam_loop(A, b, f_i_star, x0, samples)))

    short = samples[: python_steps + 1]
    timed.append(("numpy IAM, Python loop", python_steps,
                  lambda: iam_numpy(A, b, f_i_star, x0, short)))
    torch_iam = make_torch_iam(A, b, f_i_star, x0)
    if torch_iam is not None:
        timed.append(("PyTorch IAM optimizer", python_steps, lambda: torch_iam(short)))

    rows = []
    for name, count, function in timed:
        rows.append((name, count, median_seconds(function, repeats) / count))
    return rows, torch_iam is not None


def _samples_position(args):
    # The sample array is the only 2-D int64 argument of run_loop.
    for index, arg in enumerate(args):
        if isinstance(arg, np.ndarray) and arg.ndim == 2 and arg.dtype == np.int64:
            return index
    raise RuntimeError("run_loop received no 2-D int64 sample array")


@njit(cache=True)
def value_grad_calls(loss, param, sparse, A, data, indices, indptr, b, reg, row_norm,
                     phi2_max, x, samples, g):
    """Call ``batch_value_grad`` once per row of ``samples``, as run_loop does."""
    total = 0.0
    for t in range(samples.shape[0]):
        value, _, _ = batch_value_grad(loss, param, sparse, A, data, indices, indptr,
                                       b, reg, row_norm, phi2_max, x, samples[t], g)
        total += value
    return total


@njit(cache=True)
def margin_calls(sparse, A, data, indices, indptr, x, samples):
    """Call the loss kernels' ``_margin`` (np.dot of a row view) once per step."""
    total = 0.0
    for t in range(samples.shape[0]):
        total += _margin(sparse, A, data, indices, indptr, samples[t, 0], x)
    return total


@njit(cache=True)
def add_row_calls(sparse, A, data, indices, indptr, samples, g):
    """Call the loss kernels' ``_add_row`` (g += c a_i) once per step."""
    for t in range(samples.shape[0]):
        _add_row(sparse, A, data, indices, indptr, samples[t, 0], 1e-9, g)
    return g[0]


@njit(cache=True)
def inline_margin_and_add(A, x, samples, g):
    """Compute a_i.x and g += c a_i in plain loops, the same work without calls."""
    total = 0.0
    d = A.shape[1]
    for t in range(samples.shape[0]):
        i = samples[t, 0]
        m = 0.0
        for j in range(d):
            m += A[i, j] * x[j]
        for j in range(d):
            g[j] += 1e-9 * A[i, j]
        total += m
    return total


def report_breakdown(n, steps, repeats):
    """Print the per-step cost of the pieces of the general loop's gradient step.

    The general ``run_loop`` serves minibatches and sparse rows; it evaluates each
    minibatch gradient with ``batch_value_grad``.
    """
    problem, solution = solved_problem(n, DIMENSION)
    general = kernel_call(problem, solution, "iam", steps, general=True)
    if general is None:
        print("Breakdown skipped: run.py has no _GENERAL_LOOP_ONLY switch.\n")
        return
    print(f"## Where the general loop's time goes (n = {n:,}, d = {DIMENSION}, "
          "batch 1)\n")
    samples = sample_indices(n, steps, 1, SEED)
    sparse, A, data, indices, indptr = problem.kernel_data()
    x = np.ones(DIMENSION)
    g = np.zeros(DIMENSION)
    phi2_max = problem.family.phi2_max
    timed = [
        ("bare Numba SGD (floor)",
         lambda: sgd_loop(problem.A, problem.b, problem.x0, samples, 1e-3)),
        (f"IAM {general.name}, whole step", general),
        ("batch_value_grad alone", lambda: value_grad_calls(
            problem.loss_code, problem.loss_param, sparse, A, data, indices, indptr,
            problem.b, problem.reg, problem.row_norms, phi2_max, x, samples, g)),
        ("_margin alone (np.dot of A[i] and x)",
         lambda: margin_calls(sparse, A, data, indices, indptr, x, samples)),
        ("_add_row alone (g += c A[i])",
         lambda: add_row_calls(sparse, A, data, indices, indptr, samples, g)),
        ("a_i.x and g += c a_i in plain loops",
         lambda: inline_margin_and_add(A, x, samples, g)),
    ]
    rows = []
    for name, function in timed:
        per_step = median_seconds(function, repeats) / (steps + 1)
        rows.append((name, nanoseconds(per_step)))
    print_table(("piece", "ns per step"), rows)


def time_kernel(problem, solution, method, steps, repeats):
    """Return the kernel name and the median seconds of the call that run makes."""
    call = kernel_call(problem, solution, method, steps)
    return call.name, median_seconds(call, repeats)


# ------------------------------------------------------------------ memory


MEMORY_SCRIPT = """
import resource, sys, tracemalloc
sys.path.insert(0, {repo!r})
sys.path.insert(0, {bench!r})
from bench_kernels import synthetic_problem, lstsq_solution
from polyakcheck import run
problem = synthetic_problem(1000, 100)
solution = lstsq_solution(problem)
run(problem, solution, "iam", 10)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
run(problem, solution, "iam", {steps})
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak, (after - before) * 1024)
"""


def memory_row(steps):
    """Return (tracemalloc peak, maxrss growth) in bytes of one run in a fresh process.

    tracemalloc records the allocations of Python, numpy and (checked with numba
    0.68.1) the arrays that Numba allocates inside run_loop. ru_maxrss (KiB on Linux)
    measures the whole process, but grows only where the run exceeds the process's
    earlier peak.
    """
    script = MEMORY_SCRIPT.format(repo=str(REPO), bench=str(Path(__file__).parent),
                                  steps=steps)
    output = subprocess.run([sys.executable, "-c", script], check=True,
                            capture_output=True, text=True).stdout.split()
    return int(output[0]), int(output[1])


# ------------------------------------------------------------------ report


def machine_lines():
    """Return Markdown lines describing the CPU, the load and the package versions."""
    model = "unknown"
    caches = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    for level in ("L1d", "L2", "L3"):
        size = _lscpu_cache(level)
        if size:
            caches.append(f"{level} {size}")
    cores = len(os.sched_getaffinity(0))
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"- CPU: {model}, {cores} cores usable ({os.cpu_count()} online); caches as "
        f"lscpu reports them: {', '.join(caches) or 'unknown'}",
        f"- Python {platform.python_version()}, numpy {np.__version__}, numba "
        f"{numba.__version__}, polyakcheck {polyakcheck.__version__}",
        f"- load average (1, 5, 15 min) at start: {load}",
    ]


def _lscpu_cache(level):
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True,
                                check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""
    for line in output.splitlines():
        if line.startswith(f"{level} cache:"):
            return line.split(":", 1)[1].strip()
    return ""


def print_table(header, rows):
    """Print a Markdown table."""
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    print()


def nanoseconds(seconds):
    """Format seconds as nanoseconds with 3 significant digits."""
    return f"{seconds * 1e9:.3g}"


def report_ratios(sizes, steps, python_steps, repeats):
    """Print the ratio table: per-step time of each loop over the bare SGD floor."""
    print(f"## Per-step time, d = {DIMENSION}, batch 1\n")
    print(f"Numba loops: {steps:,} steps; Python loops: {python_steps:,} steps; "
          f"median of {repeats} after one warm-up call.\n")
    have_torch = False
    rows = []
    for n in sizes:
        size_rows, have_torch = ratio_rows(n, steps, python_steps, repeats)
        floor = size_rows[0][2]
        megabytes = n * DIMENSION * 8 / 1e6
        for name, count, per_step in size_rows:
            rows.append((f"{n:,} ({megabytes:.3g} MB)", name, nanoseconds(per_step),
                         f"{per_step / floor:.2f}"))
    print_table(("n (size of A)", "loop", "ns per step", "ratio to bare SGD"), rows)
    if not have_torch:
        print("PyTorch row skipped: torch cannot be imported in this environment.\n")


def report_scaling(steps_list, n_list, d_list, steps, repeats):
    """Print the time of IAM's run_loop against steps, n and d."""
    base, base_solution = solved_problem(1000, DIMENSION)
    rows = []
    for count in steps_list:
        name, seconds = time_kernel(base, base_solution, "iam", count, repeats)
        rows.append((f"{count:,}", name, f"{seconds:.4f}",
                     nanoseconds(seconds / count)))
    print(f"## IAM run_loop against steps (n = 1,000, d = {DIMENSION})\n")
    print_table(("steps", "kernel", "seconds", "ns per step"), rows)

    for axis, values in (("n", n_list), ("d", d_list)):
        rows = []
        for value in values:
            n, d = (value, DIMENSION) if axis == "n" else (1000, value)
            problem, solution = solved_problem(n, d)
            name, seconds = time_kernel(problem, solution, "iam", steps, repeats)
            rows.append((f"{value:,}", name, f"{seconds:.4f}",
                         nanoseconds(seconds / steps),
                         f"{seconds / steps / d * 1e9:.3g}"))
        fixed = f"d = {DIMENSION}" if axis == "n" else "n = 1,000"
        print(f"## IAM run_loop against {axis} ({fixed}, {steps:,} steps)\n")
        print_table((axis, "kernel", "seconds", "ns per step",
                     "ns per step and coordinate"),
                    rows)


def report_memory(steps_list):
    """Print the peak memory of one IAM run against steps."""
    rows = []
    for count in steps_list:
        peak, rss = memory_row(count)
        samples = (count + 1) * 8
        rows.append((f"{count:,}", f"{samples / 1e6:.3g}", f"{peak / 1e6:.3g}",
                     f"{(peak - samples) / 1e6:.3g}", f"{rss / 1e6:.3g}"))
    print("## Peak memory of polyakcheck.run (IAM, n = 1,000, d = 100, batch 1)\n")
    print_table(("steps", "samples array MB", "tracemalloc peak MB",
                 "peak minus samples MB", "maxrss growth MB"), rows)


def report_oracle(sizes, repeats):
    """Print the time of polyakcheck.solve on the bundled sets and synthetic sizes."""
    problems = [load_dataset(name) for name in ("diabetes", "breast_cancer")]
    problems += [synthetic_problem(n, d) for n, d in sizes]
    rows = []
    for problem in problems:
        # The first call is the warm-up, and a slow problem is then timed once more.
        started = time.perf_counter()
        solution = solve(problem)
        first = time.perf_counter() - started
        count = repeats if first < 2.0 else 1
        seconds = _median_after(lambda: solve(problem), count)
        rows.append((problem.name, problem.loss, f"{problem.n:,}", problem.d,
                     f"{seconds:.3f}", solution.solver, solution.polish_steps))
    print("## Oracle polyakcheck.solve\n")
    print(f"Each time follows a warm-up call: the median of {repeats} calls, or one "
          "call when the warm-up took 2 s or more.\n")
    print_table(("problem", "loss", "n", "d", "seconds", "solver", "Newton steps"),
                rows)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few repeats, for a smoke test")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed calls per measurement after one warm-up "
                        "(default 5)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    command = shlex.join(["python", *sys.argv])
    print("# bench_kernels\n")
    print(f"Command: `{command}`\n")
    print("\n".join(machine_lines()) + "\n")
    if args.quick:
        report_ratios((1000, 20000), 100_000, 2000, 2)
        report_breakdown(1000, 100_000, 2)
        report_scaling((10_000, 100_000), (1000, 20000), (10, 100), 100_000, 2)
        report_memory((10_000, 100_000))
        report_oracle(((1000, 100),), 2)
    else:
        repeats = args.repeats
        report_ratios((1000, 200_000, 2_000_000), 1_000_000, 20_000, repeats)
        report_breakdown(1000, 1_000_000, repeats)
        report_scaling((10_000, 100_000, 1_000_000),
                       (1000, 10_000, 100_000, 200_000, 2_000_000),
                       (10, 30, 100, 300, 1000), 300_000, repeats)
        report_memory((10_000, 100_000, 1_000_000))
        report_oracle(((1000, 100), (10_000, 100), (200_000, 100), (1000, 1000)),
                      repeats)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"Load average (1, 5, 15 min) at the end: {load}")


if __name__ == "__main__":
    main()
