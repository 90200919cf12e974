"""The command line of ``antialias reproduce`` (and ``python -m antialias.reproduce``)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from antialias.data import DatasetNotFoundError, load_dataset
from antialias.reproduce._api import reproduce
from antialias.reproduce._plan import format_plan
from antialias.reproduce.config import PRESETS, ReproduceConfig, check_preset_data

__all__ = ["add_arguments", "check_preset_data", "main", "run_from_args"]

#: Options a preset may set itself (``device``, ``threads``, ``data`` in :data:`PRESETS`): the flag's
#: default applies only to presets that do not.
_PRESET_OPTIONS = ("data", "device", "threads")


class _Given(argparse.Action):
    """Stores the value and records that the user gave the flag (``namespace.given``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the options of ``antialias reproduce`` on ``parser``."""
    parser.add_argument(
        "--data",
        default="fashion-mnist",
        action=_Given,
        metavar="SPEC",
        help="fashion-mnist (default; padded to 32x32), fashion-mnist:PATH, cifar10:PATH, imagenet:PATH, "
        "or a module:function data factory; --preset cifar10 needs cifar10[:PATH], --preset imagenet imagenet:PATH",
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
                           "2-core CPU, all 60,000 training images, 5 training seeds of the baseline, Rect-2 and "
                           "Bin-5, the whole test set and stated power; cifar10 and imagenet: the paper's scale on "
                           "a GPU, with --data cifar10:PATH "
                           "(VGG13-bn, 18 runs of 200 epochs) or imagenet:PATH (ResNet50, 5 runs of 90 epochs); "
                           "the README gives the expected times, on one GPU and with --plan under torchrun")
    parser.set_defaults(preset="default")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", action=_Given,
                        help="where to train and evaluate (default: cuda for the cifar10 and imagenet presets, "
                             "cpu for the others)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        action=_Given,
        metavar="N",
        help="PyTorch CPU threads (default: 1, fastest for the small CPU presets on a shared CPU; PyTorch's own "
             "default for the cifar10 and imagenet presets)",
    )
    parser.add_argument("--seeds", type=int, default=None, action=_Given, metavar="N",
                        help="trainings (seeds) of each configuration the preset trains several times (the "
                             "baseline and Bin-5, plus Rect-2 in the full preset); verdicts then include the "
                             "variation between trainings (default: the preset's, 1 for quick and default, 5 for "
                             "full)")
    parser.add_argument("--download", action="store_true",
                        help="download Fashion-MNIST / CIFAR into the cache if missing (hash-checked)")
    parser.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                        help="a bar on a terminal, plain lines otherwise (default: %(default)s)")
    plan = parser.add_argument_group("plan (several GPUs: torchrun)")
    plan.add_argument("--plan", action="store_true",
                      help="print the training command of every run instead (antialias train, or torchrun with "
                           "--nproc-per-node), and the command that then evaluates them; writes nothing (but the "
                           "data with --download). Runs trained by those commands are reused by antialias reproduce "
                           "with the same options")
    plan.add_argument("--nproc-per-node", type=int, default=None, metavar="N",
                      help="with --plan: processes (GPUs) per training, printed as torchrun --standalone "
                           "--nproc_per_node=N -m antialias.train ...; it must divide the preset's batch size "
                           "(default: one process, antialias train ...)")
    plan.add_argument("--num-workers", type=int, default=None, metavar="N",
                      help="with --plan: data loader workers per process in the printed commands (default: 8 "
                           "for ImageNet folders, none for in-memory sets); they do not change the run")


def _config(args: argparse.Namespace) -> ReproduceConfig:
    """The reproduction the options describe: the preset, with the options it does not set itself."""
    given: set[str] = getattr(args, "given", set())
    preset = PRESETS.get(args.preset, {})
    options = {name: getattr(args, name) for name in _PRESET_OPTIONS if name in given or name not in preset}
    if "seeds" in given:
        options["seeds"] = args.seeds
    check_preset_data(args.preset, options.get("data", preset.get("data", "")))
    return ReproduceConfig.from_preset(args.preset, out=args.out, **options)


def _reproduce_command(args: argparse.Namespace, cfg: ReproduceConfig) -> str:
    """The ``antialias reproduce`` command of ``cfg`` (what to run once the planned trainings are done)."""
    argv = ["antialias", "reproduce", *(["--tiny"] if args.preset == "tiny" else ["--preset", args.preset]),
            "--data", cfg.data, "--out", cfg.out, "--device", cfg.device]
    if "threads" in getattr(args, "given", set()):
        argv += ["--threads", str(cfg.threads)]
    if "seeds" in getattr(args, "given", set()):
        argv += ["--seeds", str(cfg.seeds)]
    return shlex.join(argv)


def run_from_args(args: argparse.Namespace) -> int:
    """Runs ``antialias reproduce`` from parsed arguments; returns the exit code (130 after Ctrl-C)."""
    plan = getattr(args, "plan", False)
    try:
        if not plan and (getattr(args, "nproc_per_node", None) is not None
                         or getattr(args, "num_workers", None) is not None):
            raise ValueError("`antialias reproduce`: `--nproc-per-node` and `--num-workers` must come with --plan "
                             "(they shape the printed training commands), got them without it. Add --plan.")
        cfg = _config(args)
        if args.download:
            _download(cfg.data)
        if plan:
            print(format_plan(cfg, _reproduce_command(args, cfg), nproc_per_node=args.nproc_per_node,
                              num_workers=args.num_workers))
            return 0
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
