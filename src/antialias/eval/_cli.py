"""``antialias eval METRIC``: flags generated from the config dataclasses, then run, summarise, exit code.

Every metric's flags are the fields of :class:`~antialias.eval.config.EvalOptions` (model, data, run)
and of its own config (:data:`~antialias.eval.config.METRIC_CONFIGS`): ``batch_size`` is
``--batch-size`` (a field's ``metadata`` may name another flag, e.g. ``overwrite`` is ``--force``),
the help is the field's line in its class docstring, booleans get ``--x/--no-x``. Flags that are not
given stay out of the namespace, so data-dependent defaults (``imagenet`` data) are filled by
:meth:`for_data` of the config. Precedence, lowest first: the field defaults, ``--config FILE``
(JSON or TOML, keys are field names), the flags given. An unknown key or a value the config refuses
is a usage error (exit 2).

Evaluation draws nothing: the caller passes a ``figure_writer`` (``antialias.cli`` passes one that
asks :mod:`antialias.report` for the figure of the returned record) and this module only decides
where it goes (``OUT.png``, checked before the run, written by the main process after it).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.distributed as dist

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib

from antialias._docs import field_help
from antialias.eval._results import check_outputs
from antialias.eval.config import METRIC_CONFIGS, EvalOptions
from antialias.eval.protocols import (
    run_consistency,
    run_corruption,
    run_equivariance,
    run_perturbation,
    run_stability,
    run_worst_case,
)
from antialias.runs.model import parse_filter_size

__all__ = ["FIGURE_METRICS", "FigureWriter", "add_config_arguments", "add_eval_parser", "configs_from_args",
           "field_help", "run_from_args"]

#: ``(record, png path, overwrite) -> path written``.
FigureWriter = Callable[[dict[str, Any], Path, bool], Path]

#: Metrics whose command line also writes a figure next to the results.
FIGURE_METRICS = ("stability", "equivariance", "corruption", "perturbation")

_RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "consistency": run_consistency,
    "stability": run_stability,
    "equivariance": run_equivariance,
    "corruption": run_corruption,
    "perturbation": run_perturbation,
    "worst-case": run_worst_case,
}

_HELP = {
    "consistency": "classification consistency under random shifts (and accuracy), with 95%% intervals",
    "stability": "probability of the correct class and accuracy along diagonal shifts (the paper's Figure 1)",
    "equivariance": "per-layer feature distance maps Shift(F(x)) vs F(Shift(x)) (the paper's heatmaps)",
    "corruption": "ImageNet-C style corruption errors, CE and mCE, generated (the corruptions extra) or on "
    "CIFAR-10-C/ImageNet-C files",
    "perturbation": "ImageNet-P style flip probability, FR/mFR and top-5 distance, generated or on CIFAR-10-P/"
    "ImageNet-P files",
    "worst-case": "worst-case consistency over shift grids (circular, crop, sub-pixel), MAC, k-way and random "
    "sub-pixel consistency",
}

_DESCRIPTION = {
    "consistency": "How often shifted copies of an image get the same top-1 class, and accuracy from the same "
    "pass. crop protocol: pad by --max-shift (or, with --crop-size, crop from larger images as the paper's ImageNet "
    "protocol: imagenet data defaults to 224 crops at offsets 0..31 of 256x256 centre crops); circular: torch.roll. "
    "Offsets are drawn per image from (seed, pass, image position): the same for any batch size or number of "
    "processes, and the same as the Python API's and `antialias reproduce`'s.",
    "stability": "Classify every image at diagonal shifts 0..--max-shift; writes the results JSON, the curves (.png) "
    "and the per-image arrays (.npz).",
    "equivariance": "Distance between Shift(F(x)) and F(Shift(x)) for every circular shift on a grid, per layer, "
    "averaged over images. Images are zero-padded to a multiple of --pad-to (Fashion-MNIST 28 -> 32) so feature maps "
    "upsample exactly. Writes the JSON (per-layer means), the heatmaps (.png) and the maps (.npz).",
    "corruption": "Corrupt every image on the fly (imagecorruptions) with each corruption and severity; errors with "
    "95% intervals, CE/mCE against --normaliser (alexnet on ImageNet, or a reference model's results JSON); "
    "writes the JSON and a figure of the errors (.png). With --corruption-data DIR, the released CIFAR-10-C files or "
    "ImageNet-C folders in DIR are evaluated instead (no extra needed; ImageNet-C is normalised by AlexNet's published "
    "errors unless --normaliser says otherwise); --data is then their clean set: cifar10, or imagenet:PATH.",
    "perturbation": "Generate perturbation sequences on the fly; flip probabilities (consecutive frames; noise: "
    "against the first frame), FR/mFR against --normaliser (a reference model's results JSON) and top-5 distance; "
    "writes the JSON and a figure (.png). With --perturbation-data DIR, the released CIFAR-10-P files or ImageNet-P "
    "videos in DIR are evaluated instead (ImageNet-P needs PyAV: pip install \"antialias[video]\"); --data then names "
    "the model's data set: cifar10, or imagenet:PATH.",
    "worst-case": "The fraction of images whose prediction is unchanged under every shift of a grid, per family: "
    "circular (torch.roll by -m..m), crop (pad by m, crop at every offset) and subpixel (band-limited Fourier shifts "
    "at multiples of --subpixel-step up to --subpixel-max-shift, by default the 1/4 and 1/2 pixel shifts); the mean "
    "absolute change (MAC) of the top-class probability over the same grids; k-way consistency (--k random circular "
    "shifts all agree) and random sub-pixel consistency (two random real shifts in -r..r agree). Wilson intervals "
    "by image, bootstrap over images for MAC.",
}

_GROUPS = {"model": "model (one of --model or --checkpoint)", "data": "data", "run": "run"}


# ------------------------------------------------------------------------------ flags from fields


def _int_at_least(minimum: int, *, optional: bool) -> Callable[[str], int | None]:
    def parse(text: str) -> int | None:
        if optional and text.strip().lower() in ("none", "null"):
            return None
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            more = " or none" if optional else ""
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}{more}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def _filter_size(text: str) -> int | str | None:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return parse_filter_size(text)  # checks the row too: "-3", "3.5", "tri9" are refused here
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _float_or_none(text: str) -> float | None:
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or none, got {text!r}") from None


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"width\": 0.5}}', got {text!r}")
    return value


def _argument(f: dataclasses.Field) -> dict[str, Any]:
    """argparse keywords for field ``f`` (its type is the annotation's text: annotations are postponed)."""
    meta, kind = f.metadata, str(f.type)
    kw: dict[str, Any] = {}
    if f.name == "filter_size":
        kw["type"] = _filter_size
    elif kind in ("bool", "bool | None"):
        kw["action"] = argparse.BooleanOptionalAction
    elif kind == "float | None":
        kw["type"] = _float_or_none
    elif kind.startswith("dict"):
        kw["type"] = _json_object
    elif kind.startswith("tuple[float"):
        kw.update(type=float, nargs="+")
    elif kind.startswith("tuple[int"):
        kw.update(type=_int_at_least(meta.get("min", 0), optional=False), nargs="+")
    elif kind.startswith("tuple[str"):
        kw.update(type=str, nargs="+")
    elif kind.startswith("int"):
        kw["type"] = _int_at_least(meta.get("min", 0), optional="None" in kind)
    elif kind.startswith("float"):
        kw["type"] = float
    elif "choices" in meta:
        kw.update(type=str, choices=meta["choices"])
    else:
        kw["type"] = str
    if "metavar" in meta:
        kw["metavar"] = meta["metavar"]
    elif kw.get("type") is not str and "action" not in kw and "choices" not in kw:
        kw["metavar"] = "X" if kind.startswith("float") else "N"
    return kw


def add_config_arguments(parser: argparse.ArgumentParser, cls: type,
                         groups: dict[str, Any] | None = None) -> None:
    """One flag per field of the dataclass ``cls`` on ``parser`` (or on ``groups[metadata["group"]]``).

    Flags that are not given stay out of the namespace (``default=argparse.SUPPRESS``).

    Examples:
        >>> from antialias.eval.config import StabilityConfig
        >>> p = argparse.ArgumentParser()
        >>> add_config_arguments(p, StabilityConfig)
        >>> vars(p.parse_args(["--max-shift", "3", "--crop-size", "none"]))
        {'max_shift': 3, 'crop_size': None}
    """
    helps = field_help(cls)
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        text = helps.get(f.name, "")
        kw = _argument(f)
        if f.metadata.get("required"):  # checked after --config is read (see run_from_args)
            text = f"{text} (required, as a flag or in --config)"
        elif "(default" not in text:  # a line that states its own (data-dependent) default keeps it
            shown = "none" if default is None else (" ".join(map(str, default)) if isinstance(default, tuple)
                                                    else json.dumps(default) if isinstance(default, dict) else default)
            text = f"{text} (default: {shown})"
        target = groups[f.metadata["group"]] if groups is not None and "group" in f.metadata else parser
        target.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, help=text, **kw)


def _read_config_file(path: str) -> dict[str, Any]:
    """The table of a JSON (``.json``) or TOML (``.toml``) config file.

    Raises:
        ValueError: the file is missing, unparsable or not a table.
    """
    p = Path(path)
    where = "antialias eval"
    if p.suffix.lower() not in (".json", ".toml") or not p.is_file():
        raise ValueError(f"`{where}`: `--config` must be an existing .json or .toml file, got {str(p)!r}.")
    text = p.read_text(encoding="utf-8")
    try:
        values = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors
        raise ValueError(
            f"`{where}`: `--config` must hold valid {p.suffix[1:].upper()}, got {str(p)!r}: {exc}"
        ) from None
    if not isinstance(values, dict):
        raise ValueError(
            f"`{where}`: `--config` must hold a table of options, got {type(values).__name__} in {str(p)!r}."
        )
    return values


def add_eval_parser(subparsers: Any, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """The ``eval`` command and one sub-command per metric, each calling ``handler(args)``."""
    p = subparsers.add_parser(
        "eval", help="measure shift-invariance: consistency, stability, equivariance, corruption, perturbation",
        description="Evaluate a model's shift-invariance. Writes a results JSON (configuration, seed, versions, "
        "model identity, data, every proportion with its 95% Wilson interval), plus figures and arrays. "
        "Runs sharded under `torchrun --nproc_per_node=N` with the same results as one process.",
    )
    metrics = p.add_subparsers(title="metrics", dest="metric", metavar="METRIC", required=True)
    for name, cls in METRIC_CONFIGS.items():
        sub = metrics.add_parser(name, help=_HELP[name], description=_DESCRIPTION[name])
        sub.add_argument("--config", metavar="FILE", default=None, dest="config_file",
                         help="JSON or TOML file of defaults (keys are the option names below, with underscores); "
                         "flags override it")
        add_config_arguments(sub, cls)
        groups = {key: sub.add_argument_group(title) for key, title in _GROUPS.items()}
        add_config_arguments(sub, EvalOptions, groups)
        sub.set_defaults(handler=handler, eval_parser=sub)
    return p


def configs_from_args(args: argparse.Namespace) -> tuple[EvalOptions, Any]:
    """``(options, metric config)`` from the given flags; data-dependent defaults filled by ``for_data``.

    Raises:
        ValueError, TypeError: a value the configs refuse.
    """
    cls = METRIC_CONFIGS[args.metric]
    option_names = [f.name for f in dataclasses.fields(EvalOptions)]
    metric_names = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}
    if getattr(args, "config_file", None):
        for key, value in _read_config_file(args.config_file).items():
            name = str(key).replace("-", "_")
            if name not in option_names + metric_names:
                close = difflib.get_close_matches(name, option_names + metric_names, n=1)
                fix = f" Did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"`{args.config_file}`: `{key}` must be an option of `antialias eval {args.metric}`, "
                                 f"got unknown key {key!r}.{fix}")
            values[name] = value
    values.update({k: v for k, v in vars(args).items() if k in option_names or k in metric_names})
    options = EvalOptions.from_dict({k: v for k, v in values.items() if k in option_names})
    key = "imagenet:" if options.data_preset == "imagenet" else options.data  # the paper's protocol on any folder
    return options, cls.for_data(key, **{k: v for k, v in values.items() if k in metric_names})


# ------------------------------------------------------------------------------ run


def run_from_args(args: argparse.Namespace, *, figure_writer: FigureWriter | None = None) -> int:
    """Runs ``antialias eval METRIC`` for parsed arguments; returns the exit code.

    Returns:
        0 on success, 1 when the evaluation failed (one line on stderr), 2 for bad arguments.
    """
    prog = f"antialias eval {args.metric}"
    try:
        options, config = configs_from_args(args)
    except (ValueError, TypeError) as exc:
        args.eval_parser.error(str(exc))  # exits 2 with the usage
    if options.out is None:
        args.eval_parser.error("the following arguments are required: --out")
    if options.model is None and options.checkpoint is None:
        print(f"usage: {prog} --model SPEC | --checkpoint PATH [options] --out FILE.json", file=sys.stderr)
        print(f"{prog}: error: one of --model or --checkpoint is required", file=sys.stderr)
        return 2
    png = Path(str(options.out)).with_suffix(".png") if figure_writer and args.metric in FIGURE_METRICS else None
    common = {
        f.name: getattr(options, f.name) for f in dataclasses.fields(EvalOptions) if f.name not in ("model", "data")
    }
    command = ["antialias", *args.argv] if getattr(args, "argv", None) is not None else None
    written: list[Path] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = lambda message, *rest, **kw: print(f"{prog}: warning: {message}", file=sys.stderr)
            if png is not None and _is_main():
                check_outputs([png], overwrite=options.overwrite)  # fail before the work, not after
            record = _RUNNERS[args.metric](options.model, options.data, config=config, command=command, **common)
            if png is not None and figure_writer is not None and _is_main():
                written.append(figure_writer(record, png, options.overwrite))
    except (ValueError, TypeError, OSError, RuntimeError, ImportError) as exc:
        if getattr(args, "debug", False):
            raise  # antialias --debug: the top-level handler shows the traceback
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    finally:
        if dist.is_available() and dist.is_initialized():  # started by the run under torchrun
            dist.destroy_process_group()
    if _is_main():
        print(f"{args.metric}: {_summary(args.metric, record)}", flush=True)
        for path in [*record["files"].values(), *written]:
            print(f"wrote {path}", flush=True)
    return 0


def _summary(metric: str, record: dict[str, Any]) -> str:
    res = record["results"]
    if metric == "consistency":
        return ", ".join(f"{k} {_fmt(v)}" for k, v in res.items())
    if metric == "stability":
        return (f"accuracy {_fmt(res['accuracy'][0])} at shift 0, {_fmt(res['accuracy'][-1])} at "
                f"{res['shifts'][-1]}; unchanged prediction {_fmt(res['unchanged_prediction'])}")
    if metric == "corruption":
        errors = res["corruption_errors"]
        return ", ".join(f"{name} error {_fmt(e)}" for name, e in errors.items()) + f"; mCE {_number(res.get('mce'))}"
    if metric == "perturbation":
        flips = res["flip_probability"]
        return (
            ", ".join(f"{name} flip probability {_fmt(e)}" for name, e in flips.items())
            + f"; mFR {_number(res.get('mfr'))}"
        )
    if metric == "worst-case":
        worst = ", ".join(f"{f} {_fmt(p)}" for f, p in res["worst_case"].items())
        mac = ", ".join(f"{f} {p['value']:.4f} [{p['low']:.4f}, {p['high']:.4f}]" for f, p in res["mac"].items())
        return (f"worst-case consistency {worst}; MAC {mac}; k-way "
                f"{_fmt(res['k_way'])}; random sub-pixel {_fmt(res['random_subpixel'])}")
    means = res["means"]
    return f"{len(means)} layers, mean {res['distance']} distance {sum(means.values()) / max(1, len(means)):.4f}"


def _number(estimate: dict[str, Any] | None) -> str:
    return "n/a" if not estimate else f"{estimate['value']:.2f} [{estimate['low']:.2f}, {estimate['high']:.2f}]"


def _fmt(p: dict[str, Any]) -> str:
    return f"{100 * p['value']:.2f}% [{100 * p['low']:.2f}, {100 * p['high']:.2f}] (n={p.get('total', p.get('n'))})"


def _is_main() -> bool:
    return os.environ.get("RANK", "0") == "0"
