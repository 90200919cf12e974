"""The ``antialias`` command: parse arguments and dispatch to the library; no work is done here.

Each subcommand is one ``_add_<name>(subparsers)`` function that declares its arguments (train's and
eval's are generated from their config dataclasses, in :mod:`antialias.train._cli` and
:mod:`antialias.eval._cli`) and sets ``handler`` to a ``_run_<name>(args) -> int``. Evaluation returns
results and draws nothing: ``antialias eval`` asks :mod:`antialias.report` for the figure of the
returned record here and writes it next to the results. Every import is at the top: the
subcommands' modules add 0.01 s to ``antialias --help`` with byte-code cached (measured; torch,
matplotlib and torchmetrics dominate).

Errors. :func:`main` is the one place that turns an exception into what the user sees: one line
``antialias <command>: error: <message>`` on stderr and exit code 1 (2 for bad arguments, argparse's
convention; 130 after Ctrl-C). An exception of a kind the library does not raise on purpose is a bug:
the line says so. ``--debug`` (anywhere on the command line) shows the traceback instead. Exit
codes: 0 success, 1 the command failed, 2 bad arguments, 130 interrupted.

Examples:
    >>> args = build_parser().parse_args(["figures", "--out", "figs", "--filter-size", "bin5"])
    >>> args.command, args.out, args.filter_size
    ('figures', 'figs', 'bin5')
"""

from __future__ import annotations

import argparse
import errno
import pickle
import sys
import tarfile
import traceback
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

import antialias
from antialias import _kernels
from antialias.eval._cli import add_eval_parser
from antialias.eval._cli import run_from_args as run_eval_from_args
from antialias.filters import filter_row
from antialias.report.eval_figures import (
    corruption_errors,
    feature_distance_heatmaps,
    perturbation_flips,
    stability_curves,
)
from antialias.report.figures import FIGURE_FILES, PHOTOS, save_png, write_figures
from antialias.reproduce import add_arguments as add_reproduce_arguments
from antialias.reproduce import run_from_args as run_reproduce_from_args
from antialias.reproduce._compare_cli import DESCRIPTION as COMPARE_DESCRIPTION
from antialias.reproduce._compare_cli import add_compare_arguments, run_compare_from_args
from antialias.train import add_arguments, run_from_args
from antialias.train._cli import DESCRIPTION

__all__ = ["build_parser", "main"]

_DESCRIPTION = (
    "antialias: anti-aliased downsampling for convolutional networks, after Zhang, "
    "'Making Convolutional Networks Shift-Invariant Again' (ICML 2019)."
)


def _filter_size(text: str) -> str | int:
    """argparse type: a filter name or a tap count, checked by antialias.filters."""
    value: str | int = int(text) if text.isdigit() else text
    try:
        filter_row(value, where="--filter-size")
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _add_figures(subparsers: Any) -> None:
    files = ", ".join(FIGURE_FILES.values())
    p = subparsers.add_parser(
        "figures",
        help="render the explanatory figures (toy example, downsampling, filter responses) as PNG",
        description=(
            "Render PNG figures: the paper's 1-D toy example (Fig. 4), naive max-pooling vs MaxBlurPool "
            "at 1/2, 1/4 and 1/8 scale on a zone plate and a photo, and the frequency responses of "
            f"rect2, tri3, tri4 and bin5. Writes {files}. Files of these names that this command did "
            "not write are left alone (the command fails) unless --force is given."
        ),
    )
    p.add_argument(
        "--out", default="figures", metavar="DIR", help="output folder, created if missing (default: %(default)s)"
    )
    p.add_argument(
        "--filter-size",
        type=_filter_size,
        default=4,
        metavar="FILTER",
        help="MaxBlurPool filter in the downsampling figures: rect2, tri3, tri4, bin5 or a tap count "
        "(default: 4 = tri4)",
    )
    p.add_argument(
        "--photo", choices=sorted(PHOTOS), default="astronaut", help="scikit-image photo to use (default: %(default)s)"
    )
    p.add_argument(
        "--force", action="store_true", help="replace files of the same names even if another program wrote them"
    )
    p.set_defaults(handler=_run_figures)


def _run_figures(args: argparse.Namespace) -> int:
    try:
        write_figures(
            args.out, filter_size=args.filter_size, photo=args.photo, overwrite=args.force,
            on_write=lambda path: print(f"wrote {path}", flush=True),
        )
    except OSError as exc:  # FileExistsError (not ours), PermissionError, disk full, ...
        if getattr(args, "debug", False):
            raise
        print(f"antialias figures: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_train(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="train a baseline or anti-aliased model (resumable, torchrun-ready)",
                              description=DESCRIPTION)
    add_arguments(p)
    p.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    return run_from_args(args)


# ------------------------------------------------------------------------------------------- eval


def _add_eval(subparsers: Any) -> None:
    add_eval_parser(subparsers, handler=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    return run_eval_from_args(args, figure_writer=_write_eval_figure)


def _eval_figure(record: dict[str, Any]) -> Figure:
    """The figure of an ``antialias eval`` record, from :mod:`antialias.report.eval_figures`."""
    metric, results, label = record["metric"], record["results"], str(record["model"]["spec"])
    if metric == "stability":
        acc = [a["value"] for a in results["accuracy"]]
        return stability_curves({label: {"shifts": results["shifts"], "mean_prob_correct": results["mean_prob_correct"],
                                         "accuracy": acc}})
    if metric == "equivariance":  # the maps are in the .npz the evaluation wrote
        with np.load(record["files"]["npz"]) as arrays:
            maps = arrays["maps"]
        return feature_distance_heatmaps({label: maps}, {label: results["layers"]}, distance=results["distance"],
                                         step=results.get("step"))
    if metric == "corruption":
        return corruption_errors(results)
    return perturbation_flips(results)


def _write_eval_figure(record: dict[str, Any], path: Path, overwrite: bool) -> Path:
    if path.exists() and not overwrite:  # checked before the run too; the run may have taken hours
        raise FileExistsError(f"`eval`: `out` must not exist already, got {str(path)!r}. Pass --force.")
    return save_png(_eval_figure(record), path, overwrite=True)


# ------------------------------------------------------------------------------------------- reproduce


def _add_reproduce(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="train, evaluate and report the paper's findings in one command (resumable)",
        description=(
            "Train the paper's small-image model (VGG13-bn, narrowed for a CPU) as a baseline and anti-aliased "
            "with rect2, tri3, tri4 and bin5, with and without shift augmentation; measure accuracy, consistency, "
            "stability, feature equivariance and robustness; write OUT/report.html, OUT/results.json and PNG "
            "figures with a verdict per claim of the paper. Finished runs and evaluations are reused: run the "
            "same command again after an interruption to continue."
        ),
    )
    add_reproduce_arguments(p)
    p.set_defaults(handler=_run_reproduce)


def _run_reproduce(args: argparse.Namespace) -> int:
    return run_reproduce_from_args(args)


def _add_compare(subparsers: Any) -> None:
    p = subparsers.add_parser("compare", help="train and compare downsampling methods (baseline, blurpool, aps, lps, "
                              "ideal) on the same data and seeds", description=COMPARE_DESCRIPTION)
    add_compare_arguments(p)
    p.set_defaults(handler=run_compare_from_args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="antialias",
        description=_DESCRIPTION,
        epilog="Run 'antialias COMMAND --help' for a command's options.",
    )
    parser.add_argument(
        "--version", action="version",
        version=f"%(prog)s {antialias.__version__} ({_kernels.backend_description()})",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback when a command fails (may be given anywhere)")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True)
    _add_figures(subparsers)
    _add_train(subparsers)
    _add_eval(subparsers)
    _add_reproduce(subparsers)
    _add_compare(subparsers)
    return parser


#: Exceptions that carry a message for the user (bad input, missing or damaged files, a full disk).
#: PIL's DecompressionBombError and the data readers' errors are ValueError/OSError subclasses or
#: are wrapped into them; anything else reaching :func:`main` is reported as a bug.
KNOWN_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, TypeError, OSError, FloatingPointError, ImportError, LookupError, pickle.UnpicklingError,
    tarfile.TarError, zipfile.BadZipFile, EOFError, NotImplementedError,
)


def _command_name(argv: Sequence[str]) -> str:
    """``antialias train`` / ``antialias eval consistency`` for messages (what the user ran)."""
    words = [a for a in argv if not a.startswith("-")][:2]
    if not words:
        return "antialias"
    if words[0] == "eval" and len(words) > 1:
        return f"antialias eval {words[1]}"
    return f"antialias {words[0]}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC and "disk" not in text.lower():
        text += " (the disk is full)"
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``antialias`` command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None. ``--debug`` may come
            anywhere: a failure then shows its traceback.

    Returns:
        The exit code: 0 on success, 1 if the command failed (one line on stderr), 130 after Ctrl-C.

    Raises:
        SystemExit: code 0 after ``--help``/``--version``, code 2 on bad arguments (from argparse).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    prog = _command_name(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    args.debug = debug
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except KNOWN_ERRORS as exc:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line, with the way to see more
        if debug:
            traceback.print_exc()
            return 1
        print(f"{prog}: error: unexpected {type(exc).__name__}: {_one_line(exc)} (this is a bug in antialias "
              f"{antialias.__version__}; run again with --debug for the traceback and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
