"""The training configuration: one frozen dataclass, a config file loader and a diff for resume.

The command line (:mod:`antialias.train._cli`) is generated from :class:`TrainConfig`'s fields, so a
field added here is a flag there. A config file (JSON or TOML) sets defaults and flags override; an
unknown key in a file is an error, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from antialias.filters import filter_row

__all__ = ["RESUMABLE_FIELDS", "TrainConfig", "config_differences", "load_config_file"]

_SCHEDULES = ("cosine", "step")
_AMP = ("none", "bf16", "fp16")
_DEVICES = ("auto", "cpu", "cuda")
_PROGRESS = ("auto", "bar", "log", "none")

# Fields that may change between a run and its resumption without changing what is computed
# (where files go, how progress is shown, how often checkpoints are written, how many loader
# workers there are: the data stream does not depend on them, see loop.py). Any other difference
# is refused unless ``force_resume`` is set.
RESUMABLE_FIELDS = frozenset(
    {
        "out",
        "resume",
        "overwrite",
        "force_resume",
        "save_every_steps",
        "keep_checkpoints",
        "tensorboard",
        "progress",
        "log_every_steps",
        "num_workers",
        "data_root",
        "download",
    }
)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run, and where it writes.

    Each field is a command-line flag of ``antialias train`` (``batch_size`` -> ``--batch-size``); the
    help text of the flag is the field's line below.

    Args:
        model: Zoo name (see ``antialias.models.list_models()``), or a user's factory as
            ``package.module:function`` or ``path/to/file.py:function``.
        filter_size: Blur filter of the anti-aliased model: an int (1-7), a name ("tri4"), or None
            (the baseline, ``--filter-size none``).
        model_kwargs: Extra keyword arguments for the model builder, e.g. ``{"width": 0.5}``
            (a JSON object on the command line).
        data: Data set spec for ``antialias.data.load_dataset`` ("fashion-mnist", "mnist", "cifar10",
            "cifar100", "imagenet:PATH", "imagefolder:PATH") or a user's
            ``module:function(split=..., root=...)``.
        data_root: Folder the data set is read from (None: the data module's default places).
        download: Allow downloading the data set into the cache.
        train_subset: Train on the first N training images only (quick runs).
        val_subset: Evaluate on the first N test images only.
        epochs: Number of passes over the training set.
        max_steps: Stop after this many optimiser steps in total (quick runs); the schedule still
            spans ``epochs``.
        batch_size: Global batch size: under torchrun each of the N processes gets batch_size / N.
        lr: Peak learning rate (after warm-up).
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: L2 weight decay applied by SGD.
        schedule: "cosine" (to zero at the end) or "step" (multiply by ``gamma`` at ``milestones``).
        milestones: Epochs at which the step schedule multiplies the rate by ``gamma``.
        gamma: Factor of the step schedule.
        warmup_epochs: Linear warm-up from 0 to ``lr`` over this many epochs (fractions allowed).
        label_smoothing: Label smoothing of the cross-entropy loss.
        lps_tau_start: Gumbel-softmax temperature of LPS layers (``model_kwargs={"method": "lps"}``) in
            the first epoch, annealed exponentially to ``lps_tau_end`` in the last (no effect without LPS).
        lps_tau_end: LPS temperature in the last epoch.
        augment: Random crop (padding image_size // 8) and horizontal flip on training batches.
        normalize: Standardise inputs with the training set's per-channel mean and std.
        amp: Mixed precision: "none", "bf16" or "fp16" (fp16 needs CUDA).
        channels_last: Use the channels_last memory format (faster convolutions on GPU).
        device: "auto" (CUDA when present), "cpu" or "cuda".
        seed: Seed of weights, data order, augmentation and dropout.
        deterministic: Use deterministic algorithms (bit-identical runs on CPU).
        sync_batchnorm: Convert BatchNorm to SyncBatchNorm under torchrun (CUDA only).
        finetune_from: Baseline weights (.safetensors or .pt state_dict) to transfer into the
            anti-aliased model before training.
        num_workers: Data loader worker processes (data sets not held in memory only).
        out: Run directory (config.json, metrics.jsonl, checkpoints/, model.safetensors).
        resume: Continue the run in ``out`` from its last checkpoint.
        overwrite: Start afresh in a non-empty ``out`` (deletes its previous run files).
        force_resume: Resume even though the config differs from the run's config.json.
        save_every_steps: Also checkpoint every N optimiser steps (0: at the end of epochs only).
        keep_checkpoints: Number of most recent checkpoints kept.
        tensorboard: Write TensorBoard scalars to ``out/tensorboard`` (needs tensorboard).
        progress: "auto" (a bar on a terminal, log lines otherwise), "bar", "log" or "none".
        log_every_steps: Steps between plain log lines.

    Examples:
        >>> cfg = TrainConfig(model="resnet20_cifar", epochs=2)
        >>> cfg.batch_size, cfg.filter_size
        (128, 4)
        >>> TrainConfig.from_dict({"epochs": 3, "lr": 0.05}).epochs
        3
    """

    model: str = "resnet20_cifar"
    filter_size: int | str | None = 4
    model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    data: str = "fashion-mnist"
    data_root: str | None = None
    download: bool = False
    train_subset: int | None = None
    val_subset: int | None = None
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    lps_tau_start: float = 1.0
    lps_tau_end: float = 0.1
    augment: bool = True
    normalize: bool = True
    amp: str = "none"
    channels_last: bool = False
    device: str = "auto"
    seed: int = 0
    deterministic: bool = True
    sync_batchnorm: bool = False
    finetune_from: str | None = None
    num_workers: int = 0
    out: str | None = None
    resume: bool = False
    overwrite: bool = False
    force_resume: bool = False
    save_every_steps: int = 0
    keep_checkpoints: int = 2
    tensorboard: bool = False
    progress: str = "auto"
    log_every_steps: int = 50

    def __post_init__(self) -> None:
        # Normalise containers so configs read from JSON compare equal to ones built in Python.
        object.__setattr__(self, "milestones", tuple(self.milestones))
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        w = "TrainConfig"
        _check_type(w, "model", self.model, str)
        if not self.model:
            raise ValueError(f"`{w}`: `model` must be a zoo name or 'module:function', got {self.model!r}.")
        fs = self.filter_size
        if fs is not None and (isinstance(fs, bool) or not isinstance(fs, (int, str))):
            raise TypeError(f"`{w}`: `filter_size` must be an int, a filter name or None, got {fs!r}.")
        if isinstance(fs, int) and not 1 <= fs <= 7:
            raise ValueError(f"`{w}`: `filter_size` must be in 1..7 (or None for the baseline), got {fs!r}.")
        if isinstance(fs, str):
            filter_row(fs, where=f"`{w}`")  # "-3" or "tri9" refused now, not read as another filter later
        if not isinstance(self.model_kwargs, dict) or not all(isinstance(k, str) for k in self.model_kwargs):
            raise TypeError(f"`{w}`: `model_kwargs` must be a dict with str keys, got {self.model_kwargs!r}.")
        _check_type(w, "data", self.data, str)
        for name in ("data_root", "finetune_from", "out"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"`{w}`: `{name}` must be a path string or None, got {value!r}.")
        for name in ("download", "nesterov", "augment", "normalize", "channels_last", "deterministic",
                     "sync_batchnorm", "resume", "overwrite", "force_resume", "tensorboard"):
            _check_type(w, name, getattr(self, name), bool)
        for name, minimum in (("epochs", 1), ("batch_size", 1), ("num_workers", 0), ("save_every_steps", 0),
                              ("keep_checkpoints", 1), ("log_every_steps", 1), ("seed", 0)):
            value = getattr(self, name)
            _check_int(w, name, value)
            if value < minimum:
                raise ValueError(f"`{w}`: `{name}` must be an integer >= {minimum}, got {value!r}.")
        for name in ("train_subset", "val_subset", "max_steps"):
            value = getattr(self, name)
            if value is not None:
                _check_int(w, name, value)
                if value < 1:
                    raise ValueError(f"`{w}`: `{name}` must be a positive integer or None, got {value!r}.")
        for name, lo, hi in (("lr", 0.0, math.inf), ("momentum", 0.0, 1.0), ("weight_decay", 0.0, math.inf),
                             ("gamma", 0.0, math.inf), ("warmup_epochs", 0.0, math.inf),
                             ("label_smoothing", 0.0, 1.0), ("lps_tau_start", 1e-6, math.inf),
                             ("lps_tau_end", 1e-6, math.inf)):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not lo <= value <= hi
            ):
                span = f"[{lo}, {hi}]" if math.isfinite(hi) else f">= {lo}"
                raise ValueError(f"`{w}`: `{name}` must be a finite number {span}, got {value!r}.")
        for name, choices in (("schedule", _SCHEDULES), ("amp", _AMP), ("device", _DEVICES), ("progress", _PROGRESS)):
            value = getattr(self, name)
            if value not in choices:
                hint = difflib.get_close_matches(str(value), choices, n=1)
                fix = f" Did you mean {hint[0]!r}?" if hint else ""
                raise ValueError(f"`{w}`: `{name}` must be one of {', '.join(map(repr, choices))}, got {value!r}.{fix}")
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in self.milestones) or list(
            self.milestones
        ) != sorted(set(self.milestones)):
            raise ValueError(f"`{w}`: `milestones` must be increasing positive epoch numbers, got {self.milestones!r}.")
        if self.resume and self.overwrite:
            raise ValueError(f"`{w}`: `resume` and `overwrite` must not both be set, got resume=True, overwrite=True.")
        if self.resume and self.out is None:
            raise ValueError(f"`{w}`: `out` must be the run directory to resume, got None.")

    # ------------------------------------------------------------------ conversions
    def to_dict(self) -> dict[str, Any]:
        """Returns the config as a JSON-serialisable dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, where: str = "TrainConfig.from_dict") -> TrainConfig:
        """Builds a config from a mapping; unknown keys are an error naming the closest field.

        Args:
            values: Field names (underscores or dashes) to values.
            where: Name used in error messages (e.g. the config file's path).

        Raises:
            ValueError: On an unknown key or a bad value.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        clean: dict[str, Any] = {}
        for key, value in values.items():
            name = str(key).replace("-", "_")
            if name not in names:
                hint = difflib.get_close_matches(name, names, n=1)
                fix = f" Did you mean {hint[0]!r}?" if hint else f" Known keys: {', '.join(names)}."
                raise ValueError(f"`{where}`: `{key}` must be a TrainConfig field, got unknown key {key!r}.{fix}")
            clean[name] = value
        return cls(**clean)

    def replace(self, **changes: Any) -> TrainConfig:
        """Returns a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_type(where: str, name: str, value: Any, kind: type) -> None:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise TypeError(f"`{where}`: `{name}` must be a {kind.__name__}, got {value!r}.")


def _check_int(where: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{where}`: `{name}` must be an int, got {value!r}.")


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Reads a JSON (``.json``) or TOML (``.toml``) config file into a dict of field values.

    The keys are checked when the dict reaches :meth:`TrainConfig.from_dict`.

    Raises:
        ValueError: If the file is missing, unparsable, or not a table of keys.
    """
    p = Path(path)
    where = "load_config_file"
    if not p.is_file():
        raise ValueError(f"`{where}`: `path` must be an existing .json or .toml file, got {str(p)!r}.")
    try:
        if p.suffix.lower() == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # tomllib is new in 3.11; tomli is the same parser, packaged for older versions
                import tomli as tomllib
            values = tomllib.loads(p.read_text(encoding="utf-8"))
        elif p.suffix.lower() == ".json":
            values = json.loads(p.read_text(encoding="utf-8"))
        else:
            raise ValueError(f"`{where}`: `path` must end in .json or .toml, got {str(p)!r}.")
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors
        if str(exc).startswith(f"`{where}`"):
            raise
        raise ValueError(f"`{where}`: `path` must hold valid {p.suffix[1:].upper()}, got {str(p)!r}: {exc}") from None
    if not isinstance(values, dict):
        raise ValueError(
            f"`{where}`: `path` must hold a table of config keys, got {type(values).__name__} in {str(p)!r}."
        )
    return values


def config_differences(
    old: Mapping[str, Any], new: Mapping[str, Any], *, ignore: Collection[str] = RESUMABLE_FIELDS
) -> list[str]:
    """Lists ``field: old -> new`` for every field that differs, except those in ``ignore``.

    Examples:
        >>> a = TrainConfig(epochs=2).to_dict()
        >>> config_differences(a, TrainConfig(epochs=3, out="x").to_dict())
        ['epochs: 2 -> 3']
    """
    lines = []
    for key in sorted(set(old) | set(new)):
        if key in ignore:
            continue
        a, b = old.get(key, "<missing>"), new.get(key, "<missing>")
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            a, b = list(a), list(b)
        if a != b:
            lines.append(f"{key}: {a!r} -> {b!r}")
    return lines
