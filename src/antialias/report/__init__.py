"""Reports: results and data in, figures (and later HTML) out, as pure functions."""

from antialias.report import figures
from antialias.report.figures import FIGURE_FILES, write_figures

__all__ = ["FIGURE_FILES", "figures", "write_figures"]
