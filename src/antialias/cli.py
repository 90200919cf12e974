"""The ``antialias`` command: parse arguments and dispatch to the library; no work is done here.

Each subcommand is one ``_add_<name>(subparsers)`` function that declares its arguments and sets
``handler`` to a ``_run_<name>(args) -> int``. Handlers import what they need lazily, so
``antialias --help`` stays fast. Exit codes: 0 success, 1 the command failed (message on stderr),
2 bad arguments (argparse's convention).

Examples:
    >>> args = build_parser().parse_args(["figures", "--out", "figs", "--filter-size", "bin5"])
    >>> args.command, args.out, args.filter_size
    ('figures', 'figs', 'bin5')
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import antialias

__all__ = ["build_parser", "main"]

_DESCRIPTION = (
    "antialias: anti-aliased downsampling for convolutional networks, after Zhang, "
    "'Making Convolutional Networks Shift-Invariant Again' (ICML 2019)."
)


def _filter_size(text: str) -> str | int:
    """argparse type: a filter name or a tap count, checked by antialias.filters."""
    from antialias.filters import filter_row

    value: str | int = int(text) if text.isdigit() else text
    try:
        filter_row(value, where="--filter-size")
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _add_figures(subparsers) -> None:
    from antialias.report.figures import FIGURE_FILES, PHOTOS

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
    p.add_argument("--out", default="figures", metavar="DIR", help="output folder, created if missing (default: %(default)s)")
    p.add_argument(
        "--filter-size", type=_filter_size, default=4, metavar="FILTER",
        help="MaxBlurPool filter in the downsampling figures: rect2, tri3, tri4, bin5 or a tap count (default: 4 = tri4)",
    )
    p.add_argument("--photo", choices=sorted(PHOTOS), default="astronaut", help="scikit-image photo to use (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="replace files of the same names even if another program wrote them")
    p.set_defaults(handler=_run_figures)


def _run_figures(args: argparse.Namespace) -> int:
    from antialias.report.figures import write_figures

    try:
        write_figures(
            args.out, filter_size=args.filter_size, photo=args.photo, overwrite=args.force,
            on_write=lambda path: print(f"wrote {path}", flush=True),
        )
    except OSError as exc:  # FileExistsError (not ours), PermissionError, disk full, ...
        print(f"antialias figures: error: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="antialias",
        description=_DESCRIPTION,
        epilog="Run 'antialias COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {antialias.__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True)
    _add_figures(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``antialias`` command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit code: 0 on success, 1 if the command failed.

    Raises:
        SystemExit: code 0 after ``--help``/``--version``, code 2 on bad arguments (from argparse).
    """
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
