"""HTML and JSON reports of ``Verification`` results.

The HTML report is one self-contained file: CSS inline, figures as inline SVG,
no scripts, fonts or other resources fetched from the network. The JSON report
stores every number behind it, with NaN and infinities written as null.
"""

import datetime
import importlib.metadata
import logging
import math
import numbers
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jinja2
import numpy as np

import polyakcheck
from polyakcheck.atomic import json_text, write_texts_atomic
from polyakcheck.checks.verdict import STATUSES
from polyakcheck.report.figures import problem_figures
from polyakcheck.verification import Verification

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "report.html"
JSON_FORMAT = "polyakcheck-report"
JSON_FORMAT_VERSION = 1

PROVENANCE_PACKAGES = (
    "numpy",
    "scipy",
    "numba",
    "cvxpy",
    "matplotlib",
    "jinja2",
    "scikit-learn",
    "clarabel",
    "scs",
    "osqp",
)
TRACE_FIELDS = (
    "t",
    "gap_last",
    "gap_avg",
    "gap_tol",
    "dist",
    "anchor_dist",
    "g2_sum",
    "gamma",
    "avg_err",
    "avg_tol",
    "monotone",
    "seconds",
)


def provenance_info(argv=None, seeds=None, solver=None):
    """Collect the provenance of a report: versions, command line, seeds, time.

    Parameters
    ----------
    argv : list of str, optional
        Command line of the run; defaults to ``sys.argv``.
    seeds : sequence of int, optional
    solver : str, optional
        cvxpy solver used by the oracle.

    Returns
    -------
    dict
        ``versions`` (Python and each package of ``PROVENANCE_PACKAGES``, with
        "not installed" for a missing one), ``polyakcheck``, ``platform``,
        ``seeds``, ``solver``, ``command`` and ``timestamp`` (UTC, ISO 8601).
    """
    argv = list(sys.argv if argv is None else argv)
    versions = {"python": platform.python_version()}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "versions": versions,
        "polyakcheck": polyakcheck.__version__,
        "git_commit": _git_commit(),
        "platform": platform.platform(),
        "seeds": None if seeds is None else [int(seed) for seed in seeds],
        "solver": solver,
        "command": shlex.join(argv),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }


def _git_commit():
    """Return the commit of the polyakcheck checkout, with "+dirty" for local changes.

    None when the package is not inside a git checkout or git is not installed.
    """
    root = Path(polyakcheck.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
            text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def write_report(verifications, html_path, json_path, provenance=None):
    """Write the HTML and the JSON report atomically, as a pair.

    Both documents are rendered and staged in temporary files before either target
    is replaced, so a rendering or disk error leaves both existing files unchanged.

    Parameters
    ----------
    verifications : Verification or list of Verification
    html_path, json_path : str or os.PathLike
        Missing parent directories are created.
    provenance : dict, optional
        Defaults to ``provenance_info()``.

    Returns
    -------
    tuple of pathlib.Path
        The HTML path and the JSON path.
    """
    verifications = _as_list(verifications)
    if provenance is None:
        provenance = provenance_info()
    document = report_data(verifications, provenance)
    html = render_html(verifications, provenance)
    json_path, html_path = write_texts_atomic(
        {json_path: json_text(document), html_path: html}
    )
    logger.info("wrote report %s and data %s", html_path, json_path)
    return html_path, json_path


def report_data(verifications, provenance):
    """Build the JSON document: every number of every problem, and the provenance.

    Returns
    -------
    dict
        ``format``, ``format_version``, ``summary`` (verdict count per status),
        ``provenance`` and ``problems``. Each problem has ``problem``,
        ``solution``, ``constants``, ``settings``, ``seconds``, ``summary``,
        ``verdicts`` (``Verdict.to_dict()``), ``rates`` (fitted tail slopes) and
        ``traces``: method label -> one record per seed with the arrays of
        ``TRACE_FIELDS``. Values are not yet
        converted to JSON types; ``write_json_atomic`` does that.
    """
    verifications = _as_list(verifications)
    return {
        "format": JSON_FORMAT,
        "format_version": JSON_FORMAT_VERSION,
        "summary": status_counts(verifications),
        "provenance": provenance,
        "problems": [_problem_record(v) for v in verifications],
    }


def _problem_record(verification):
    return {
        "problem": verification.problem,
        "solution": verification.solution,
        "constants": verification.constants,
        "settings": verification.settings,
        "seconds": verification.seconds,
        "summary": status_counts([verification]),
        "verdicts": [verdict.to_dict() for verdict in verification.verdicts],
        "rates": list(getattr(verification, "rates", [])),
        "traces": {
            label: [_trace_record(trace) for trace in traces]
            for label, traces in verification.traces.items()
        },
    }


def _trace_record(trace):
    record = {
        "method": trace.method,
        "claims": list(trace.claims),
        "seed": trace.seed,
        "steps": trace.steps,
        "batch_size": trace.batch_size,
    }
    for name in TRACE_FIELDS:
        record[name] = getattr(trace, name)
    return record


def status_counts(verifications):
    """Count the verdicts of each status over all ``verifications``."""
    counts = dict.fromkeys(STATUSES, 0)
    for verification in verifications:
        for verdict in verification.verdicts:
            counts[verdict.status] += 1
    return counts


# ------------------------------------------------------------------------ HTML


def render_html(verifications, provenance):
    """Render the self-contained HTML report.

    Parameters
    ----------
    verifications : Verification or list of Verification
    provenance : dict
        Rendered key by key, whatever keys it has (see ``provenance_info``).

    Returns
    -------
    str
    """
    verifications = _as_list(verifications)
    environment = _environment()
    template = environment.get_template(TEMPLATE_NAME)
    return template.render(
        title=_report_title(verifications),
        summary=status_counts(verifications),
        problems=[_problem_view(v, index) for index, v in enumerate(verifications)],
        provenance=provenance,
    )


def _environment():
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = format_number
    environment.filters["status_class"] = status_class
    environment.filters["percent"] = format_confidence
    return environment


def _report_title(verifications):
    names = [str(v.problem.get("name", "problem")) for v in verifications]
    if not names:
        return "polyakcheck report"
    listed = ", ".join(names[:3])
    if len(names) > 3:
        listed += ", …"
    return f"polyakcheck report: {listed}"


def _problem_view(verification, index):
    problem = verification.problem
    return {
        "anchor": f"problem-{index}",
        "name": problem.get("name", f"problem {index + 1}"),
        "problem": problem,
        "summary": status_counts([verification]),
        "verdicts": verification.verdicts,
        "rates": list(getattr(verification, "rates", [])),
        "constants": verification.constants,
        "solution": _flatten(verification.solution),
        "settings": _flatten(verification.settings),
        "seconds": verification.seconds,
        "figures": problem_figures(verification, prefix=f"p{index}"),
    }


def _flatten(mapping, prefix=""):
    """Flatten nested dicts to (dotted key, value) rows for a two-column table.

    A list of method descriptions becomes one row per method with its non-default
    parameters, so the table shows what each method ran with.
    """
    rows = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if key == "methods" and isinstance(value, list):
            rows.extend((f"method {m.get('label', '?')}", _describe_method(m))
                        for m in value)
        elif isinstance(value, dict):
            rows.extend(_flatten(value, prefix=f"{name}."))
        else:
            rows.append((name, value))
    return rows


def _describe_method(method):
    """Return 'kind, param=value, ...' with only the parameters that were set."""
    parts = [str(method.get("kind", ""))]
    for name in ("lam", "step_size", "momentum", "max_step_size", "lower_bound",
                 "weight_decay"):
        value = method.get(name)
        if value in (None, 0, 0.0):
            continue
        parts.append(f"{name}={format_number(value) if not isinstance(value, str) else value}")
    mutation = method.get("mutation") or {}
    if mutation:
        parts.append("mutation " + ", ".join(f"{k}={v}" for k, v in mutation.items()))
    return ", ".join(parts)


def format_number(value, digits=4):
    """Format a number with ``digits`` significant digits, and None or NaN as "—"."""
    if value is None:
        return "—"
    if isinstance(value, (bool, str, np.bool_)):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(value):
        return "—"
    return f"{value:.{digits}g}"


def format_confidence(value):
    """Format a confidence level such as 0.99 as "99%".

    Verdicts of the almost-sure checks carry 1.0, shown as "100% (almost sure)".
    """
    if value is None:
        return "—"
    value = float(value)
    if value == 1.0:
        return "100% (almost sure)"
    return f"{100 * value:.4g}%"


def status_class(status):
    """Return the CSS class of a verdict status, such as ``status-not-applicable``."""
    return "status-" + re.sub(r"[^a-z0-9]+", "-", str(status).lower()).strip("-")


def _as_list(verifications):
    if isinstance(verifications, Verification):
        return [verifications]
    return list(verifications)
