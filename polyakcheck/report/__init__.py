"""Reports of ``Verification`` results: one self-contained HTML file and a JSON file."""

from polyakcheck.report.figures import (
    Figure,
    distance_figure,
    problem_figures,
    step_size_figure,
    verdict_figures,
)
from polyakcheck.report.html import (
    provenance_info,
    render_html,
    report_data,
    status_counts,
    write_report,
)

__all__ = [
    "Figure",
    "distance_figure",
    "problem_figures",
    "provenance_info",
    "render_html",
    "report_data",
    "status_counts",
    "step_size_figure",
    "verdict_figures",
    "write_report",
]
