"""Claims, seed statistics, figures and report files shared by the experiments.

Every experiment writes two files with the same stem: ``NAME.json`` with every number
behind its figures and tables, and ``NAME.html``, a self-contained page (inline CSS,
inline SVG figures, no scripts, nothing fetched from the network). Wall times and
provenance go under the JSON keys listed in ``VOLATILE_KEYS``. Everything else is a
function of the experiment's arguments, so two runs with the same seed give the same
JSON once those keys and the tables marked volatile are removed (see
``deterministic_part``).
"""

import logging
import math
import numbers
import time
from pathlib import Path

import jinja2
import numpy as np

from polyakcheck.atomic import to_jsonable, write_json_atomic, write_text_atomic
from polyakcheck.report import provenance_info
from polyakcheck.report.figures import figure_to_svg
from polyakcheck.report.figures import panels as _report_panels

logger = logging.getLogger(__name__)

JSON_FORMAT = "polyakcheck-experiment"
JSON_FORMAT_VERSION = 1
TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "experiment.html"

# Top-level JSON keys whose values change from run to run with the same seed.
VOLATILE_KEYS = ("timing", "provenance")

BAND_ALPHA = 0.2
# Colors cycle in this order over the methods of a figure.
PALETTE = (
    "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
    "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan",
)


# ------------------------------------------------------------------------ claims


def make_claim(text, measured, rule, matched):
    """Return one row of a claims table as a JSON-ready dict.

    Parameters
    ----------
    text : str
        The statement being tested, in words.
    measured : dict
        Name -> number (or short string) of every measurement the decision uses.
    rule : str
        How ``matched`` is decided from ``measured``, stated before the run.
    matched : bool or None
        Whether the measurement satisfies the rule; None when the run did not have
        the settings the rule needs (for example a quick run without batch 64).
    """
    return {
        "claim": text,
        "measured": dict(measured),
        "rule": rule,
        "matched": None if matched is None else bool(matched),
    }


def ratio(numerator, denominator):
    """Return numerator / denominator, inf for x / 0 with x > 0 and nan for 0 / 0."""
    numerator = float(numerator)
    denominator = float(denominator)
    if denominator == 0.0:
        return math.nan if numerator == 0.0 else math.copysign(math.inf, numerator)
    return numerator / denominator


def finite_or_inf(value):
    """Return ``value`` as float, with nan and -inf mapped to +inf (for picking minima).

    A diverged run has a non-finite final loss, which must never win a grid search.
    """
    value = float(value)
    return value if math.isfinite(value) or value == math.inf else math.inf


def count_matched(claims):
    """Return (matched, not matched, not evaluated) counts of a claims table."""
    matched = sum(1 for c in claims if c["matched"] is True)
    failed = sum(1 for c in claims if c["matched"] is False)
    return matched, failed, len(claims) - matched - failed


def format_claims(claims):
    """Return the claims table as plain text for the terminal, one claim per block."""
    lines = []
    for index, claim in enumerate(claims, start=1):
        verdict = {True: "yes", False: "NO", None: "n/a"}[claim["matched"]]
        lines.append(f"{index:>2}. [{verdict}] {claim['claim']}")
        measured = ", ".join(
            f"{key} = {format_value(value)}" for key, value in claim["measured"].items()
        )
        lines.append(f"      measured: {measured}")
        lines.append(f"      rule: {claim['rule']}")
    return "\n".join(lines)


def format_value(value, digits=4):
    """Format a number with ``digits`` significant digits; other values with str()."""
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_, str)):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}g}"
    return str(value)


# ------------------------------------------------------------- seed statistics


def seed_summary(values):
    """Summarize runs over seeds: mean, min and max along axis 0.

    Parameters
    ----------
    values : array_like, shape (seeds, K)

    Returns
    -------
    dict
        ``mean``, ``min`` and ``max``, each of shape (K,). A non-finite value in any
        seed makes the mean non-finite, which the JSON writes as null.
    """
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        return {
            "mean": values.mean(axis=0),
            "min": values.min(axis=0),
            "max": values.max(axis=0),
        }


def run_seeds_for(seed, count):
    """Return the run seeds of an experiment: seed, seed + 1, ..., seed + count - 1."""
    return [int(seed) + k for k in range(count)]


class Stopwatch:
    """Wall-clock timer; ``seconds`` is the time since construction."""

    def __init__(self):
        self.started = time.perf_counter()

    @property
    def seconds(self):
        """Seconds since the stopwatch was created."""
        return time.perf_counter() - self.started


# ---------------------------------------------------------------------- figures


class Figure:
    """One rendered figure: an ``<svg>`` element with its key, title and caption."""

    def __init__(self, key, title, caption, svg):
        self.key = key
        self.title = title
        self.caption = caption
        self.svg = svg


def panels(count, columns=3, width=4.6, height=3.4):
    """Create a figure with ``count`` panels; the experiments' default panel size."""
    return _report_panels(count, columns=columns, width=width, height=height)


def render_figure(fig, key, title, caption):
    """Turn a matplotlib figure into a ``Figure`` with inline SVG."""
    return Figure(key, title, caption, figure_to_svg(fig, key))


def plot_band(ax, x, summary, label, color, linestyle="-", marker=None,
              low_key="min", high_key="max"):
    """Draw ``summary["mean"]`` as a line and a shaded band between two other keys.

    The band defaults to the min to max over seeds of ``seed_summary``. On a log
    y-axis, values at or below zero and non-finite values are left out, which leaves
    a gap in the line.
    """
    x = np.asarray(x, dtype=float)
    mean = np.asarray(summary["mean"], dtype=float)
    low = np.asarray(summary[low_key], dtype=float)
    high = np.asarray(summary[high_key], dtype=float)
    if ax.get_yscale() == "log":
        mean = positive_or_nan(mean)
        low = positive_or_nan(low)
        high = positive_or_nan(high)
    ax.fill_between(x, low, high, color=color, alpha=BAND_ALPHA, linewidth=0)
    ax.plot(x, mean, color=color, linestyle=linestyle, marker=marker, markersize=3,
            linewidth=1.4, label=label)


def positive_or_nan(values):
    """Replace values a log axis cannot show (<= 0, inf, nan) with nan."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def finish_axes(ax, title, xlabel, ylabel, legend=True):
    """Set the title, labels, grid and (optionally) legend of one panel."""
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="best")


# ---------------------------------------------------------------------- reports


def make_table(title, columns, rows, note="", volatile=False):
    """Return a table for the report: a title, column names, rows of values, a note.

    Mark a table ``volatile`` when it contains wall times, so that
    ``deterministic_part`` leaves it out.
    """
    return {"title": title, "columns": list(columns), "rows": [list(r) for r in rows],
            "note": note, "volatile": bool(volatile)}


def build_document(name, quick, seed, description, settings, claims, results,
                   tables, timing, provenance):
    """Assemble the JSON document of one experiment run.

    Returns
    -------
    dict
        ``format``, ``format_version``, ``experiment``, ``quick``, ``seed``,
        ``description`` (list of paragraphs), ``settings``, ``claims``, ``summary``
        (claim counts), ``results`` (every number behind the figures), ``tables``,
        ``timing`` (wall times in seconds) and ``provenance``.
    """
    matched, failed, skipped = count_matched(claims)
    return {
        "format": JSON_FORMAT,
        "format_version": JSON_FORMAT_VERSION,
        "experiment": name,
        "quick": bool(quick),
        "seed": int(seed),
        "description": list(description),
        "settings": settings,
        "claims": claims,
        "summary": {
            "matched": matched, "not_matched": failed, "not_evaluated": skipped,
        },
        "results": results,
        "tables": tables,
        "timing": timing,
        "provenance": provenance,
    }


def experiment_provenance(seeds, solver=None):
    """Return the provenance record of a run (versions, command line, seeds, time)."""
    return provenance_info(seeds=seeds, solver=solver)


def solution_certificate(solution):
    """Return the oracle's certificate without its wall time, which goes to timing."""
    certificate = solution.certificate()
    certificate.pop("solve_seconds", None)
    return certificate


def deterministic_part(document):
    """Return ``document`` without the keys in ``VOLATILE_KEYS`` and volatile tables."""
    part = {key: value for key, value in document.items() if key not in VOLATILE_KEYS}
    if "tables" in part:
        part["tables"] = [t for t in part["tables"] if not t.get("volatile")]
    return part


def write_experiment(document, figures, out_dir):
    """Write ``NAME.json`` and ``NAME.html`` into ``out_dir``, each atomically.

    Both documents are rendered before either file is written, so a rendering error
    leaves existing files unchanged.

    Returns
    -------
    tuple of pathlib.Path
        The HTML path and the JSON path.
    """
    out_dir = Path(out_dir)
    name = document["experiment"]
    html = render_html(document, figures)
    json_path = write_json_atomic(out_dir / f"{name}.json", document)
    html_path = write_text_atomic(out_dir / f"{name}.html", html)
    logger.info("wrote %s and %s", html_path, json_path)
    return html_path, json_path


def render_html(document, figures):
    """Render the self-contained HTML page of one experiment."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = format_value
    template = environment.get_template(TEMPLATE_NAME)
    return template.render(
        doc=to_jsonable(document),
        figures=figures,
        settings=_flatten(to_jsonable(document["settings"])),
        timing=_flatten(to_jsonable(document["timing"])),
        provenance=_flatten(to_jsonable(document["provenance"])),
    )


def _flatten(mapping, prefix=""):
    """Flatten nested dicts to (dotted key, value) rows for a two-column table."""
    rows = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(_flatten(value, prefix=f"{name}."))
        else:
            rows.append((name, value))
    return rows
