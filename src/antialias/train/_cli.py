"""``antialias train``: flags generated from :class:`TrainConfig`'s fields.

Precedence, lowest first: the field defaults, ``--config FILE`` (JSON or TOML), the flags given. With
``--resume`` the run's own config.json takes the place of the defaults, so ``antialias train --resume
--out DIR`` needs no other flag; a flag that changes a run-defining field is refused unless
``--force-resume``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from antialias._docs import field_help
from antialias._factory import check_recorded_factory
from antialias.data import DATASET_NAMES
from antialias.runs.model import parse_filter_size
from antialias.train.config import _AMP, _DEVICES, _PROGRESS, _SCHEDULES, TrainConfig, load_config_file
from antialias.train.loop import train

__all__ = ["add_arguments", "build_parser", "config_from_args", "main", "run_from_args"]

_CHOICES = {"schedule": _SCHEDULES, "amp": _AMP, "device": _DEVICES, "progress": _PROGRESS}

DESCRIPTION = (
    "Train a baseline or anti-aliased model (SGD, cosine/step schedule with warm-up). Writes "
    "config.json, metrics.jsonl, checkpoints/ and model.safetensors into --out; resumes exactly with "
    "--resume; runs under `torchrun --nproc_per_node=N` with DistributedDataParallel."
)


def _optional(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.strip().lower() in ("none", "null") else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _filter_size(text: str) -> int | str | None:
    """argparse type of ``--filter-size``: a tap count, a filter name or none; "-3" is refused (exit 2)."""
    try:
        return parse_filter_size(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"must be a JSON object such as '{{\"width\": 0.5}}', got {text!r} ({exc})"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"width\": 0.5}}', got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds one flag per :class:`TrainConfig` field, plus ``--config FILE``, to ``parser``.

    Flags that are not given stay out of the parsed namespace, so a config file's values are not
    overridden by defaults.

    Examples:
        >>> p = add_arguments(argparse.ArgumentParser())
        >>> ns = p.parse_args(["--epochs", "3", "--filter-size", "none", "--no-augment"])
        >>> ns.epochs, ns.filter_size, ns.augment, hasattr(ns, "lr")
        (3, None, False, False)
    """
    helps = field_help(TrainConfig)
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="JSON or TOML file of defaults (keys are the field names below); flags override it")
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        text = helps.get(f.name, "")
        shown = "none" if default is None else (json.dumps(default) if isinstance(default, (dict, tuple)) else default)
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": f"{text} (default: {shown})"}
        kind = str(f.type)
        if kind == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
            continue
        if f.name == "filter_size":
            kw.update(type=_filter_size, metavar="N|NAME|none")
        elif f.name == "model_kwargs":
            kw.update(type=_json_object, metavar="JSON")
        elif f.name == "milestones":
            kw.update(type=int, nargs="*", metavar="EPOCH")
        elif f.name in _CHOICES:
            kw.update(type=str, choices=_CHOICES[f.name])
        elif kind.startswith("int"):
            kw.update(type=_optional(int) if "None" in kind else int, metavar="N")
        elif kind.startswith("float"):
            kw.update(type=float, metavar="X")
        else:
            kw.update(type=_optional(str) if "None" in kind else str, metavar=f.name.split("_")[-1].upper())
        parser.add_argument(flag, **kw)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Merges defaults (or the resumed run's config), the config file and the given flags."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    values: dict[str, Any] = {}
    where = "antialias train"
    if getattr(args, "config", None):
        values.update(load_config_file(args.config))
        where = args.config
        TrainConfig.from_dict(values, where=where)  # unknown keys / bad values named with the file
    values.update(given)
    if values.get("resume") and values.get("out"):
        from antialias.runs.rundir import RunDir

        run = RunDir(values["out"])
        record = run.read_config()
        if record is not None:
            stored = {k: v for k, v in record.get("config", {}).items() if k in names}
            # Trust boundary: the run folder may name a zoo model or data set, never code to run.
            for name, flag, reserved in (
                ("model", "--model", ()),
                ("data", "--data", (*DATASET_NAMES, "fashion-mnist")),
            ):
                if name not in values:
                    check_recorded_factory(stored.get(name), where="antialias train", param=name, flag=flag,
                                           source=str(run.path / "config.json"), reserved=reserved)
            values = {**stored, **values}
    return TrainConfig.from_dict(values, where=where)


def run_from_args(args: argparse.Namespace) -> int:
    """Runs ``antialias train`` for parsed arguments; returns the exit code.

    Returns:
        0 when the run finished, 130 when Ctrl-C stopped it (a checkpoint was saved), 1 on an error
        (message on stderr).
    """
    try:
        cfg = config_from_args(args)
        result = train(cfg)
    except (ValueError, TypeError, OSError, FloatingPointError) as exc:  # FloatingPointError: training diverged
        if getattr(args, "debug", False):
            raise  # antialias --debug: the top-level handler shows the traceback
        print(f"antialias train: error: {exc}", file=sys.stderr)
        return 1
    if result.interrupted:
        return 130
    if result.weights is not None:
        print(f"wrote {result.weights}", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="antialias train", description=DESCRIPTION)
    return add_arguments(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """``antialias train`` as a function (also ``python -m antialias.train``).

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit code (see :func:`run_from_args`).
    """
    return run_from_args(build_parser().parse_args(argv))
