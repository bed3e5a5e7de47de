"""Tests of the HTML/JSON report and the atomic writers on a hand-built Verification."""

import json
import os
import re

import numpy as np
import pytest

from polyakcheck.atomic import to_jsonable, write_json_atomic, write_text_atomic
from polyakcheck.checks.verdict import Verdict
from polyakcheck.report import (
    problem_figures,
    provenance_info,
    render_html,
    status_counts,
    write_report,
)
from polyakcheck.trace import Trace
from polyakcheck.verification import Verification

STEPS = 1000
SEEDS = (0, 1, 2)
NETWORK_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def _grid():
    return np.unique(np.round(np.geomspace(1, STEPS, 20)).astype(np.int64))


def fake_trace(label, seed, anchored):
    """Build a Trace with smooth decreasing gaps and distances, and a few NaNs."""
    rng = np.random.default_rng(seed)
    t = _grid()
    k = t.size
    noise = 1.0 + 0.1 * rng.random(k)

    dist = 2.0 / np.sqrt(1.0 + np.log(t)) * noise
    anchor = dist * 1.3 if anchored else dist.copy()
    gamma_mean = 0.5 / np.sqrt(t) * noise
    gamma = np.column_stack([np.zeros(k), gamma_mean, 2.0 * gamma_mean])
    gap_tol = np.full(k, 1e-15)
    gap_tol[-1] = np.nan
    gap_tol[-2] = np.inf

    return Trace(
        method={"label": label, "kind": "iam" if anchored else "sps_star"},
        claims=("I1", "I3") if anchored else ("S1", "S2", "S3"),
        seed=seed,
        steps=STEPS,
        batch_size=1,
        t=t,
        gap_last=1.0 / np.sqrt(t) * noise,
        gap_avg=0.8 / np.sqrt(t) * noise,
        gap_tol=gap_tol,
        dist=dist,
        anchor_dist=anchor,
        g2_sum=np.cumsum(noise),
        gamma=gamma,
        avg_err=np.full(k, 1e-16),
        avg_tol=np.full(k, 1e-14),
        monotone={"worst_ratio": np.float64(0.25), "worst_step": np.int64(17)},
        seconds=0.01,
    )


def fake_series(scale, bound_scale):
    t = _grid().astype(float)
    mean = scale / np.sqrt(t)
    lower = mean - 0.3 * scale / np.sqrt(t)
    lower[0] = -0.1
    return {
        "t": t.tolist(),
        "mean": mean.tolist(),
        "lower": lower.tolist(),
        "upper": (mean * 1.3).tolist(),
        "bound": (bound_scale / np.sqrt(t)).tolist(),
    }


def fake_verdicts():
    seeds = SEEDS
    common = {"seeds": seeds, "tolerance": 1e-12}
    return [
        Verdict("S1", "monotone distance", "SPS*", "holds", 0.75, "step 17", 1.0, 1.2,
                confidence=1.0, message="worst step 17", **common),
        Verdict("S2", "anytime bound A D^2/t + D sqrt(B/t)", "SPS*", "holds", 0.4,
                "t=1000", 0.02, 0.05, confidence=0.99, message="upper limit below",
                series=fake_series(0.8, 3.0), **common),
        Verdict("S3", "D G / sqrt(t)", "SPS*", "violated", -0.2, "t=1", 0.9, 0.5,
                confidence=0.99,
                message="lower limit above bound <b>replay</b>: polyakcheck verify",
                series=fake_series(0.8, 0.4), **common),
        Verdict("I3", "data-dependent last iterate", "IAM", "inconclusive",
                float("nan"), "t=10", 0.3, 0.3, confidence=0.99,
                message="interval contains bound",
                series=fake_series(1.0, 1.1), **common),
        Verdict("I2", "averaging identity", "IAM", "not applicable", float("nan"), "",
                float("nan"), float("inf"), confidence=1.0,
                message="constant lam: identity not claimed", **common),
    ]


def synthetic_verification(name="toy least squares"):
    """Build a Verification by hand, independent of the solver and the checkers."""
    traces = {
        "SPS*": [fake_trace("SPS*", seed, anchored=False) for seed in SEEDS],
        "IAM": [fake_trace("IAM", seed, anchored=True) for seed in SEEDS],
    }
    return Verification(
        problem={"name": name, "loss": "least_squares", "n": 50, "d": 5, "reg": 0.0,
                 "assumptions": ["convex", "smooth"]},
        solution={"f_star": 0.125, "x_star_norm": 1.5, "D": 2.2,
                  "certificate": {"grad_norm": 1e-15, "grad_norm_tol": 1e-14,
                                  "solver": "CLARABEL", "solver_status": "optimal",
                                  "polish_steps": 2, "solve_seconds": 0.03}},
        constants={"L_max": {"value": 3.5, "how": "max_i ||a_i||^2"},
                   "G": {"value": float("inf"), "how": "not bounded <unbounded>"}},
        traces=traces,
        verdicts=fake_verdicts(),
        settings={"steps": STEPS, "batch_size": 1, "seeds": list(SEEDS),
                  "confidence": 0.99, "sampling": "with replacement"},
        seconds=1.5,
        rates=fake_rates(),
    )


def fake_rates():
    """Build fitted tail slopes in the form of ``checks.rates.fit_rate``."""
    return [
        {"method": "SPS*", "quantity": "gap_avg", "exponent": -0.5, "points": 9,
         "level": 0.95, "slope": -0.52, "lower": -0.6, "upper": -0.45,
         "slower": False, "t_range": [50.0, 1000.0],
         "note": "consistent with the bound's rate"},
        {"method": "IAM", "quantity": "gap_last", "exponent": -0.5, "points": 2,
         "level": 0.95, "slope": float("nan"), "lower": float("nan"),
         "upper": float("nan"), "slower": False, "t_range": [],
         "note": "fewer than 3 tail checkpoints above the float64 floor"},
    ]


def fake_provenance():
    return provenance_info(argv=["polyakcheck", "verify", "toy"], seeds=SEEDS,
                           solver="CLARABEL")


@pytest.fixture(scope="module")
def verification():
    return synthetic_verification()


@pytest.fixture(scope="module")
def figures(verification):
    return problem_figures(verification, prefix="q")


@pytest.fixture(scope="module")
def written(tmp_path_factory, verification):
    directory = tmp_path_factory.mktemp("report")
    html_path, json_path = write_report(
        [verification], directory / "out" / "r.html", directory / "out" / "r.json",
        fake_provenance(),
    )
    return html_path, json_path


@pytest.fixture(scope="module")
def html_text(written):
    return written[0].read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def document(written):
    return json.loads(written[1].read_text(encoding="utf-8"))


def verdict_table(html):
    match = re.search(r'<table class="verdict-table" id="verdict-table">.*?</table>',
                      html, re.S)
    assert match is not None, "no table with id verdict-table in the HTML"
    return match.group(0)


# ------------------------------------------------------------------- files


def test_write_report_creates_both_files(written):
    html_path, json_path = written
    assert html_path.is_file()
    assert json_path.is_file()
    assert html_path.stat().st_size > 10_000
    assert sorted(p.name for p in html_path.parent.iterdir()) == ["r.html", "r.json"]


def test_write_report_accepts_single_verification(tmp_path, verification):
    html_path, json_path = write_report(verification, tmp_path / "a.html",
                                        tmp_path / "a.json", fake_provenance())
    assert json.loads(json_path.read_text())["summary"]["violated"] == 1
    assert "<svg" in html_path.read_text()


# -------------------------------------------------------------------- HTML


def test_html_contains_inline_svg(html_text, figures):
    assert html_text.count("<svg") == len(figures)
    assert "<?xml" not in html_text
    assert "<!DOCTYPE svg" not in html_text
    assert html_text.count("<figcaption>") == len(figures)


def test_html_verdict_table_lists_every_verdict(html_text, verification):
    table = verdict_table(html_text)
    rows = re.findall(r"<tr>\s*<td><b>([^<]+)</b></td>", table)
    assert rows == [v.statement for v in verification.verdicts]
    assert html_text.count('class="verdict-table"') == 1
    for status in ("holds", "violated", "inconclusive", "not applicable"):
        assert f">{status}</td>" in table


def test_html_status_cells_coloured(html_text):
    table = verdict_table(html_text)
    assert 'class="status status-violated"' in table
    assert 'class="status status-not-applicable"' in table
    assert ".status-violated {" in html_text


def test_html_summary_banner_counts(html_text):
    banner = re.search(r'<div class="banner[^"]*" id="summary">.*?</div>', html_text,
                       re.S).group(0)
    assert "overall-violated" in banner
    assert "5 verdicts" in banner
    for count, status in ((2, "holds"), (1, "violated"), (1, "inconclusive"),
                          (1, "not applicable")):
        assert f"{count} {status}</span>" in banner


def test_html_has_no_network_references(html_text):
    assert NETWORK_REFERENCE.search(html_text) is None
    assert "<script" not in html_text
    assert "<link" not in html_text
    assert "@import" not in html_text
    assert "url(http" not in html_text


def test_html_escapes_text(html_text):
    assert "&lt;b&gt;replay&lt;/b&gt;" in html_text
    assert "<b>replay</b>" not in html_text
    assert "not bounded &lt;unbounded&gt;" in html_text


def test_html_element_ids_unique(tmp_path):
    html = render_html([synthetic_verification("a"), synthetic_verification("b")],
                       fake_provenance())
    ids = re.findall(r'\bid="([^"]+)"', html)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert duplicates == []
    assert html.count('class="verdict-table"') == 2
    assert html.count('id="verdict-table"') == 1


def test_html_empty_report_neutral_banner():
    html = render_html([], {"command": "polyakcheck verify"})
    assert 'class="banner overall-empty"' in html
    assert "0 problems" in html
    assert "polyakcheck verify" in html


def test_html_constants_certificate_provenance(html_text):
    assert "max_i ||a_i||^2" in html_text
    assert "certificate.grad_norm" in html_text
    assert "CLARABEL" in html_text
    provenance = html_text[html_text.index('id="provenance"'):]
    for name in ("python", "numpy", "scipy", "numba", "cvxpy", "matplotlib", "jinja2",
                 "scikit-learn", "polyakcheck verify toy", "timestamp"):
        assert name in provenance


def test_html_rates_table(html_text):
    table = re.search(r'<table class="rates-table">.*?</table>', html_text, re.S)
    assert table is not None
    rows = re.findall(r"<tr>\s*<td>([^<]*)</td>", table.group(0))
    assert rows == ["SPS*", "IAM"]
    assert "[-0.6, -0.45]" in table.group(0)
    assert "50–1000" in table.group(0)
    assert "fewer than 3 tail checkpoints" in table.group(0)


def test_html_headings_name_problem(html_text):
    assert "<h2>toy least squares</h2>" in html_text
    assert "<b>loss</b> = least_squares" in html_text
    assert "<b>n</b> = 50" in html_text


# ------------------------------------------------------------------ figures


def test_figures_grouped_by_method_and_quantity(figures):
    keys = [figure.key for figure in figures]
    assert keys == ["q-bound-0", "q-bound-1", "q-distance", "q-step-size"]
    assert "S2" in figures[0].title
    assert "S3" in figures[0].title
    assert "I3" in figures[1].title


def test_figures_label_axes_and_bands(figures):
    for figure in figures:
        assert figure.svg.startswith("<svg")
        assert "t (steps)" in figure.svg
    bound = figures[0].svg
    checkpoints = _grid().size
    assert f"99% one-sided band, Bonferroni over {checkpoints} checkpoints" in bound
    assert "S3 bound (violated)" in bound
    assert "mean over 3 seeds" in bound
    assert "min–max over 3 seeds" in figures[2].svg
    assert "‖zₜ − x*‖" in figures[2].svg
    assert "min–max step in segment, 3 seeds" in figures[3].svg


def test_figures_panel_titles_name_methods(figures):
    for figure in figures[2:]:
        titles = re.findall(r'<g id="[^"]*text_\d+">\s*<text[^>]*>([^<]*)</text>',
                            figure.svg)
        assert "SPS*" in titles, figure.key
        assert "IAM" in titles, figure.key


def test_figures_caption_notes_floored_band(figures):
    assert "at or below zero" in figures[0].caption
    assert "at or below zero" in figures[3].caption
    assert "at or below zero" not in figures[2].caption


def test_figures_svg_ids_prefixed(figures):
    for figure in figures:
        ids = re.findall(r'\bid="([^"]+)"', figure.svg)
        assert ids
        assert all(i.startswith(figure.key + "-") for i in ids)
        for target in re.findall(r'(?:href="#|url\(#)([^")]+)', figure.svg):
            assert target in ids


def test_figures_without_limits_omit_band():
    series = fake_series(1.0, 2.0)
    series["lower"] = [float("nan")] * len(series["t"])
    verdict = Verdict("S2", "anytime bound", "SPS*", "inconclusive", float("nan"),
                      "t=1", 1.0, 2.0, 0.0, (0,), 0.99, "one seed", series=series)
    verification = synthetic_verification()
    single = Verification(**{**verification.__dict__, "traces": {},
                             "verdicts": [verdict]})
    (figure,) = problem_figures(single)
    assert "one-sided band" not in figure.svg
    assert "No confidence limits were recorded" in figure.caption
    assert "mean over 1 seed<" in figure.svg


def test_figures_nonpositive_data_use_linear_axis():
    zeros = {name: [0.0] * 5 for name in ("mean", "lower", "upper", "bound")}
    zeros["t"] = [1.0, 2.0, 4.0, 8.0, 16.0]
    verdict = Verdict("I4", "Lipschitz last iterate", "IAM", "holds", 0.0, "t=1",
                      0.0, 0.0, 0.0, SEEDS, 0.99, "all zero", series=zeros)
    verification = synthetic_verification()
    trace = fake_trace("IAM", 0, anchored=True)
    stalled = Trace(**{**trace.__dict__, "gamma": np.zeros_like(trace.gamma)})
    degenerate = Verification(**{**verification.__dict__, "verdicts": [verdict],
                                 "traces": {"IAM": [stalled]}})
    figures = problem_figures(degenerate)
    assert [f.key for f in figures] == ["p0-bound-0", "p0-distance", "p0-step-size"]
    assert "the y axis is linear" in figures[0].caption
    assert "no step is positive" in figures[2].caption


def test_figures_skip_missing_series():
    verification = synthetic_verification()
    stripped = Verification(**{**verification.__dict__, "traces": {},
                               "verdicts": verification.verdicts[:1]})
    assert problem_figures(stripped) == []


# --------------------------------------------------------------------- JSON


def test_json_round_trips_trace_arrays(document, verification):
    traces = document["problems"][0]["traces"]
    assert list(traces) == ["SPS*", "IAM"]
    for label, originals in verification.traces.items():
        assert [record["seed"] for record in traces[label]] == list(SEEDS)
        for record, trace in zip(traces[label], originals):
            for name in ("t", "gap_last", "gap_avg", "dist", "anchor_dist", "g2_sum",
                         "avg_err", "avg_tol"):
                np.testing.assert_array_equal(
                    np.array(record[name]), getattr(trace, name),
                    err_msg=f"{label} seed {trace.seed} {name}",
                )
            np.testing.assert_array_equal(np.array(record["gamma"]), trace.gamma)
            assert record["monotone"] == {"worst_ratio": 0.25, "worst_step": 17}
            assert record["seconds"] == trace.seconds


def test_json_has_problem_sections(document, verification):
    problem = document["problems"][0]
    assert document["format"] == "polyakcheck-report"
    assert problem["problem"]["name"] == "toy least squares"
    assert problem["solution"]["certificate"]["solver"] == "CLARABEL"
    assert problem["settings"]["seeds"] == list(SEEDS)
    assert problem["constants"]["L_max"] == {"value": 3.5, "how": "max_i ||a_i||^2"}
    statements = [v["statement"] for v in problem["verdicts"]]
    assert statements == ["S1", "S2", "S3", "I3", "I2"]
    assert problem["verdicts"][1]["series"]["bound"] == pytest.approx(
        verification.verdicts[1].series["bound"])
    assert problem["rates"][0]["slope"] == -0.52
    assert problem["rates"][1]["slope"] is None
    assert document["provenance"]["seeds"] == list(SEEDS)
    assert document["summary"] == status_counts([verification])


def test_json_nonfinite_values_become_null(document, written):
    text = written[1].read_text()
    assert "NaN" not in text
    assert "Infinity" not in text
    record = document["problems"][0]["traces"]["SPS*"][0]
    assert record["gap_tol"][-1] is None
    assert record["gap_tol"][-2] is None
    assert record["gap_tol"][0] == 1e-15
    assert document["problems"][0]["constants"]["G"]["value"] is None
    not_applicable = document["problems"][0]["verdicts"][4]
    assert not_applicable["margin"] is None
    assert not_applicable["bound"] is None


# ------------------------------------------------------------------- atomic


def test_to_jsonable_converts_numpy():
    value = {1: np.float32(0.5), "b": (np.int64(3), np.bool_(True)),
             "c": np.array([[1.0, np.nan]]), "d": -np.inf}
    assert to_jsonable(value) == {"1": 0.5, "b": [3, True], "c": [[1.0, None]],
                                  "d": None}


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "deep" / "dir" / "out.json"
    write_json_atomic(path, {"x": [1, 2]})
    write_text_atomic(tmp_path / "deep" / "dir" / "out.txt", "text")
    assert json.loads(path.read_text()) == {"x": [1, 2]}
    assert sorted(os.listdir(path.parent)) == ["out.json", "out.txt"]


def test_atomic_write_replaces_existing_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    path.chmod(0o640)
    write_text_atomic(path, "new")
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == 0o640


def test_failed_json_write_keeps_old_file(tmp_path):
    path = tmp_path / "out.json"
    path.write_text('{"old": true}')
    with pytest.raises(TypeError, match="cannot convert object to JSON"):
        write_json_atomic(path, {"x": object()})
    assert path.read_text() == '{"old": true}'
    assert os.listdir(tmp_path) == ["out.json"]


def test_failed_replace_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def failing_replace(source, target):
        raise OSError("simulated failure of os.replace")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        write_text_atomic(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_failed_report_keeps_both_files(tmp_path, verification):
    html_path, json_path = tmp_path / "r.html", tmp_path / "r.json"
    html_path.write_text("old html")
    json_path.write_text("old json")
    with pytest.raises(TypeError):
        write_report([verification], html_path, json_path, {"bad": object()})
    assert html_path.read_text() == "old html"
    assert json_path.read_text() == "old json"
    assert sorted(os.listdir(tmp_path)) == ["r.html", "r.json"]


def test_provenance_info_fields():
    info = provenance_info(argv=["prog", "a b"], seeds=[np.int64(4)], solver="SCS")
    assert info["command"] == "prog 'a b'"
    assert info["seeds"] == [4]
    assert info["solver"] == "SCS"
    assert set(info["versions"]) == {"python", "numpy", "scipy", "numba", "cvxpy",
                                     "matplotlib", "jinja2", "scikit-learn",
                                     "clarabel", "scs", "osqp"}
    # This test runs from a git checkout, so the commit is known.
    assert info["git_commit"] is not None
    assert len(info["git_commit"].split("+")[0]) == 40
    assert info["timestamp"].endswith("+00:00")
