"""Sweeps: config validation, the results store, resuming, and the Dask backend."""

import argparse
import dataclasses
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from polyakcheck import Trace, make_method, run
from polyakcheck.run import checkpoint_grid
from polyakcheck.store import (
    RunStore,
    code_version,
    deserialize_trace,
    run_key,
    serialize_trace,
)
from polyakcheck.sweep import add_sweep_parser, load_config, parse_config, run_sweep

REPO = Path(__file__).resolve().parent.parent

SMALL = {
    "problems": [
        {"name": "diabetes"},
        {"kind": "synthetic", "n": 200, "d": 5, "seed": 1, "noise": 0.1},
    ],
    "methods": ["sps_star", "iam"],
    "seeds": 3,
    "batch_sizes": [1],
    "steps": [300],
}
SMALL_RUNS = 12

SMALL_TOML = """\
seeds = 3
batch_sizes = [1]
steps = [300]

[[problems]]
name = "diabetes"

[[problems]]
kind = "synthetic"
n = 200
d = 5
seed = 1
noise = 0.1

[[methods]]
name = "sps_star"

[[methods]]
name = "iam"
"""


def count_rows(store_path):
    """Return (rows, distinct keys) of a store."""
    with sqlite3.connect(store_path) as conn:
        return conn.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM runs").fetchone()


def verdict_dicts(result):
    """Return every verdict of a sweep with its group, as comparable dicts."""
    return [
        (g["problem"], g["method"], g["batch_size"], g["steps"], v.to_dict())
        for g in result.groups for v in g["verdicts"]
    ]


def trace_fields_equal(left, right):
    """Return True when two traces agree in every field except the wall time."""
    for spec in dataclasses.fields(Trace):
        a, b = getattr(left, spec.name), getattr(right, spec.name)
        if spec.name == "seconds":
            continue
        if isinstance(a, np.ndarray):
            if not (a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)):
                return False
        elif json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            # JSON compares dicts that contain NaN, which == does not.
            return False
        elif type(a) is not type(b):
            return False
    return True


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The SMALL sweep on a local pool of 2 processes."""
    out = tmp_path_factory.mktemp("local")
    return run_sweep(SMALL, out, workers=2, progress=False)


# ------------------------------------------------------------------ local backend


def test_local_sweep_runs_every_unit(local_sweep):
    assert local_sweep.runs_total == SMALL_RUNS
    assert local_sweep.runs_computed == SMALL_RUNS
    assert local_sweep.runs_reused == 0
    assert count_rows(local_sweep.store_path) == (SMALL_RUNS, SMALL_RUNS)
    assert len(local_sweep.groups) == 4
    for group in local_sweep.groups:
        assert group["seeds"] == [0, 1, 2]
        claims = set(make_method(group["method"]).claims)
        assert {v.statement for v in group["verdicts"]} == claims


def test_local_sweep_writes_reports(local_sweep):
    index = local_sweep.index_path.read_text()
    document = json.loads(local_sweep.results_path.read_text())
    for page in ("problems/diabetes.html", "problems/synthetic-n200-d5-seed1.html"):
        assert f'href="{page}"' in index
        assert (local_sweep.out_dir / page).is_file()
        assert "http" not in (local_sweep.out_dir / page).read_text()
    assert "http" not in index
    assert document["format"] == "polyakcheck-sweep"
    assert document["runs"] == {"total": SMALL_RUNS, "computed": SMALL_RUNS,
                                "reused": 0}
    assert document["summary"] == local_sweep.summary
    written = [v for g in document["groups"] for v in g["verdicts"]]
    assert written == [d for *_, d in verdict_dicts(local_sweep)]


def test_rerun_computes_nothing(local_sweep):
    again = run_sweep(SMALL, local_sweep.out_dir, workers=2, progress=False)
    assert again.runs_computed == 0
    assert again.runs_reused == SMALL_RUNS
    assert count_rows(local_sweep.store_path) == (SMALL_RUNS, SMALL_RUNS)
    assert verdict_dicts(again) == verdict_dicts(local_sweep)


def test_shared_store_reuses_runs(local_sweep, tmp_path):
    wider = dict(SMALL, problems=SMALL["problems"][:1], seeds=4)
    result = run_sweep(wider, tmp_path, workers=0, progress=False,
                       store_path=local_sweep.store_path)
    assert result.runs_total == 8
    assert result.runs_reused == 6
    assert result.runs_computed == 2


def test_interrupted_sweep_resumes(local_sweep, tmp_path):
    def stop_after_five(count):
        if count == 5:
            raise RuntimeError("interrupted by the test")

    with pytest.raises(RuntimeError, match="interrupted by the test"):
        run_sweep(SMALL, tmp_path, workers=2, progress=False,
                  on_run_stored=stop_after_five)
    assert count_rows(tmp_path / "runs.sqlite") == (5, 5)
    assert not (tmp_path / "index.html").exists()

    resumed = run_sweep(SMALL, tmp_path, workers=2, progress=False)
    assert resumed.runs_computed == SMALL_RUNS - 5
    assert resumed.runs_reused == 5
    assert count_rows(tmp_path / "runs.sqlite") == (SMALL_RUNS, SMALL_RUNS)
    assert verdict_dicts(resumed) == verdict_dicts(local_sweep)


KILL_SCRIPT = """
import json, os, signal, sys
import psutil
from polyakcheck.sweep import run_sweep

def kill_after_four(count):
    if count == 4:
        children = [p.pid for p in psutil.Process().children(recursive=True)]
        with open(sys.argv[2], "w") as handle:
            json.dump(children, handle)
        os.kill(os.getpid(), signal.SIGKILL)

if __name__ == "__main__":
    run_sweep(json.loads(sys.argv[3]), sys.argv[1], workers=2, progress=False,
              on_run_stored=kill_after_four)
"""


def test_killed_sweep_resumes(local_sweep, tmp_path):
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "out"
    children_file = tmp_path / "children.json"
    script = tmp_path / "kill_sweep.py"
    script.write_text(textwrap.dedent(KILL_SCRIPT))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]))
    completed = subprocess.run(
        [sys.executable, str(script), str(out), str(children_file), json.dumps(SMALL)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == -signal.SIGKILL, completed.stderr
    assert count_rows(out / "runs.sqlite") == (4, 4)

    # The pool workers and the fork server exit once the sweep process is gone.
    deadline = time.monotonic() + 10.0
    alive = json.loads(children_file.read_text())
    assert alive
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _is_running(psutil, pid)]
        time.sleep(0.2)
    assert alive == []

    resumed = run_sweep(SMALL, out, workers=2, progress=False)
    assert resumed.runs_computed == SMALL_RUNS - 4
    assert count_rows(out / "runs.sqlite") == (SMALL_RUNS, SMALL_RUNS)
    assert verdict_dicts(resumed) == verdict_dicts(local_sweep)


def _is_running(psutil, pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# ------------------------------------------------------------------ Dask backend


def test_dask_matches_local(local_sweep, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        result = run_sweep(SMALL, tmp_path, scheduler=cluster.scheduler_address,
                           progress=False)
    assert result.runs_computed == SMALL_RUNS
    assert verdict_dicts(result) == verdict_dicts(local_sweep)

    keys = [key for group in local_sweep.groups for key in group["runs"]]
    assert keys == [key for group in result.groups for key in group["runs"]]
    with RunStore(local_sweep.store_path) as local, RunStore(result.store_path) as dask:
        local_traces = local.get_many(keys)
        dask_traces = dask.get_many(keys)
    assert len(dask_traces) == SMALL_RUNS
    for key in keys:
        assert trace_fields_equal(local_traces[key], dask_traces[key]), key


# ------------------------------------------------------------------ store


@pytest.fixture(scope="module")
def short_trace(diabetes):
    problem, solution = diabetes
    return run(problem, solution, "iam", steps=50, seed=3)


def test_trace_round_trip_exact(short_trace):
    meta, arrays = serialize_trace(short_trace)
    restored = deserialize_trace(meta, arrays)
    assert trace_fields_equal(short_trace, restored)
    assert restored.seconds == short_trace.seconds


def test_run_key_covers_inputs(diabetes):
    problem, solution = diabetes
    grid = checkpoint_grid(100)
    sps = make_method("sps_star")
    version = code_version()
    base = run_key(problem, solution, sps, 0, 1, 100, grid, version)
    assert base == run_key(problem, solution, sps, 0, 1, 100, grid, version)
    assert len(base) == 64
    changed = {
        "seed": run_key(problem, solution, sps, 1, 1, 100, grid, version),
        "batch": run_key(problem, solution, sps, 0, 2, 100, grid, version),
        "steps": run_key(problem, solution, sps, 0, 1, 101, checkpoint_grid(101),
                         version),
        "method": run_key(problem, solution, make_method("sps_star", max_step_size=1.0),
                          0, 1, 100, grid, version),
        "version": run_key(problem, solution, sps, 0, 1, 100, grid, version + "x"),
        "sampling": run_key(problem, solution, sps, 0, 1, 100, grid, version,
                            "cyclic"),
    }
    for name, key in changed.items():
        assert key != base, name


def test_run_key_covers_data(diabetes):
    from polyakcheck import Problem

    problem, solution = diabetes
    grid = checkpoint_grid(100)
    sps = make_method("sps_star")
    base = run_key(problem, solution, sps, 0, 1, 100, grid)
    b = problem.b.copy()
    b[7] = np.nextafter(b[7], np.inf)
    moved = Problem(problem.name, problem.loss, problem.A, b, reg=problem.reg)
    assert run_key(moved, solution, sps, 0, 1, 100, grid) != base
    ridge = Problem(problem.name, problem.loss, problem.A, problem.b, reg=1e-12)
    assert run_key(ridge, solution, sps, 0, 1, 100, grid) != base
    sparse = Problem(problem.name, problem.loss, scipy.sparse.csr_matrix(problem.A),
                     problem.b, reg=problem.reg)
    sparse_key = run_key(sparse, solution, sps, 0, 1, 100, grid)
    assert sparse_key != base
    assert run_key(sparse, solution, sps, 0, 1, 100, grid) == sparse_key


def test_store_put_is_idempotent(short_trace, tmp_path):
    with RunStore(tmp_path / "s.sqlite") as store:
        assert store.put("k1", "diabetes", short_trace, "v") is True
        assert store.put("k1", "diabetes", short_trace, "v") is False
        assert len(store) == 1
        assert store.stored_keys(["k1", "k2"]) == {"k1"}
        assert trace_fields_equal(store.get("k1"), short_trace)
        with pytest.raises(KeyError, match="k2"):
            store.get("k2")


# ------------------------------------------------------------------ config


def _with(**changes):
    config = json.loads(json.dumps(SMALL))
    for key, value in changes.items():
        if value is None:
            del config[key]
        else:
            config[key] = value
    return config


BAD_CONFIGS = [
    (_with(methods=["sps_star", "adam"]),
     r"methods\[1\]\.name: unknown method 'adam'; use one of sps_star"),
    (_with(steps=None), r"missing the key 'steps'; add it, for example steps = "),
    (_with(seed=3), r"unknown key 'seed' in sweep config; allowed keys are"),
    (_with(problems=[{"kind": "synthetic", "n": 10, "d": 2, "seed": 0}]),
     r"problems\[0\] is missing the key 'noise'"),
    (_with(problems=[{"name": "no_such_set"}]),
     r"problems\[0\]\.name 'no_such_set' is not a bundled data set; use one of"),
    (_with(problems=[{"name": "diabetes", "loss": "logistic"}]),
     r"problems\[0\]\.loss 'logistic' does not fit the data set 'diabetes'"),
    (_with(problems=[{"name": "diabetes", "label": "a b"}]),
     r"problems\[0\]\.label 'a b' is invalid"),
    (_with(problems=[{"kind": "table", "name": "x"}]),
     r"problems\[0\]\.kind 'table' is unknown"),
    (_with(problems=[{"name": "diabetes"}, {"name": "diabetes"}]),
     r"problems\[1\] has the label 'diabetes' of an earlier problem"),
    (_with(steps=[0]), r"'steps\[0\]' must be an integer >= 1, got 0"),
    (_with(seeds=[]), r"'seeds' must be a count or a non-empty list"),
    (_with(batch_sizes="4"), r"'batch_sizes' must be an integer or a non-empty list"),
    (_with(methods=["iam", {"name": "iam"}]), r"methods\[1\] has the label 'iam'"),
    (_with(methods=[{"name": "sgd", "step_size": -1.0}]),
     r"methods\[0\]: step_size must be finite and > 0"),
    (_with(methods=[{"name": "sgd", "lr": 0.1}]), r"unknown key 'lr' in methods\[0\]"),
    (_with(confidence=1.5), r"'confidence' must be a number in \(0.5, 1\)"),
    (_with(sampling="random"), r"'sampling' must be one of uniform, shuffle, cyclic"),
]


@pytest.mark.parametrize("config, message", BAD_CONFIGS)
def test_bad_config_names_key(config, message):
    with pytest.raises(ValueError, match=message):
        parse_config(config)


def test_bad_toml_raises_value_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("seeds = [1, 2\n")
    with pytest.raises(ValueError, match=r"invalid TOML in sweep config .*bad\.toml"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ValueError, match=r"cannot read sweep config .*pass the path"):
        load_config(tmp_path / "missing.toml")


def test_bad_config_fails_before_running(tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        run_sweep(_with(methods=["nope"]), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_toml_matches_dict(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL_TOML)
    assert load_config(path) == parse_config(SMALL)


def test_example_config_has_200_runs():
    config = load_config(REPO / "examples" / "sweep.toml")
    runs = (len(config.problems) * len(config.methods) * len(config.batch_sizes)
            * len(config.steps) * len(config.seeds))
    assert runs >= 200


def test_cli_reuses_store(local_sweep, tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL_TOML)
    parser = argparse.ArgumentParser(prog="polyakcheck")
    add_sweep_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args([
        "sweep", str(path), "--output", str(tmp_path / "out"), "--workers", "0",
        "--store", str(local_sweep.store_path), "--quiet",
    ])
    status = args.handler(args)
    assert status == (1 if local_sweep.violated else 0)
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert document["runs"]["computed"] == 0
    assert not math.isnan(document["seconds"])


def test_bundled_loss_gets_label():
    from polyakcheck.sweep import build_problem

    config = parse_config(_with(problems=[
        {"name": "diabetes"}, {"name": "diabetes", "loss": "huber", "loss_param": 0.5},
    ]))
    plain, huber = config.problems
    assert plain["name"] == "diabetes"
    assert huber["name"] == "diabetes-huber"
    problem = build_problem(huber)
    assert problem.name == "diabetes-huber"
    assert problem.loss == "huber"
    assert problem.loss_param == 0.5
