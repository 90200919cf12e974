"""The command line of ``antialias reproduce`` (and ``python -m antialias.reproduce``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from antialias.data import DatasetNotFoundError, load_dataset
from antialias.reproduce._api import reproduce
from antialias.reproduce.config import PRESETS, ReproduceConfig

__all__ = ["add_arguments", "main", "run_from_args"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the options of ``antialias reproduce`` on ``parser``."""
    parser.add_argument(
        "--data",
        default="fashion-mnist",
        metavar="SPEC",
        help="fashion-mnist (default; padded to 32x32), fashion-mnist:PATH, cifar10:PATH, imagenet:PATH, "
        "or a module:function data factory",
    )
    parser.add_argument("--out", default="reproduction", metavar="DIR",
                        help="output folder: runs/, figures/, results.json, report.html (default: %(default)s)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="preset", const="quick",
                      help="smaller training subset and evaluation (about 1.5 minutes on an idle 2-core CPU, "
                           "under 4 when it is shared); the default takes about 9 and under 20")
    size.add_argument("--tiny", action="store_const", dest="preset", const="tiny", help=argparse.SUPPRESS)
    size.add_argument("--preset", choices=tuple(p for p in PRESETS if p != "tiny"), dest="preset",
                      help="the sizes of a named preset: quick and default as above; full: about two hours on a "
                           "2-core CPU, 3 training seeds of the baseline and Bin-5, the whole test set and stated "
                           "power (see the README)")
    parser.set_defaults(preset="default")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                        help="where to train and evaluate (default: %(default)s)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="PyTorch CPU threads (default: %(default)s, fastest for these small models on a shared CPU)",
    )
    parser.add_argument("--download", action="store_true",
                        help="download Fashion-MNIST / CIFAR into the cache if missing (hash-checked)")
    parser.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                        help="a bar on a terminal, plain lines otherwise (default: %(default)s)")


def run_from_args(args: argparse.Namespace) -> int:
    """Runs ``antialias reproduce`` from parsed arguments; returns the exit code (130 after Ctrl-C)."""
    try:
        cfg = ReproduceConfig.from_preset(args.preset, data=args.data, out=args.out, device=args.device,
                                     threads=args.threads)
        if args.download:
            _download(cfg.data)
        results = reproduce(cfg, progress=args.progress)
    except KeyboardInterrupt:
        if getattr(args, "debug", False):
            raise
        print("antialias reproduce: interrupted; the finished work is kept. Run the same command again to "
              "continue where it stopped.", file=sys.stderr)
        return 130
    except (ValueError, TypeError, DatasetNotFoundError, OSError, FloatingPointError) as exc:
        if getattr(args, "debug", False):
            raise  # antialias --debug: the top-level handler shows the traceback
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"antialias reproduce: error: {message}", file=sys.stderr)
        return 1
    print(f"report: {Path(cfg.out) / 'report.html'}")
    for claim in results["claims"]:
        print(f"- {claim['sentence']}")
    return 0


def _download(data: str) -> None:
    name, _, path = data.partition(":")
    if name in ("fashion-mnist", "mnist", "cifar10", "cifar100"):
        for split in ("train", "test"):
            load_dataset(name, split=split, root=path or None, download=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m antialias.reproduce``: the same as ``antialias reproduce``."""
    parser = argparse.ArgumentParser(prog="antialias reproduce", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
