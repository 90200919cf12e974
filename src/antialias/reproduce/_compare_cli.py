"""The command line of ``antialias compare`` (see :mod:`antialias.reproduce.compare`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from antialias.data import DatasetNotFoundError
from antialias.reproduce._cli import _download
from antialias.reproduce.compare import DEFAULT_METHODS, METHODS, CompareConfig, compare, parse_methods

__all__ = ["DESCRIPTION", "add_compare_arguments", "run_compare_from_args"]

DESCRIPTION = (
    "Train the same small network (VGG13-bn, narrowed for a CPU) with each downsampling method -- baseline, "
    "blurpool, aps, lps, ideal (and adaptive) -- under the same seed and data, with circular padding; measure "
    "accuracy, random-shift consistency, worst-case consistency over circular, crop and sub-pixel grids, "
    "every circular shift on a subset, MAC, k-way consistency and the cost of a training step; write "
    "OUT/comparison.md, OUT/comparison.png, OUT/report.html and OUT/results.json with a verdict per claim. "
    "Finished runs and evaluations are reused: run the same command again after an interruption to continue."
)


def _methods(text: str) -> tuple[str, ...]:
    try:
        return parse_methods(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the options of ``antialias compare`` on ``parser``."""
    parser.add_argument("--methods", type=_methods, default=DEFAULT_METHODS, metavar="M1,M2,...",
                        help=f"comma-separated methods from {', '.join(METHODS)} "
                        f"(default: {','.join(DEFAULT_METHODS)})")
    parser.add_argument("--data", default="fashion-mnist", metavar="SPEC",
                        help="fashion-mnist (default; padded to 32x32), fashion-mnist:PATH, cifar10:PATH, or a "
                        "module:function data factory")
    parser.add_argument("--out", default="comparison", metavar="DIR",
                        help="output folder: runs/, comparison.md/.png, report.html, results.json "
                        "(default: %(default)s)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="preset", const="quick",
                      help="2000 training images, 2 epochs, 500 test images (3 minutes measured on the shared "
                      "2-core CPU at load 9-10); the default took 12 minutes there (see the README)")
    size.add_argument("--tiny", action="store_const", dest="preset", const="tiny", help=argparse.SUPPRESS)
    parser.set_defaults(preset="default")
    parser.add_argument("--no-circular", dest="circular", action="store_false",
                        help="keep the network's zero padding (APS/LPS are then not exactly circular-invariant)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                        help="where to train and evaluate (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="PyTorch CPU threads (default: %(default)s, fastest for these small models on a "
                        "shared CPU)")
    parser.add_argument("--download", action="store_true",
                        help="download Fashion-MNIST / CIFAR into the cache if missing (hash-checked)")
    parser.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                        help="a bar on a terminal, plain lines otherwise (default: %(default)s)")


def run_compare_from_args(args: argparse.Namespace) -> int:
    """Runs ``antialias compare`` from parsed arguments; returns the exit code (130 after Ctrl-C)."""
    try:
        cfg = CompareConfig.from_preset(args.preset, data=args.data, out=args.out, device=args.device,
                                        threads=args.threads, methods=args.methods, circular=args.circular)
        if args.download:
            _download(cfg.data)
        results = compare(cfg, progress=args.progress)
    except KeyboardInterrupt:
        print("antialias compare: interrupted; the finished work is kept. Run the same command again to "
              "continue where it stopped.", file=sys.stderr)
        return 130
    except (ValueError, TypeError, DatasetNotFoundError, OSError) as exc:
        print(f"antialias compare: error: {exc}", file=sys.stderr)
        return 1
    print(f"report: {Path(cfg.out) / 'report.html'}")
    print(f"table: {Path(cfg.out) / 'comparison.md'}")
    for claim in results["claims"]:
        print(f"- {claim['sentence']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m antialias.reproduce._compare_cli``: the same as ``antialias compare``."""
    parser = argparse.ArgumentParser(prog="antialias compare", description=DESCRIPTION)
    add_compare_arguments(parser)
    return run_compare_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
