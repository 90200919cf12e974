"""``antialias reproduce``: the paper's findings reproduced in one command, with a verdict per claim.

Layout: ``config`` (what is run), ``_runs`` (training runs), ``_data`` (evaluation data), ``_evaluate``
(per-model measurements, cached), ``_robust`` (corruption and perturbation parts), ``_verdicts``
(claims judged from the results), ``_pipeline`` (the steps in order, then the report), ``_api``
(:func:`reproduce`), ``_cli`` (the command line).
"""

from antialias.reproduce._api import reproduce
from antialias.reproduce._cli import add_arguments, main, run_from_args
from antialias.reproduce.config import FILTERS, PRESETS, EvalSettings, ReproduceConfig

__all__ = [
    "FILTERS",
    "PRESETS",
    "EvalSettings",
    "ReproduceConfig",
    "add_arguments",
    "main",
    "reproduce",
    "run_from_args",
]
