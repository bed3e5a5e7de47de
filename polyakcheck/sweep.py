"""Sweeps: every run of a grid of problems, methods, batch sizes and run lengths.

A sweep is configured in TOML (``polyakcheck sweep CONFIG.toml``)::

    seeds = 25                  # a count (seeds 0..24) or a list of distinct seeds
    batch_sizes = [1, 8]
    steps = [10000]
    confidence = 0.99           # optional, family-wise level of each verdict
    sampling = "uniform"        # optional: "uniform", "shuffle" or "cyclic"

    [[problems]]
    name = "diabetes"           # a bundled data set; optional: loss, reg, loss_param

    [[problems]]
    name = "diabetes"
    loss = "huber"              # labelled "diabetes-huber" unless label = "..." is set

    [[problems]]
    kind = "synthetic"          # least squares on Gaussian data, see make_synthetic
    n = 500
    d = 20
    seed = 0
    noise = 0.1

    [[methods]]
    name = "sps_star"           # any name of make_method, with its parameters

    [[methods]]
    name = "iam"

The sweep is the product problems x methods x batch sizes x steps, and each of these
groups runs once per seed. Each problem has a label (its data set name by default),
which names its report page and must be distinct. One run unit is (problem, method, batch size, steps, seed)
computed by ``polyakcheck.run``. The oracle solves each problem once in the parent
process, and the solved problems are shipped to the workers: a local process pool by
default, or the workers of a Dask scheduler. Every finished run is stored in a
``RunStore`` (SQLite) under its content hash, so an interrupted sweep resumes where it
stopped and two sweeps that share runs compute them once. The verdicts of each group
come from ``verify.method_verdicts`` over the group's seeds, and the sweep writes
``index.html``, one page per problem under ``problems/`` and ``results.json``.
"""

import dataclasses
import logging
import math
import multiprocessing
import numbers
import os
import re
import signal
import threading
import time
import tomllib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
from tqdm.auto import tqdm

from polyakcheck.atomic import write_json_atomic, write_text_atomic
from polyakcheck.checks.claims import DEFAULT_CONFIDENCE
from polyakcheck.checks.verdict import STATUSES
from polyakcheck.constants import instance_constants
from polyakcheck.methods.spec import Method, make_method
from polyakcheck.oracle import solve
from polyakcheck.problems.datasets import BUNDLED, COMPATIBLE, load_dataset
from polyakcheck.problems.families import FAMILIES
from polyakcheck.problems.problem import Problem
from polyakcheck.run import SAMPLINGS, checkpoint_grid, run
from polyakcheck.store import RunStore, code_version, run_key
from polyakcheck.verify import method_verdicts

logger = logging.getLogger(__name__)

RESULTS_FORMAT = "polyakcheck-sweep"
RESULTS_FORMAT_VERSION = 1
STORE_NAME = "runs.sqlite"

CONFIG_KEYS = ("problems", "methods", "seeds", "batch_sizes", "steps", "confidence",
               "sampling")
REQUIRED_KEYS = ("problems", "methods", "seeds", "batch_sizes", "steps")
BUNDLED_KEYS = ("kind", "name", "label", "loss", "reg", "loss_param")
SYNTHETIC_KEYS = ("kind", "label", "n", "d", "seed", "noise", "reg")
# Parameters a [[methods]] table may set: every field of Method except its kind.
METHOD_PARAM_KEYS = tuple(
    f.name for f in dataclasses.fields(Method) if f.name != "kind"
)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")

# How often a pool worker checks that the sweep process that started it is alive.
PARENT_POLL_SECONDS = 1.0
# "forkserver" or "spawn": both start workers without copying this process's threads.
POOL_START_METHOD = "forkserver"


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep configuration.

    Attributes
    ----------
    problems : tuple of dict
        Problem specs with every default filled in: ``kind`` ("bundled" or
        "synthetic"), ``name`` and the parameters of that kind.
    methods : tuple of Method
    seeds : tuple of int
    batch_sizes : tuple of int
    steps : tuple of int
    confidence : float
    sampling : str
        Sampling scheme of every run, one of ``polyakcheck.run.SAMPLINGS``.
    """

    problems: tuple
    methods: tuple
    seeds: tuple
    batch_sizes: tuple
    steps: tuple
    confidence: float
    sampling: str = "uniform"

    def to_dict(self):
        """Return the configuration as a JSON-ready dict."""
        return {
            "problems": [dict(spec) for spec in self.problems],
            "methods": [method.describe() for method in self.methods],
            "seeds": list(self.seeds),
            "batch_sizes": list(self.batch_sizes),
            "steps": list(self.steps),
            "confidence": self.confidence,
            "sampling": self.sampling,
        }


def load_config(source):
    """Read and validate a sweep configuration.

    Parameters
    ----------
    source : str, os.PathLike or dict
        Path of a TOML file, or the already parsed table.

    Returns
    -------
    SweepConfig

    Raises
    ------
    ValueError
        If the file cannot be read or is not valid TOML, or if a key is missing,
        unknown or has an invalid value. The message names the key and the fix.
    """
    if isinstance(source, dict):
        return parse_config(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(
            f"cannot read sweep config {str(path)!r}: {exc.strerror}; pass the path "
            "of a TOML file"
        ) from exc
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(
            f"invalid TOML in sweep config {str(path)!r}: {exc}; fix the syntax there"
        ) from exc
    return parse_config(table)


def parse_config(table):
    """Validate a parsed configuration table and return a ``SweepConfig``.

    Raises
    ------
    ValueError
        If a key is missing, unknown or has an invalid value.
    """
    if not isinstance(table, dict):
        raise ValueError(
            f"sweep config must be a table of keys, got {type(table).__name__}"
        )
    _reject_unknown_keys(table, CONFIG_KEYS, "sweep config")
    for key in REQUIRED_KEYS:
        if key not in table:
            raise ValueError(
                f"sweep config is missing the key {key!r}; add it, for example "
                f"{_EXAMPLES[key]}"
            )
    confidence = table.get("confidence", DEFAULT_CONFIDENCE)
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) \
            or not 0.5 < confidence < 1.0:
        raise ValueError(
            f"config key 'confidence' must be a number in (0.5, 1), got "
            f"{confidence!r}; write for example confidence = 0.99"
        )
    sampling = table.get("sampling", "uniform")
    if sampling not in SAMPLINGS:
        raise ValueError(
            f"config key 'sampling' must be one of {', '.join(SAMPLINGS)}, got "
            f"{sampling!r}; write for example sampling = \"uniform\""
        )
    return SweepConfig(
        problems=_parse_problems(table["problems"]),
        methods=_parse_methods(table["methods"]),
        seeds=_parse_seeds(table["seeds"]),
        batch_sizes=_parse_int_list(table["batch_sizes"], "batch_sizes", 1),
        steps=_parse_int_list(table["steps"], "steps", 1),
        confidence=float(confidence),
        sampling=sampling,
    )


_EXAMPLES = {
    "problems": '[[problems]] with name = "diabetes"',
    "methods": '[[methods]] with name = "sps_star"',
    "seeds": "seeds = 25",
    "batch_sizes": "batch_sizes = [1]",
    "steps": "steps = [10000]",
}


def _reject_unknown_keys(table, allowed, where):
    for key in table:
        if key not in allowed:
            raise ValueError(
                f"unknown key {key!r} in {where}; allowed keys are "
                f"{', '.join(allowed)}"
            )


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_int(value, key, minimum):
    if not _is_int(value) or value < minimum:
        raise ValueError(
            f"config key {key!r} must be an integer >= {minimum}, got {value!r}"
        )
    return int(value)


def _check_number(value, key, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value < minimum:
        raise ValueError(
            f"config key {key!r} must be a finite number >= {minimum}, got {value!r}"
        )
    return float(value)


def _parse_int_list(value, key, minimum):
    values = [value] if _is_int(value) else value
    if not isinstance(values, list) or not values:
        raise ValueError(
            f"config key {key!r} must be an integer or a non-empty list of integers, "
            f"got {value!r}; write for example {_EXAMPLES[key]}"
        )
    checked = [_check_int(v, f"{key}[{i}]", minimum) for i, v in enumerate(values)]
    if len(set(checked)) != len(checked):
        raise ValueError(f"config key {key!r} lists a value twice: {checked}")
    return tuple(checked)


def _parse_seeds(value):
    if _is_int(value):
        return tuple(range(_check_int(value, "seeds", 1)))
    if not isinstance(value, list) or not value:
        raise ValueError(
            f"config key 'seeds' must be a count or a non-empty list of seeds, got "
            f"{value!r}; write for example seeds = 25 or seeds = [0, 1, 2]"
        )
    return _parse_int_list(value, "seeds", 0)


def _parse_problems(value):
    if not isinstance(value, list) or not value:
        raise ValueError(
            "config key 'problems' must be a non-empty array of tables; add for "
            'example [[problems]] with name = "diabetes"'
        )
    specs = [_parse_problem(entry, f"problems[{i}]") for i, entry in enumerate(value)]
    names = [spec["name"] for spec in specs]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise ValueError(
                f"problems[{i}] has the label {name!r} of an earlier problem; set a "
                "distinct label = \"...\" on one of them"
            )
    return tuple(specs)


def _parse_problem(entry, where):
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a table, got {entry!r}")
    kind = entry.get("kind", "bundled")
    if kind == "bundled":
        spec = _parse_bundled(entry, where)
    elif kind == "synthetic":
        spec = _parse_synthetic(entry, where)
    else:
        raise ValueError(
            f"{where}.kind {kind!r} is unknown; use \"bundled\" (the default) or "
            "\"synthetic\""
        )
    label = spec["name"]
    if not isinstance(label, str) or not NAME_PATTERN.match(label):
        raise ValueError(
            f"{where}.label {label!r} is invalid; use letters, digits, '_', '.' and "
            "'-' only, because the label becomes a file name"
        )
    return spec


def _parse_bundled(entry, where):
    _reject_unknown_keys(entry, BUNDLED_KEYS, where)
    if "name" not in entry:
        raise ValueError(
            f"{where} is missing the key 'name'; name a bundled data set, one of "
            f"{', '.join(BUNDLED)}, or set kind = \"synthetic\""
        )
    data = entry["name"]
    if data not in BUNDLED:
        raise ValueError(
            f"{where}.name {data!r} is not a bundled data set; use one of "
            f"{', '.join(BUNDLED)}, or set kind = \"synthetic\""
        )
    spec = {"kind": "bundled", "data": data}
    if "loss" in entry:
        if entry["loss"] not in FAMILIES:
            raise ValueError(
                f"{where}.loss {entry['loss']!r} is not a known loss; use one of "
                f"{', '.join(COMPATIBLE[data])} for {data!r}"
            )
        if entry["loss"] not in COMPATIBLE[data]:
            raise ValueError(
                f"{where}.loss {entry['loss']!r} does not fit the data set {data!r}; "
                f"use one of {', '.join(COMPATIBLE[data])}"
            )
        spec["loss"] = entry["loss"]
    if "reg" in entry:
        spec["reg"] = _check_number(entry["reg"], f"{where}.reg", 0.0)
    if "loss_param" in entry:
        spec["loss_param"] = _check_number(entry["loss_param"], f"{where}.loss_param",
                                           0.0)
    default_label = f"{data}-{spec['loss']}" if "loss" in spec else data
    return {"name": entry.get("label", default_label), **spec}


def _parse_synthetic(entry, where):
    _reject_unknown_keys(entry, SYNTHETIC_KEYS, where)
    for key in ("n", "d", "seed", "noise"):
        if key not in entry:
            raise ValueError(
                f"{where} is missing the key {key!r}; a synthetic problem needs n, d, "
                "seed and noise, for example {kind = \"synthetic\", n = 500, d = 20, "
                "seed = 0, noise = 0.1}"
            )
    spec = {
        "kind": "synthetic",
        "n": _check_int(entry["n"], f"{where}.n", 1),
        "d": _check_int(entry["d"], f"{where}.d", 1),
        "seed": _check_int(entry["seed"], f"{where}.seed", 0),
        "noise": _check_number(entry["noise"], f"{where}.noise", 0.0),
        "reg": _check_number(entry.get("reg", 0.0), f"{where}.reg", 0.0),
    }
    default_label = f"synthetic-n{spec['n']}-d{spec['d']}-seed{spec['seed']}"
    return {"name": entry.get("label", default_label), **spec}


def _parse_methods(value):
    if not isinstance(value, list) or not value:
        raise ValueError(
            "config key 'methods' must be a non-empty array; add for example "
            '[[methods]] with name = "sps_star"'
        )
    methods = [_parse_method(entry, f"methods[{i}]") for i, entry in enumerate(value)]
    labels = [method.label for method in methods]
    for i, label in enumerate(labels):
        if labels.index(label) != i:
            raise ValueError(
                f"methods[{i}] has the label {label!r} of an earlier method; set a "
                "distinct label = \"...\" on one of them"
            )
    return tuple(methods)


def _parse_method(entry, where):
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a method name or a table, got {entry!r}")
    if "name" not in entry:
        raise ValueError(
            f"{where} is missing the key 'name'; write for example name = \"iam\""
        )
    params = {key: val for key, val in entry.items() if key != "name"}
    _reject_unknown_keys(params, METHOD_PARAM_KEYS, where)
    try:
        return make_method(entry["name"], **params)
    except (TypeError, ValueError) as exc:
        key = f"{where}.name" if "unknown method" in str(exc) else where
        raise ValueError(f"{key}: {exc}") from exc


# ---------------------------------------------------------------- problems


def make_synthetic(n, d, seed, noise, reg=0.0, name=None):
    """Build a least-squares problem on Gaussian data.

    A has i.i.d. standard normal entries, x_true has i.i.d. N(0, 1 / d) entries, and
    b = A x_true + noise * e with standard normal e, all drawn from
    ``numpy.random.default_rng(seed)`` in this order.

    Returns
    -------
    Problem
    """
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d))
    x_true = rng.standard_normal(d) / math.sqrt(d)
    b = A @ x_true + noise * rng.standard_normal(n)
    name = name or f"synthetic-n{n}-d{d}-seed{seed}"
    return Problem(name, "least_squares", A, b, reg=reg)


def build_problem(spec):
    """Build the ``Problem`` of a validated problem spec, named by its label."""
    if spec["kind"] == "synthetic":
        return make_synthetic(spec["n"], spec["d"], spec["seed"], spec["noise"],
                              reg=spec["reg"], name=spec["name"])
    problem = load_dataset(spec["data"], loss=spec.get("loss"), reg=spec.get("reg"),
                           loss_param=spec.get("loss_param"))
    if problem.name != spec["name"]:
        problem = dataclasses.replace(problem, name=spec["name"])
    return problem


# ---------------------------------------------------------------- run units


@dataclass(frozen=True)
class RunUnit:
    """One run of a sweep: (problem, method, batch size, steps, seed) and its key."""

    problem: str
    method: Method
    batch_size: int
    steps: int
    seed: int
    sampling: str
    key: str

    @property
    def group(self):
        """Return (problem, method label, batch size, steps): the verdict group."""
        return (self.problem, self.method.label, self.batch_size, self.steps)


def plan_units(config, contexts, version):
    """List every run unit of ``config`` in report order.

    Parameters
    ----------
    config : SweepConfig
    contexts : dict
        Problem name -> (Problem, Solution).
    version : str
        ``store.code_version()``.

    Returns
    -------
    list of RunUnit
    """
    units = []
    for spec in config.problems:
        problem, solution = contexts[spec["name"]]
        for method in config.methods:
            for batch_size in config.batch_sizes:
                for steps in config.steps:
                    grid = checkpoint_grid(steps)
                    for seed in config.seeds:
                        key = run_key(problem, solution, method, seed, batch_size,
                                      steps, grid, version, config.sampling)
                        units.append(RunUnit(spec["name"], method, batch_size, steps,
                                             seed, config.sampling, key))
    return units


def compute_run(context, method, steps, batch_size, seed, sampling="uniform"):
    """Run one unit on a solved problem and return its ``Trace``.

    ``context`` is the pair (Problem, Solution). This is the function that the Dask
    workers call.
    """
    problem, solution = context
    _restore_read_only(problem, solution)
    return run(problem, solution, method, steps, batch_size, seed,
               checkpoint_grid(steps), sampling)


def _restore_read_only(problem, solution):
    # Unpickled arrays are writeable, and Numba compiles a separate specialization for
    # writeable arrays. Restoring the read-only flags that Problem and solve() set lets
    # a worker reuse the kernel that the parent process compiled and cached.
    if problem.sparse:
        matrix_arrays = (problem.A.data, problem.A.indices, problem.A.indptr)
    else:
        matrix_arrays = (problem.A,)
    for array in (*matrix_arrays, problem.b, problem.x0, problem.row_norms,
                  solution.x_star, solution.f_i_star):
        if array.flags.writeable:
            array.setflags(write=False)


# Set in each pool worker by _init_worker: problem name -> (Problem, Solution).
_WORKER_CONTEXTS = {}


def _init_worker(contexts, sweep_pid):
    # Ctrl-C reaches the whole process group; the sweep process handles it and
    # terminates the workers, so a worker ignores it instead of printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_CONTEXTS.update(contexts)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        # The pool already uses every core, so BLAS threads would only oversubscribe.
        threadpool_limits(1)
    watcher = threading.Thread(target=_exit_when_orphaned, args=(sweep_pid,),
                               daemon=True)
    watcher.start()


def _exit_when_orphaned(sweep_pid):
    # A worker blocks on its task queue forever if the sweep process is killed, and a
    # fork server lives as long as its workers do, so each worker watches the sweep
    # process itself and exits when it is gone.
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        if not _process_running(sweep_pid):
            os._exit(1)


def _process_running(pid):
    """Return False when ``pid`` has exited, including a zombie not yet reaped."""
    try:
        # The command name in parentheses may contain any bytes, so the state field
        # is the first one after the last ")".
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:
        pass
    # Without /proc, a zombie still counts as running.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_in_pool(problem_name, method, steps, batch_size, seed, sampling):
    return compute_run(_WORKER_CONTEXTS[problem_name], method, steps, batch_size, seed,
                       sampling)


def default_workers():
    """Return the number of cores that this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# ---------------------------------------------------------------- execution


def _execute_inline(pending, contexts, on_trace):
    for unit in pending:
        trace = compute_run(contexts[unit.problem], unit.method, unit.steps,
                            unit.batch_size, unit.seed, unit.sampling)
        on_trace(unit, trace)


def _pool_context():
    context = multiprocessing.get_context(POOL_START_METHOD)
    if POOL_START_METHOD == "forkserver":
        # The preload list applies when the fork server starts, once per process.
        context.set_forkserver_preload([__name__])
    return context


def _execute_pool(pending, contexts, workers, on_trace):
    # A fork server starts from a clean interpreter, so no lock held by another thread
    # of this process (tqdm's monitor, a Dask client) is copied into a worker. It
    # imports this module once, and every worker forks from it with the imports done.
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_pool_context(),
        initializer=_init_worker,
        initargs=(contexts, os.getpid()),
    )
    try:
        futures = {
            executor.submit(_run_in_pool, unit.problem, unit.method, unit.steps,
                            unit.batch_size, unit.seed, unit.sampling): unit
            for unit in pending
        }
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for future in done:
                on_trace(futures[future], _result_or_log(future, futures[future]))
    except BaseException:
        # Every finished run is already committed to the store, so an interrupt or an
        # error only loses the runs in flight. Terminating the workers, instead of
        # waiting for them, keeps the exit prompt: waiting could hang in
        # multiprocessing's exit handler after the futures were cancelled.
        for process in list((getattr(executor, "_processes", None) or {}).values()):
            process.terminate()
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def _execute_dask(pending, contexts, address, on_trace):
    from distributed import Client, as_completed

    with Client(address) as client:
        logger.info("submitting %d runs to the Dask scheduler at %s", len(pending),
                    address)
        shared = {
            name: client.scatter([context], broadcast=True)[0]
            for name, context in contexts.items()
            if any(unit.problem == name for unit in pending)
        }
        futures = {}
        for unit in pending:
            future = client.submit(
                compute_run, shared[unit.problem], unit.method, unit.steps,
                unit.batch_size, unit.seed, unit.sampling,
                key=f"polyakcheck-run-{unit.key}",
            )
            futures[future] = unit
        try:
            for future in as_completed(list(futures)):
                on_trace(futures[future], _result_or_log(future, futures[future]))
        finally:
            client.cancel(list(futures))


def _result_or_log(future, unit):
    try:
        return future.result()
    except Exception as exc:
        logger.error(
            "run failed: problem %s, method %s, batch size %d, steps %d, seed %d "
            "(key %s): %s", unit.problem, unit.method.label, unit.batch_size,
            unit.steps, unit.seed, unit.key[:12], exc,
        )
        raise


# ---------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class SweepResult:
    """Outcome of ``run_sweep``.

    Attributes
    ----------
    out_dir, index_path, results_path, store_path : pathlib.Path
    runs_total : int
        Distinct run units of the sweep.
    runs_computed : int
        Units computed by this call; the other ``runs_reused`` were in the store.
    runs_reused : int
    groups : list of dict
        One per (problem, method, batch size, steps): ``problem``, ``method``,
        ``batch_size``, ``steps``, ``seeds``, ``runs`` (keys) and ``verdicts``
        (list of Verdict).
    backend : str
        Where the runs were computed.
    seconds : float
        Wall time of the whole call.
    """

    out_dir: Path
    index_path: Path
    results_path: Path
    store_path: Path
    runs_total: int
    runs_computed: int
    runs_reused: int
    groups: list = field(repr=False)
    backend: str
    seconds: float

    @property
    def summary(self):
        """Count the verdicts of each status over all groups."""
        counts = dict.fromkeys(STATUSES, 0)
        for group in self.groups:
            for verdict in group["verdicts"]:
                counts[verdict.status] += 1
        return counts

    @property
    def violated(self):
        """True when any verdict is ``violated``."""
        return self.summary["violated"] > 0


def run_sweep(config, out_dir, scheduler=None, workers=None, progress=True,
              store_path=None, on_run_stored=None):
    """Run every unit of a sweep that the store lacks, then check and report.

    Parameters
    ----------
    config : str, os.PathLike, dict or SweepConfig
        TOML path, parsed table or validated configuration.
    out_dir : str or os.PathLike
        Directory of ``index.html``, ``problems/*.html``, ``results.json`` and, by
        default, the store.
    scheduler : str, optional
        Address of a Dask scheduler, for example ``"tcp://127.0.0.1:8786"``. Its
        workers must be able to import polyakcheck. Default: a local process pool.
    workers : int, optional
        Processes of the local pool (default: the cores this process may use). 0 runs
        every unit in the calling process, which helps debugging. Ignored with
        ``scheduler``.
    progress : bool
        Show a tqdm bar over the runs.
    store_path : str or os.PathLike, optional
        SQLite results store, default ``out_dir / "runs.sqlite"``. Sweeps that pass
        the same store share their runs.
    on_run_stored : callable, optional
        Called as ``on_run_stored(count)`` in this process after each run is
        committed, with the number of runs this call has stored so far. An exception
        it raises stops the sweep, which is how the tests interrupt one.

    Returns
    -------
    SweepResult

    Raises
    ------
    ValueError
        If the configuration is invalid or ``workers`` is negative.

    Notes
    -----
    The local pool starts its workers through a fork server, which imports the
    calling script's ``__main__`` module again, so a script that calls ``run_sweep``
    at top level must do so under ``if __name__ == "__main__":``.
    """
    started = time.perf_counter()
    if not isinstance(config, SweepConfig):
        config = load_config(config)
    if workers is None:
        workers = default_workers()
    if not _is_int(workers) or workers < 0:
        raise ValueError(
            f"workers must be an integer >= 0 (0 runs in this process), got {workers!r}"
        )
    out_dir = Path(out_dir)
    store_path = Path(store_path) if store_path is not None else out_dir / STORE_NAME

    contexts = _solve_problems(config)
    version = code_version()
    units = plan_units(config, contexts, version)
    if scheduler is not None:
        backend = f"dask {scheduler}"
    elif workers == 0:
        backend = "in process"
    else:
        backend = f"local pool of {workers} processes"

    with RunStore(store_path) as store:
        unique = {}
        for unit in units:
            unique.setdefault(unit.key, unit)
        stored = store.stored_keys(unique)
        pending = [unit for key, unit in unique.items() if key not in stored]
        logger.info(
            "sweep: %d runs, %d in the store %s, %d to compute (%s)", len(unique),
            len(stored), store_path, len(pending), backend,
        )
        _execute(store, pending, contexts, scheduler, workers, progress,
                 len(unique), on_run_stored, version)
        traces = store.get_many(unique)

    groups = _group_verdicts(config, contexts, units, traces)
    seconds = time.perf_counter() - started
    result = SweepResult(
        out_dir=out_dir,
        index_path=out_dir / "index.html",
        results_path=out_dir / "results.json",
        store_path=store_path,
        runs_total=len(unique),
        runs_computed=len(pending),
        runs_reused=len(unique) - len(pending),
        groups=groups,
        backend=backend,
        seconds=seconds,
    )
    write_outputs(result, config, contexts, version)
    logger.info("sweep finished in %.1f s: %s", seconds, _summary_text(result))
    return result


def _solve_problems(config):
    contexts = {}
    for spec in config.problems:
        problem = build_problem(spec)
        solution = solve(problem)
        logger.info("solved %s (n=%d, d=%d, %s) in %.2f s", problem.name, problem.n,
                    problem.d, problem.loss, solution.solve_seconds)
        contexts[spec["name"]] = (problem, solution)
    return contexts


def _execute(store, pending, contexts, scheduler, workers, progress, total,
             on_run_stored, version):
    if not pending:
        return
    bar = tqdm(total=total, initial=total - len(pending), desc="sweep", unit="run",
               disable=not progress)
    count = 0

    def on_trace(unit, trace):
        nonlocal count
        store.put(unit.key, unit.problem, trace, version)
        count += 1
        bar.update()
        if on_run_stored is not None:
            on_run_stored(count)

    try:
        if scheduler is not None:
            _execute_dask(pending, contexts, scheduler, on_trace)
        elif workers == 0:
            _execute_inline(pending, contexts, on_trace)
        else:
            _execute_pool(pending, contexts, workers, on_trace)
    finally:
        bar.close()
        if count < len(pending):
            logger.warning("sweep stopped after %d of %d runs; the stored runs are "
                           "kept, so running it again resumes", count, len(pending))


def _group_verdicts(config, contexts, units, traces):
    grouped = {}
    for unit in units:
        grouped.setdefault(unit.group, []).append(unit)
    constants = {}
    groups = []
    for (name, label, batch_size, steps), members in grouped.items():
        problem, solution = contexts[name]
        if (name, batch_size) not in constants:
            constants[name, batch_size] = instance_constants(problem, solution,
                                                             batch_size)
        method = members[0].method
        verdicts = method_verdicts(
            [traces[unit.key] for unit in members], method.claims,
            constants[name, batch_size], problem.assumptions, config.confidence,
            name,
        )
        groups.append({
            "problem": name,
            "method": label,
            "method_params": method.describe(),
            "batch_size": batch_size,
            "steps": steps,
            "seeds": [unit.seed for unit in members],
            "runs": [unit.key for unit in members],
            "verdicts": verdicts,
        })
    return groups


def _summary_text(result):
    counts = ", ".join(f"{n} {status}" for status, n in result.summary.items() if n)
    return (f"{counts or 'no verdicts'}; {result.runs_total} runs, "
            f"{result.runs_computed} computed, {result.runs_reused} reused")


# ---------------------------------------------------------------- outputs


def write_outputs(result, config, contexts, version):
    """Write the problem pages, ``results.json`` and ``index.html``, each atomically.

    The index is written last, so every page it links to exists when it appears.
    """
    environment = _environment()
    problems = [_problem_view(spec, contexts, result) for spec in config.problems]
    for view in problems:
        page = environment.get_template("problem").render(problem=view)
        write_text_atomic(result.out_dir / view["page"], page)
    write_json_atomic(result.results_path, _results_document(result, config,
                                                             problems, version))
    index = environment.get_template("index").render(
        problems=problems, summary=result.summary, result=result, config=config,
        version=version,
    )
    write_text_atomic(result.index_path, index)
    logger.info("wrote %s and %s", result.index_path, result.results_path)


def _problem_view(spec, contexts, result):
    problem, solution = contexts[spec["name"]]
    groups = [g for g in result.groups if g["problem"] == spec["name"]]
    counts = dict.fromkeys(STATUSES, 0)
    for group in groups:
        for verdict in group["verdicts"]:
            counts[verdict.status] += 1
    return {
        "name": problem.name,
        "page": f"problems/{problem.name}.html",
        "spec": dict(spec),
        "loss": problem.loss,
        "n": problem.n,
        "d": problem.d,
        "reg": problem.reg,
        "f_star": float(solution.f_star),
        "certificate": solution.certificate(),
        "summary": counts,
        "groups": groups,
    }


def _results_document(result, config, problems, version):
    return {
        "format": RESULTS_FORMAT,
        "format_version": RESULTS_FORMAT_VERSION,
        "code_version": version,
        "config": config.to_dict(),
        "summary": result.summary,
        "runs": {"total": result.runs_total, "computed": result.runs_computed,
                 "reused": result.runs_reused},
        "backend": result.backend,
        "seconds": result.seconds,
        "problems": [
            {key: view[key] for key in ("name", "page", "spec", "loss", "n", "d",
                                        "reg", "f_star", "certificate", "summary")}
            for view in problems
        ],
        "groups": [
            {**{key: val for key, val in group.items() if key != "verdicts"},
             "verdicts": [verdict.to_dict() for verdict in group["verdicts"]]}
            for group in result.groups
        ],
    }


def format_number(value, digits=4):
    """Format a number with ``digits`` significant digits; None and NaN become "—"."""
    if value is None:
        return "—"
    if _is_int(value):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "—"
    return f"{value:.{digits}g}"


def _status_class(status):
    return "status-" + re.sub(r"[^a-z0-9]+", "-", status.lower()).strip("-")


def _environment():
    environment = jinja2.Environment(
        loader=jinja2.DictLoader({"index": _INDEX_TEMPLATE,
                                  "problem": _PROBLEM_TEMPLATE,
                                  "style": _STYLE}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = format_number
    environment.filters["status_class"] = _status_class
    return environment


_STYLE = """<style>
  body { font-family: system-ui, sans-serif; font-size: 14px; color: #1f2328;
         margin: 0 auto; padding: 16px 24px 48px; max-width: 1300px; }
  table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
  th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; }
  th { background: #f6f8fa; }
  td.number { text-align: right; font-variant-numeric: tabular-nums; }
  .status-holds { color: #1a7f37; background: #dafbe1; font-weight: 600; }
  .status-violated { color: #b42318; background: #ffe1de; font-weight: 600; }
  .status-inconclusive { color: #8a5a00; background: #fff1c2; font-weight: 600; }
  .status-not-applicable { color: #57606a; background: #eaeef2; font-weight: 600; }
  code { font-family: ui-monospace, monospace; font-size: 12.5px; }
</style>"""

_INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>polyakcheck sweep</title>
{% include "style" %}
</head>
<body>
<h1>polyakcheck sweep</h1>
<p>
{% for status, count in summary.items() %}
<span class="{{ status | status_class }}">{{ count }} {{ status }}</span>
{% endfor %}
</p>
<table>
<tr><th>runs</th><td>{{ result.runs_total }} ({{ result.runs_computed }} computed,
{{ result.runs_reused }} reused from the store)</td></tr>
<tr><th>seeds</th>
<td>{{ config.seeds | length }}: {{ config.seeds | join(", ") }}</td></tr>
<tr><th>batch sizes</th><td>{{ config.batch_sizes | join(", ") }}</td></tr>
<tr><th>steps</th><td>{{ config.steps | join(", ") }}</td></tr>
<tr><th>methods</th>
<td>{{ config.methods | map(attribute="label") | join(", ") }}</td></tr>
<tr><th>confidence</th><td>{{ config.confidence }}</td></tr>
<tr><th>sampling</th><td>{{ config.sampling }}</td></tr>
<tr><th>backend</th><td>{{ result.backend }}</td></tr>
<tr><th>wall time</th><td>{{ result.seconds | num(3) }} s</td></tr>
<tr><th>code version</th><td><code>{{ version }}</code></td></tr>
<tr><th>data</th><td><a href="results.json">results.json</a></td></tr>
</table>
<h2>Problems</h2>
<table>
<tr><th>problem</th><th>loss</th><th class="number">n</th><th class="number">d</th>
<th class="number">reg</th><th class="number">groups</th>
{% for status in summary %}<th class="number">{{ status }}</th>{% endfor %}</tr>
{% for p in problems %}
<tr><td><a href="{{ p.page }}">{{ p.name }}</a></td><td>{{ p.loss }}</td>
<td class="number">{{ p.n }}</td><td class="number">{{ p.d }}</td>
<td class="number">{{ p.reg | num }}</td><td class="number">{{ p.groups | length }}</td>
{% for status, count in p.summary.items() %}
{% set flagged = count and status != "holds" %}
<td class="number{{ (' ' ~ (status | status_class)) if flagged }}">{{ count }}</td>
{% endfor %}
</tr>
{% endfor %}
</table>
</body>
</html>
"""

_PROBLEM_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>polyakcheck sweep: {{ problem.name }}</title>
{% include "style" %}
</head>
<body>
<p><a href="../index.html">sweep index</a></p>
<h1>{{ problem.name }}</h1>
<table>
<tr><th>loss</th><td>{{ problem.loss }}</td></tr>
<tr><th>n, d</th><td>{{ problem.n }}, {{ problem.d }}</td></tr>
<tr><th>reg</th><td>{{ problem.reg | num }}</td></tr>
<tr><th>source</th><td><code>{{ problem.spec }}</code></td></tr>
<tr><th>f_star</th><td>{{ problem.f_star | num(10) }}</td></tr>
<tr><th>oracle</th><td>{{ problem.certificate.solver }}, ||grad f(x_star)|| =
{{ problem.certificate.grad_norm | num }} (rounding floor
{{ problem.certificate.grad_norm_tol | num }})</td></tr>
</table>
<h2>Verdicts</h2>
<p>One row per statement of each group (method, batch size, steps). The margin is
the relative slack at the worst point; a negative margin means the bound is exceeded
there. Hover a statement for its formula and a status for the checker's message.</p>
<table>
<tr><th>method</th><th class="number">batch size</th><th class="number">steps</th>
<th class="number">seeds</th><th>statement</th><th>status</th>
<th class="number">margin</th><th>where</th></tr>
{% for group in problem.groups %}
{% for v in group.verdicts %}
<tr><td>{{ group.method }}</td><td class="number">{{ group.batch_size }}</td>
<td class="number">{{ group.steps }}</td>
<td class="number">{{ group.seeds | length }}</td>
<td title="{{ v.title }}">{{ v.statement }}</td>
<td class="{{ v.status | status_class }}" title="{{ v.message }}">{{ v.status }}</td>
<td class="number">{{ v.margin | num }}</td><td>{{ v.where }}</td></tr>
{% endfor %}
{% endfor %}
</table>
</body>
</html>
"""


# ---------------------------------------------------------------- command line


def add_sweep_parser(subparsers):
    """Add the ``sweep`` subcommand to the subparsers of the ``polyakcheck`` parser.

    Returns
    -------
    argparse.ArgumentParser
        The subcommand's parser, whose ``handler`` default is ``cmd_sweep``.
    """
    parser = subparsers.add_parser(
        "sweep",
        help="run a grid of problems, methods, batch sizes and steps from a TOML file",
        description="Run every (problem, method, batch size, steps, seed) of a TOML "
        "config that the results store lacks, check every statement per group, and "
        "write OUTPUT/index.html and OUTPUT/results.json.",
    )
    parser.add_argument("config", metavar="CONFIG.toml", help="sweep configuration")
    parser.add_argument(
        "--output", default="reports/sweep",
        help="output directory of the HTML pages and results.json "
        "(default reports/sweep)",
    )
    parser.add_argument(
        "--store", default=None,
        help="SQLite results store shared by sweeps (default OUTPUT/runs.sqlite)",
    )
    parser.add_argument(
        "--scheduler", default=None,
        help="address of a Dask scheduler, for example tcp://127.0.0.1:8786 "
        "(default: a local process pool)",
    )
    parser.add_argument(
        "--workers", type=int, default=None,
        help="processes of the local pool (default: all cores; 0 runs in this "
        "process)",
    )
    parser.add_argument("--quiet", action="store_true", help="hide the progress bar")
    parser.set_defaults(handler=cmd_sweep)
    return parser


def cmd_sweep(args):
    """Run the sweep of ``args.config`` and print where the reports are.

    Returns
    -------
    int
        0 when no verdict is violated, 1 when one is. An invalid config raises
        ``ValueError``, which ``polyakcheck.cli.main`` turns into exit status 2.
    """
    from polyakcheck.cli import EXIT_OK, EXIT_VIOLATED

    result = run_sweep(args.config, args.output, scheduler=args.scheduler,
                       workers=args.workers, progress=not args.quiet,
                       store_path=args.store)
    print(f"{_summary_text(result)}; {result.seconds:.1f} s ({result.backend})")
    print(f"report: {result.index_path}\ndata:   {result.results_path}")
    return EXIT_VIOLATED if result.violated else EXIT_OK
