"""The ``polyakcheck verify`` command end to end on shrunken settings."""

import json
import subprocess
import sys

import numpy as np
import pytest

from polyakcheck import Method
from polyakcheck.cli import main

SMALL = ["--data", "diabetes", "--steps", "400", "--seeds", "8", "--quiet"]


def test_verify_writes_report_and_exits_zero(tmp_path, capsys):
    html = tmp_path / "out" / "v.html"
    status = main(["verify", *SMALL, "--output", str(html)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert html.exists()
    data = json.loads((tmp_path / "out" / "v.json").read_text())
    problems = data["problems"]
    assert [p["problem"]["name"] for p in problems] == ["diabetes"]
    verdicts = problems[0]["verdicts"]
    statements = {(v["method"], v["statement"]) for v in verdicts}
    assert ("sps_star", "S1") in statements
    assert ("iam", "I3") in statements
    assert all(v["status"] != "violated" for v in verdicts)
    assert "diabetes       sps_star     S1    holds" in out
    assert "<svg" in html.read_text()


def test_verify_exits_one_on_violation(tmp_path, monkeypatch, capsys):
    # polyakcheck.verify is also the name of the function the package exports.
    verify_module = sys.modules["polyakcheck.verify"]

    def mutant(name, **params):
        return Method("sps_star", label="sps_star", mutation={"step_scale": 2.0})

    monkeypatch.setattr(verify_module, "make_method", mutant)
    status = main(["verify", *SMALL, "--methods", "sps_star",
                   "--output", str(tmp_path / "v.html")])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "S1    violated" in out


@pytest.mark.parametrize("args,needle", [
    (["--data", "nope"], "unknown data set 'nope'"),
    (["--methods", "adam"], "unknown method 'adam'"),
    (["--steps", "-3"], "--steps -3 is invalid"),
    (["--batch-size", "0"], "--batch-size 0 is invalid"),
    (["--seeds", "0"], "--seeds 0 is invalid"),
    (["--seed-list", "1,1"], "--seed-list 1,1 is invalid"),
    (["--seeds", "a"], "argument --seeds: invalid int value: 'a'"),
    (["--confidence", "1.5"], "--confidence 1.5 is invalid"),
    (["--epochs", "inf"], "--epochs inf is invalid"),
    (["--epochs", "1e9"], "pass fewer --steps or --epochs"),
    (["--data", ""], "--data is empty"),
    (["--methods", ""], "--methods is empty"),
    (["--output", "x.pdf"], "ending in .html"),
    (["--output", "/proc/polyak/v.html"], "cannot write the report to '/proc/polyak/v.html'"),
])
def test_invalid_input_exits_two(tmp_path, capsys, args, needle):
    status = main(["verify", "--quiet", *args])
    err = capsys.readouterr().err
    assert status == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_output_suffix_is_case_insensitive(tmp_path):
    status = main(["verify", *SMALL, "--methods", "sps_star",
                   "--output", str(tmp_path / "v.HTML")])
    assert status == 0
    assert (tmp_path / "v.json").exists()


def test_replay_command_reproduces_violation(tmp_path, monkeypatch, capsys):
    # The replay printed for a monotone violation names one seed; rerunning it with
    # the same mutant reports the same worst step.
    verify_module = sys.modules["polyakcheck.verify"]

    def mutant(name, **params):
        return Method("sps_star", label="sps_star", mutation={"step_scale": 2.0})

    monkeypatch.setattr(verify_module, "make_method", mutant)
    main(["verify", *SMALL, "--methods", "sps_star", "--output", str(tmp_path / "a.html")])
    first = json.loads((tmp_path / "a.json").read_text())["problems"][0]["verdicts"][0]
    replay = first["message"].split("replay: ")[1]
    assert "--seed-list" in replay
    args = replay.split()[2:] + ["--quiet", "--output", str(tmp_path / "b.html")]
    assert main(["verify", *args]) == 1
    again = json.loads((tmp_path / "b.json").read_text())["problems"][0]["verdicts"][0]
    assert again["where"] == first["where"]
    assert again["measured"] == first["measured"]


def test_console_entry_point_reports_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "polyakcheck", "verify", "--steps", "-1"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "polyakcheck: error: --steps -1 is invalid; pass a step count >= 1"
    )


@pytest.mark.parametrize("data,loss", [("diabetes", "absolute"), ("breast_cancer", "hinge"),
                                       ("diabetes", "poisson")])
def test_verify_other_families(tmp_path, capsys, data, loss):
    html = tmp_path / "v.html"
    status = main(["verify", "--data", data, "--loss", loss, "--steps", "600",
                   "--seeds", "8", "--quiet", "--output", str(html)])
    out = capsys.readouterr().out
    assert status == 0, out
    verdicts = json.loads((tmp_path / "v.json").read_text())["problems"][0]["verdicts"]
    status_of = {(v["method"], v["statement"]): v["status"] for v in verdicts}
    assert status_of[("sps_star", "S1")] == "holds"
    # Neither loss is smooth on all of R^d, so the S4 corollaries do not apply.
    assert status_of[("sps_star", "S4a")] == "not applicable"
    assert status_of[("sps_star", "S3")] != "violated"


def test_verify_reads_svmlight_file(tmp_path, capsys):
    from sklearn.datasets import dump_svmlight_file

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    y = (X[:, 0] + 0.5 * rng.standard_normal(60) > 0).astype(int)
    path = tmp_path / "small.svm"
    dump_svmlight_file(X, y, str(path))
    status = main(["verify", "--data", str(path), "--loss", "logistic", "--reg", "0.1",
                   "--steps", "300", "--seeds", "5", "--quiet",
                   "--output", str(tmp_path / "v.html")])
    assert status == 0, capsys.readouterr().out


def test_incompatible_loss_is_invalid(capsys):
    assert main(["verify", "--data", "diabetes", "--loss", "hinge", "--quiet"]) == 2
    assert "compatible losses: least_squares" in capsys.readouterr().err


def test_sweep_command_runs_config(tmp_path, capsys):
    config = tmp_path / "small.toml"
    config.write_text(
        'seeds = 3\nbatch_sizes = [1]\nsteps = [200]\n'
        '[[problems]]\nname = "diabetes"\n'
        '[[methods]]\nname = "sps_star"\n'
    )
    status = main(["sweep", str(config), "--output", str(tmp_path / "out"), "--quiet"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert (tmp_path / "out" / "index.html").exists()
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["runs"]["total"] == 3
    assert results["summary"]["violated"] == 0
    assert results["summary"]["holds"] > 0
