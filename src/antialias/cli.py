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


def _add_train(subparsers) -> None:
    from antialias.train import add_arguments
    from antialias.train._cli import DESCRIPTION

    p = subparsers.add_parser("train", help="train a baseline or anti-aliased model (resumable, torchrun-ready)",
                              description=DESCRIPTION)
    add_arguments(p)
    p.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from antialias.train import run_from_args

    return run_from_args(args)


# ------------------------------------------------------------------------------------------- eval

_EVAL_METRICS = {
    "consistency": "classification consistency under random shifts (and accuracy), with 95%% intervals",
    "stability": "probability of the correct class and accuracy along diagonal shifts (the paper's Figure 1)",
    "equivariance": "per-layer feature distance maps Shift(F(x)) vs F(Shift(x)) (the paper's heatmaps)",
    "corruption": "ImageNet-C style corruption errors, CE and mCE (needs the corruptions extra)",
    "perturbation": "ImageNet-P style flip probability, FR/mFR and top-5 distance",
}


def _int_at_least(minimum: int, expectation: str):
    """An argparse ``type`` accepting integers >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be {expectation}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_nonnegative_int = _int_at_least(0, "an integer >= 0")


def _optional_int(text: str) -> int | None:
    return None if text.strip().lower() in ("none", "null") else _positive_int(text)


def _eval_filter_size(text: str):
    from antialias.train._build import parse_filter_size

    value = parse_filter_size(text)
    if value is not None:
        _filter_size(str(value))
    return value


def _json_object(text: str) -> dict:
    import json

    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"width\": 0.5}}', got {text!r}")
    return value


def _add_eval_common(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model (one of --model or --checkpoint)")
    m.add_argument("--model", metavar="SPEC", help="zoo name (see antialias.models.list_models()), or a factory "
                   "'package.module:function' / 'file.py:function'; with --checkpoint, overrides the recorded one")
    m.add_argument("--filter-size", type=_eval_filter_size, default=argparse.SUPPRESS, metavar="N|NAME|none",
                   help="blur filter: 1-7 or rect2/tri3/tri4/bin5, none for the baseline (default: zoo 4, the weights' "
                   "or the checkpoint's; a factory gets none)")
    m.add_argument("--weights", metavar="NAME", help="published weights of a zoo model, e.g. resnet50.imagenet1k_tri4_ft")
    m.add_argument("--checkpoint", metavar="PATH", help="run directory of `antialias train` or one of our .safetensors "
                   "files: the model is rebuilt from the recorded config and loaded strictly")
    m.add_argument("--model-kwargs", type=_json_object, default=None, metavar="JSON", help="extra builder arguments")
    d = p.add_argument_group("data")
    d.add_argument("--data", default="fashion-mnist", metavar="SPEC",
                   help="fashion-mnist, mnist, cifar10[:PATH], cifar100[:PATH], imagenet:PATH, imagefolder:PATH or "
                   "module:function (default: %(default)s)")
    d.add_argument("--data-root", metavar="DIR", help="folder of the data (default: the standard places)")
    d.add_argument("--download", action="store_true", help="allow downloading MNIST/Fashion-MNIST/CIFAR into the cache")
    d.add_argument("--split", default="test", choices=("train", "test", "val"), help="split (default: %(default)s)")
    d.add_argument("--subset", type=_positive_int, metavar="N", help="evaluate the first N images only")
    d.add_argument("--resize", type=_positive_int, metavar="N", help="folder sets: resize the shorter side to N")
    d.add_argument("--center-crop", type=_positive_int, metavar="N", help="folder sets: then centre-crop NxN")
    d.add_argument("--normalize", default="auto", choices=("auto", "none", "dataset", "imagenet"),
                   help="auto: the run's recorded statistics, the weights' (ImageNet), else the data set's default "
                   "(default: %(default)s)")
    r = p.add_argument_group("run")
    r.add_argument("--batch-size", type=_positive_int, default=128, metavar="N",
                   help="images per batch, per process under torchrun (default: %(default)s)")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    r.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"), help="autocast the forwards (fp16: CUDA only)")
    r.add_argument("--num-workers", type=_nonnegative_int, default=0, metavar="N", help="loader processes (default: 0)")
    r.add_argument("--out", required=True, metavar="FILE.json",
                   help="results JSON; figures (.png) and arrays (.npz) are written next to it with the same stem")
    r.add_argument("--force", action="store_true", help="replace existing output files")


def _add_eval(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="measure shift-invariance: consistency, stability, equivariance",
        description="Evaluate a model's shift-invariance. Writes a results JSON (configuration, seed, versions, "
        "model identity, data, every proportion with its 95% Wilson interval), plus figures and arrays. "
        "Runs sharded under `torchrun --nproc_per_node=N` with the same results as one process.",
    )
    metrics = p.add_subparsers(title="metrics", dest="metric", metavar="METRIC", required=True)

    c = metrics.add_parser("consistency", help=_EVAL_METRICS["consistency"], description=(
        "How often shifted copies of an image get the same top-1 class, and accuracy from the same pass. "
        "crop protocol: pad by --max-shift (or, with --crop-size, crop from larger images as the paper's ImageNet "
        "protocol: imagenet data defaults to 224 crops at offsets 0..31 of 256x256 centre crops); circular: "
        "torch.roll. Offsets are per image, seeded per batch."))
    c.add_argument("--protocol", choices=("crop", "circular"), default="crop", help="(default: %(default)s)")
    c.add_argument("--max-shift", type=_nonnegative_int, default=None, metavar="N",
                   help="largest shift in pixels (default: 4; 31 for imagenet)")
    c.add_argument("--crop-size", type=_optional_int, default=argparse.SUPPRESS, metavar="N|none",
                   help="crop size of the crop protocol (default: none = pad and crop the image size; 224 for imagenet)")
    c.add_argument("--pad-mode", choices=("zeros", "reflect"), default="zeros", help="padding (default: %(default)s)")
    c.add_argument("--copies", type=_positive_int, default=2, metavar="K", help="shifted copies that must agree (default: 2)")
    c.add_argument("--passes", type=_positive_int, default=1, metavar="N", help="passes over the data (default: 1)")
    c.add_argument("--per-batch", action="store_true", help="share one offset per batch (the reference's behaviour)")
    c.add_argument("--only-correct", action="store_true", help="consistency over correctly classified images only")
    c.add_argument("--seed", type=_nonnegative_int, default=0, help="seed of the offsets (default: 0)")
    c.add_argument("--confidence", type=float, default=0.95, help="interval level (default: 0.95)")
    _add_eval_common(c)
    c.set_defaults(handler=_run_eval)

    s = metrics.add_parser("stability", help=_EVAL_METRICS["stability"], description=(
        "Classify every image at diagonal shifts 0..--max-shift; writes the results JSON, the curves (.png) and the "
        "per-image arrays (.npz)."))
    s.add_argument("--max-shift", type=_nonnegative_int, default=None, metavar="N", help="(default: 8; 32 for imagenet)")
    s.add_argument("--protocol", choices=("crop", "circular"), default="crop", help="(default: %(default)s)")
    s.add_argument("--crop-size", type=_optional_int, default=argparse.SUPPRESS, metavar="N|none",
                   help="(default: none = pad; 224 for imagenet)")
    s.add_argument("--pad-mode", choices=("zeros", "reflect"), default="zeros", help="(default: %(default)s)")
    _add_eval_common(s)
    s.set_defaults(handler=_run_eval)

    e = metrics.add_parser("equivariance", help=_EVAL_METRICS["equivariance"], description=(
        "Distance between Shift(F(x)) and F(Shift(x)) for every circular shift on a grid, per layer, averaged over "
        "images. Images are zero-padded to a multiple of --pad-to (Fashion-MNIST 28 -> 32) so feature maps upsample "
        "exactly. Writes the JSON (per-layer means), the heatmaps (.png) and the maps (.npz)."))
    e.add_argument("--layers", nargs="+", metavar="NAME", help="module names (default: every conv, norm, activation, pool)")
    e.add_argument("--step", type=_positive_int, default=None, help="shift grid spacing (default: 1 up to 32 px, else a 32x32 grid)")
    e.add_argument("--distance", choices=("cosine", "l2"), default="cosine", help="(default: %(default)s)")
    e.add_argument("--num-images", type=_positive_int, default=16, metavar="N", help="images averaged over (default: 16)")
    e.add_argument("--pad-to", type=_nonnegative_int, default=32, metavar="N", help="pad to a multiple of N, 0: off (default: 32)")
    e.add_argument("--shifts-per-batch", type=_positive_int, default=None, metavar="N", help="(default: 64 // num-images)")
    e.add_argument("--no-split-max", dest="split_max", action="store_false", help="do not record max-pools' dense max")
    _add_eval_common(e)
    e.set_defaults(handler=_run_eval)

    k = metrics.add_parser("corruption", help=_EVAL_METRICS["corruption"], description=(
        "Corrupt every image on the fly (imagecorruptions) with each corruption and severity; errors with 95% "
        "intervals, CE/mCE against --normaliser (alexnet on ImageNet, or a reference model's results JSON)."))
    k.add_argument("--corruptions", nargs="+", metavar="NAME", help="(default: the 15 test corruptions)")
    k.add_argument("--severities", nargs="+", type=_positive_int, default=[1, 2, 3, 4, 5], metavar="S")
    k.add_argument("--normaliser", metavar="alexnet|FILE.json", help="reference errors for CE and mCE")
    k.add_argument("--no-clean", dest="clean", action="store_false", help="skip the clean error")
    k.add_argument("--seed", type=_nonnegative_int, default=0, help="corruption seed (default: 0)")
    _add_eval_common(k)
    k.set_defaults(handler=_run_eval)

    q = metrics.add_parser("perturbation", help=_EVAL_METRICS["perturbation"], description=(
        "Generate perturbation sequences on the fly; flip probabilities (consecutive frames; noise: against the "
        "first frame), FR/mFR against --normaliser (a reference model's results JSON) and top-5 distance."))
    q.add_argument("--perturbations", nargs="+", metavar="NAME", help="(default: all eight generated ones)")
    q.add_argument("--preset", choices=("auto", "imagenet", "cifar"), default="auto", help="(default: %(default)s)")
    q.add_argument("--step", type=_positive_int, default=1, help="frame distance of compared pairs (default: 1)")
    q.add_argument("--normaliser", metavar="FILE.json", help="reference model's results for FR and mFR")
    q.add_argument("--seed", type=_nonnegative_int, default=0, help="noise seed (default: 0)")
    _add_eval_common(q)
    q.set_defaults(handler=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    import warnings

    prog = f"antialias eval {args.metric}"
    if args.model is None and args.checkpoint is None:
        print(f"usage: {prog} --model SPEC | --checkpoint PATH [options] --out FILE.json", file=sys.stderr)
        print(f"{prog}: error: one of --model or --checkpoint is required", file=sys.stderr)
        return 2
    from antialias.eval import protocols

    common = dict(
        weights=args.weights, checkpoint=args.checkpoint, model_kwargs=args.model_kwargs, split=args.split,
        subset=args.subset, data_root=args.data_root, download=args.download, resize=args.resize,
        center_crop=args.center_crop, batch_size=args.batch_size, device=args.device, amp=args.amp,
        normalize=args.normalize, num_workers=args.num_workers, out=args.out, overwrite=args.force,
        command=["antialias", *args.argv] if getattr(args, "argv", None) is not None else None,
    )
    if hasattr(args, "filter_size"):
        common["filter_size"] = args.filter_size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = lambda message, *rest, **kw: print(f"{prog}: warning: {message}", file=sys.stderr)
            if args.metric == "consistency":
                from antialias.eval.consistency import ConsistencyConfig

                imagenet = protocols._is_imagenet(args.data)
                crop = getattr(args, "crop_size", 224 if imagenet else None)
                max_shift = args.max_shift if args.max_shift is not None else (31 if imagenet and crop else 4)
                config = ConsistencyConfig(
                    protocol=args.protocol, max_shift=max_shift, crop_size=crop, pad_mode=args.pad_mode,
                    copies=args.copies, passes=args.passes, per_batch=args.per_batch, only_correct=args.only_correct,
                    seed=args.seed, confidence=args.confidence)
                record = protocols.run_consistency(args.model, args.data, config=config, **common)
                summary = ", ".join(f"{k} {_fmt(v)}" for k, v in record["results"].items())
            elif args.metric == "stability":
                extra = {"crop_size": args.crop_size} if hasattr(args, "crop_size") else {}
                record = protocols.run_stability(args.model, args.data, max_shift=args.max_shift, protocol=args.protocol,
                                                 pad_mode=args.pad_mode, **extra, **common)
                res = record["results"]
                summary = (f"accuracy {_fmt(res['accuracy'][0])} at shift 0, {_fmt(res['accuracy'][-1])} at "
                           f"{res['shifts'][-1]}; unchanged prediction {_fmt(res['unchanged_prediction'])}")
            elif args.metric == "corruption":
                record = protocols.run_corruption(
                    args.model, args.data, corruptions=args.corruptions, severities=args.severities,
                    normaliser=args.normaliser, clean=args.clean, seed=args.seed, **common)
                res = record["results"]
                errors = res["corruption_errors"]
                summary = ", ".join(f"{name} error {_fmt(e)}" for name, e in errors.items()) + f"; mCE {_number(res.get('mce'))}"
            elif args.metric == "perturbation":
                record = protocols.run_perturbation(
                    args.model, args.data, perturbations=args.perturbations, preset=args.preset, step=args.step,
                    normaliser=args.normaliser, seed=args.seed, **common)
                res = record["results"]
                flips = res["flip_probability"]
                summary = ", ".join(f"{name} flip probability {_fmt(e)}" for name, e in flips.items()) + f"; mFR {_number(res.get('mfr'))}"
            else:
                record = protocols.run_equivariance(
                    args.model, args.data, layers=args.layers, step=args.step, distance=args.distance,
                    num_images=args.num_images, pad_to=args.pad_to or None, shifts_per_batch=args.shifts_per_batch,
                    split_max=args.split_max, **common)
                means = record["results"]["means"]
                summary = f"{len(means)} layers, mean {args.distance} distance {sum(means.values()) / max(1, len(means)):.4f}"
    except (ValueError, TypeError, OSError, RuntimeError, ImportError) as exc:
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():  # started by the run under torchrun
            dist.destroy_process_group()
    if record["environment"]["world_size"] == 1 or _is_rank0():
        print(f"{args.metric}: {summary}", flush=True)
        for path in record["files"].values():
            print(f"wrote {path}", flush=True)
    return 0


def _number(estimate: dict | None) -> str:
    return "n/a" if not estimate else f"{estimate['value']:.2f} [{estimate['low']:.2f}, {estimate['high']:.2f}]"


def _fmt(p: dict) -> str:
    return f"{100 * p['value']:.2f}% [{100 * p['low']:.2f}, {100 * p['high']:.2f}] (n={p.get('total', p.get('n'))})"


def _is_rank0() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


# ------------------------------------------------------------------------------------------- reproduce


def _add_reproduce(subparsers) -> None:
    from antialias.reproduce import add_arguments

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
    add_arguments(p)
    p.set_defaults(handler=_run_reproduce)


def _run_reproduce(args: argparse.Namespace) -> int:
    from antialias.reproduce import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="antialias",
        description=_DESCRIPTION,
        epilog="Run 'antialias COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {antialias.__version__} ({antialias._kernels.backend_description()})")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True)
    _add_figures(subparsers)
    _add_train(subparsers)
    _add_eval(subparsers)
    _add_reproduce(subparsers)
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
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
