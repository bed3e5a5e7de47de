"""Figures of one ``Verification`` as SVG text that can be inlined in HTML.

Figures are built on ``matplotlib.figure.Figure`` directly, not through pyplot, so
no GUI backend is selected and no figure stays registered after it is saved.
Text is kept as SVG ``<text>`` (``svg.fonttype='none'``), so the browser renders
it with a local font and no glyph outlines are embedded.
"""

import io
import logging
import math
import re
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.figure import Figure as MplFigure

logger = logging.getLogger(__name__)

AVERAGE_GAP = "E[f(x̄ₜ)] − f*"
LAST_GAP = "E[f(xₜ)] − f*"

# Quantity that each statement bounds: S2-S4 bound the gap of the running average
# xbar_t of SPS*, I3-I5 the gap of the last IAM iterate x_t.
STATEMENT_QUANTITIES = {
    "S2": AVERAGE_GAP,
    "S3": AVERAGE_GAP,
    "S4a": AVERAGE_GAP,
    "S4b": AVERAGE_GAP,
    "I3": LAST_GAP,
    "I4": LAST_GAP,
    "I5": LAST_GAP,
}

BAND_ALPHA = 0.25
PANEL_WIDTH = 4.6
PANEL_HEIGHT = 3.4
MAX_COLUMNS = 3
FLOOR_NOTE = "Values at or below zero are drawn at the bottom of the log axis."
LINEAR_NOTE = "No value is positive, so the y axis is linear."
RADIUS_LABEL = "D = ‖x₀ − x*‖"


@dataclass(frozen=True)
class Figure:
    """One rendered figure of the report.

    Attributes
    ----------
    key : str
        Identifier, unique within one report, used as the HTML ``id``.
    title : str
    caption : str
        Plain-sentence description for the ``<figcaption>``.
    svg : str
        ``<svg>`` element without XML declaration or DOCTYPE.
    """

    key: str
    title: str
    caption: str
    svg: str


def problem_figures(verification, prefix="p0"):
    """Render every figure of one ``Verification``.

    Parameters
    ----------
    verification : Verification
    prefix : str
        Start of every figure key and SVG element id, unique per problem in a report.

    Returns
    -------
    list of Figure
        The bound figures, then distances, then step sizes.
    """
    figures = verdict_figures(verification, prefix)
    for build in (distance_figure, step_size_figure):
        figure = build(verification, prefix)
        if figure is not None:
            figures.append(figure)
    logger.debug("rendered %d figures for %s", len(figures), prefix)
    return figures


def figure_to_svg(fig, id_prefix):
    """Save a matplotlib figure as inline SVG text.

    The XML declaration, DOCTYPE and metadata block are removed, and every element
    id (with the references to it) gets ``id_prefix`` so several figures can share
    one HTML page without duplicate ids.
    """
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    return _prefix_ids(svg, id_prefix)


def _prefix_ids(svg, prefix):
    ids = set(re.findall(r'\bid="([^"]+)"', svg))

    def rename(match):
        name = match.group(2)
        if name not in ids:
            return match.group(0)
        return f"{match.group(1)}{prefix}-{name}{match.group(3)}"

    svg = re.sub(r'(\bid=")([^"]+)(")', rename, svg)
    svg = re.sub(r'(href="#)([^"]+)(")', rename, svg)
    return re.sub(r"(url\(#)([^)]+)(\))", rename, svg)


# ---------------------------------------------------------------- bound figures


def verdict_figures(verification, prefix="p0"):
    """Plot each measured seed mean with its confidence band and its bounds.

    Verdicts with a non-empty ``series`` are grouped by method and by the quantity
    that their statement bounds, giving one log-log figure per group.
    """
    groups = {}
    for verdict in verification.verdicts:
        if len(verdict.series.get("t", ())) == 0:
            continue
        quantity = STATEMENT_QUANTITIES.get(
            verdict.statement, f"measured value ({verdict.statement})"
        )
        groups.setdefault((verdict.method, quantity), []).append(verdict)
    figures = []
    for index, ((method, quantity), verdicts) in enumerate(groups.items()):
        key = f"{prefix}-bound-{index}"
        figures.append(_bound_figure(verification, method, quantity, verdicts, key))
    return figures


def _bound_figure(verification, method, quantity, verdicts, key):
    fig = MplFigure(figsize=(7.0, 4.6))
    ax = fig.add_subplot()
    ax.set_xscale("log")
    names = ("mean", "lower", "upper", "bound")
    floor = _log_floor([_series_array(v, name) for v in verdicts for name in names])
    floored, banded = _draw_bands(ax, verdicts, floor)
    _draw_means(ax, verdicts, floor)
    _draw_bounds(ax, verdicts, floor)
    _set_y_scale(ax, floor)
    statements = ", ".join(v.statement for v in verdicts)
    title = f"{method}: {quantity} against {statements}"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("t (steps)")
    ax.set_ylabel(quantity)
    ax.grid(True, which="major", alpha=0.3)
    # Below the axes, so the legend never hides a bound curve.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    problem_name = verification.problem.get("name", "the problem")
    caption = (
        f"{quantity} for {method} on {problem_name}: "
        f"the mean over seeds with its confidence band, and the bound of each of "
        f"{statements} with the verdict in brackets."
    )
    if not banded:
        caption += " No confidence limits were recorded, so no band is drawn."
    caption += _scale_note(floor, floored)
    return Figure(key, title, caption, figure_to_svg(fig, key))


def _draw_bands(ax, verdicts, floor):
    """Draw one band per distinct pair of limit series.

    Returns whether a lower limit was raised to ``floor`` and whether any band was
    drawn.
    """
    colors = ["tab:blue", "tab:cyan", "tab:olive", "tab:gray"]
    floored = False
    banded = False
    band_groups = _distinct(verdicts, ("t", "lower", "upper"))
    for index, band_verdicts in enumerate(band_groups):
        verdict = band_verdicts[0]
        t = _series_array(verdict, "t")
        lower = _series_array(verdict, "lower")
        upper = _series_array(verdict, "upper")
        if not np.any(np.isfinite(lower) & np.isfinite(upper)):
            logger.debug("%s has no confidence limits to draw", verdict.statement)
            continue
        floored |= floor is not None and bool(np.any(lower <= 0))
        banded = True
        label = _band_label(verdict, t.size)
        if len(band_groups) > 1:
            label += f" ({', '.join(v.statement for v in band_verdicts)})"
        ax.fill_between(
            t,
            _floor_nonpositive(lower, floor),
            _mask_nonpositive(upper, floor),
            alpha=BAND_ALPHA,
            color=colors[index % len(colors)],
            linewidth=0,
            label=label,
        )
    return floored, banded


def _band_label(verdict, checkpoints):
    percent = f"{100 * verdict.confidence:.4g}%"
    return f"{percent} one-sided band, Bonferroni over {checkpoints} checkpoints"


def _draw_means(ax, verdicts, floor):
    mean_groups = _distinct(verdicts, ("t", "mean"))
    for mean_verdicts in mean_groups:
        verdict = mean_verdicts[0]
        mean = _series_array(verdict, "mean")
        label = f"mean over {_seeds(len(verdict.seeds))}"
        if len(mean_groups) > 1:
            label += f" ({', '.join(v.statement for v in mean_verdicts)})"
        ax.plot(
            _series_array(verdict, "t"),
            _mask_nonpositive(mean, floor),
            color="black",
            marker=".",
            linewidth=1.2,
            label=label,
        )


def _draw_bounds(ax, verdicts, floor):
    colors = ["tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown"]
    for index, verdict in enumerate(verdicts):
        bound = _series_array(verdict, "bound")
        # The first bound of a group (S2, the minimum of the other S2-S4 bounds)
        # coincides with one of them on every stretch of t. It is drawn as a wide
        # pale band beneath the dashed lines, so it is not hidden under them.
        wide = index == 0 and len(verdicts) > 1
        ax.plot(
            _series_array(verdict, "t"),
            _mask_nonpositive(bound, floor),
            linestyle="-" if wide else "--",
            linewidth=6.0 if wide else 1.4,
            alpha=0.3 if wide else 1.0,
            zorder=1 if wide else 2,
            color=colors[index % len(colors)],
            label=f"{verdict.statement} bound ({verdict.status})",
        )


def _distinct(verdicts, names):
    """Group verdicts whose series agree on ``names``, keeping first-seen order."""
    groups = {}
    for verdict in verdicts:
        # NaN never equals itself, so it is replaced by None to compare series.
        key = tuple(
            tuple(None if math.isnan(x) else x for x in _series_array(verdict, name))
            for name in names
        )
        groups.setdefault(key, []).append(verdict)
    return list(groups.values())


def _series_array(verdict, name):
    values = verdict.series.get(name) or []
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _mask_nonpositive(values, floor):
    """Replace values that a log axis cannot show by NaN, which leaves a gap.

    ``floor`` None stands for a linear axis, where every value is kept.
    """
    if floor is None:
        return values
    return np.where(values > 0, values, np.nan)


def _floor_nonpositive(values, floor):
    """Raise values <= 0 to ``floor`` and keep NaN, for the lower edge of a band.

    ``floor`` None stands for a linear axis, where every value is kept.
    """
    if floor is None:
        return values
    return np.where(values > 0, values, np.where(np.isnan(values), np.nan, floor))


def _log_floor(arrays):
    """Return a positive value below every positive entry, or None if there is none.

    None means that a log y axis would be empty, so the caller draws a linear one.
    """
    positive = [a[np.isfinite(a) & (a > 0)] for a in arrays]
    positive = np.concatenate(positive) if positive else np.array([])
    if positive.size == 0:
        return None
    return float(positive.min()) / 2


def _set_y_scale(ax, floor):
    ax.set_yscale("linear" if floor is None else "log")


def _scale_note(floor, floored):
    if floor is None:
        return " " + LINEAR_NOTE
    if floored:
        return " " + FLOOR_NOTE
    return ""


# ------------------------------------------------------ distance and step figures


def distance_figure(verification, prefix="p0"):
    """Plot the distances to x_star per method: mean over seeds and min-max band.

    ``anchor_dist`` is drawn only for methods where it differs from ``dist``. The
    dotted line is D = ||x_0 - x_star||: by S1 and I1, SPS* and IAM iterates (and
    the IAM anchor) never move farther than D from x_star.
    Returns None when there are no traces.
    """
    methods = _method_traces(verification)
    if not methods:
        return None
    key = f"{prefix}-distance"
    fig, axes = panels(len(methods))
    radius = _finite_or_none(verification.solution.get("D"))
    for ax, (label, traces) in zip(axes, methods.items()):
        t = np.asarray(traces[0].t, dtype=float)
        _mean_and_band(ax, t, _stack(traces, "dist"), "‖xₜ − x*‖", "tab:blue")
        anchor = _stack(traces, "anchor_dist")
        if not np.array_equal(anchor, _stack(traces, "dist"), equal_nan=True):
            _mean_and_band(ax, t, anchor, "‖zₜ − x*‖", "tab:orange")
        if radius is not None:
            ax.axhline(radius, color="gray", linestyle=":", label=RADIUS_LABEL)
        ax.set_xscale("log")
        _finish_panel(ax, label, "distance to x*")
    title = "Distance to x* over t"
    caption = (
        "Distance of the iterate x_t (and of the anchor z_t where a method has one) "
        "to x*: the mean over seeds as a line and the min–max over seeds as a band."
    )
    return Figure(key, title, caption, figure_to_svg(fig, key))


def step_size_figure(verification, prefix="p0"):
    """Plot the step sizes gamma_t per method on log-log axes.

    The line is the mean over seeds of the mean step of each checkpoint segment
    (``gamma[:, 1]``), and the band runs from the smallest to the largest step
    taken in the segment by any seed (``gamma[:, 0]`` and ``gamma[:, 2]``). A
    panel where no step is positive gets a linear y axis. Returns None when there
    are no traces.
    """
    methods = _method_traces(verification)
    if not methods:
        return None
    key = f"{prefix}-step-size"
    fig, axes = panels(len(methods))
    notes = set()
    for ax, (label, traces) in zip(axes, methods.items()):
        notes.add(_step_panel(ax, label, traces))
    title = "Step size γₜ over t"
    caption = (
        "Step size γ_t of each method: the mean over seeds of the mean step per "
        "checkpoint segment as a line, and the smallest to largest step in the "
        "segment over all seeds as a band."
    )
    caption += "".join(sorted(notes))
    return Figure(key, title, caption, figure_to_svg(fig, key))


def _step_panel(ax, label, traces):
    """Draw one method's step sizes and return the note for the caption, or ""."""
    t = np.asarray(traces[0].t, dtype=float)
    gamma = np.stack([np.asarray(trace.gamma, dtype=float) for trace in traces])
    mean = gamma[:, :, 1].mean(axis=0)
    low = gamma[:, :, 0].min(axis=0)
    high = gamma[:, :, 2].max(axis=0)
    floor = _log_floor([mean, low, high])
    ax.fill_between(
        t,
        _floor_nonpositive(low, floor),
        _mask_nonpositive(high, floor),
        alpha=BAND_ALPHA,
        color="tab:green",
        linewidth=0,
        label=f"min–max step in segment, {_seeds(len(traces))}",
    )
    ax.plot(
        t,
        _mask_nonpositive(mean, floor),
        color="tab:green",
        label=f"mean step in segment, mean of {_seeds(len(traces))}",
    )
    ax.set_xscale("log")
    _set_y_scale(ax, floor)
    finite = np.concatenate([low[np.isfinite(low)], high[np.isfinite(high)]])
    if finite.size and floor is not None and finite.max() <= finite.min() * (1 + 1e-9):
        # A constant step (the SGD baselines) differs across segments only by
        # rounding; a fixed decade around it keeps that noise off the plot.
        value = float(finite.max())
        ax.set_ylim(value / 10.0, value * 10.0)
    _finish_panel(ax, label, "step size γₜ")
    if floor is None:
        return " Panels where no step is positive have a linear y axis."
    return _scale_note(floor, bool(np.any(low <= 0)))


def _mean_and_band(ax, t, values, name, color):
    ax.fill_between(
        t,
        values.min(axis=0),
        values.max(axis=0),
        alpha=BAND_ALPHA,
        color=color,
        linewidth=0,
        label=f"{name}, min–max over {_seeds(values.shape[0])}",
    )
    ax.plot(
        t,
        values.mean(axis=0),
        color=color,
        label=f"{name}, mean of {_seeds(values.shape[0])}",
    )


def _method_traces(verification):
    """Return method label -> traces, without methods whose grids differ by seed."""
    methods = {}
    for label, traces in verification.traces.items():
        traces = list(traces)
        if not traces:
            continue
        grid = np.asarray(traces[0].t)
        if any(not np.array_equal(np.asarray(tr.t), grid) for tr in traces[1:]):
            logger.warning(
                "traces of %s have different checkpoint grids; not plotted", label
            )
            continue
        methods[label] = traces
    return methods


def _stack(traces, name):
    return np.stack([np.asarray(getattr(trace, name), dtype=float) for trace in traces])


def panels(count, columns=MAX_COLUMNS, width=PANEL_WIDTH, height=PANEL_HEIGHT):
    """Create a figure with ``count`` panels of width x height inches; return (fig, axes).

    At most ``columns`` panels per row; unused grid cells are hidden.
    """
    columns = max(1, min(count, columns))
    rows = math.ceil(count / columns)
    fig = MplFigure(figsize=(width * columns, height * rows))
    grid = fig.subplots(rows, columns, squeeze=False)
    axes = list(grid.flat)
    for ax in axes[count:]:
        ax.set_visible(False)
    fig.set_layout_engine("constrained")
    return fig, axes[:count]


def _finish_panel(ax, label, ylabel):
    ax.set_title(label, fontsize=10)
    ax.set_xlabel("t (steps)")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def _seeds(count):
    return "1 seed" if count == 1 else f"{count} seeds"


def _finite_or_none(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
