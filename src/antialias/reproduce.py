"""``antialias reproduce``: train, evaluate and report the paper's findings in one command.

Zhang, *Making Convolutional Networks Shift-Invariant Again* (ICML 2019), tested on a small scale:

1. **Train** the paper's small-image model (``vgg13_bn_cifar``, narrowed by ``width`` to fit a CPU)
   as a baseline and anti-aliased with rect2, tri3, tri4 and bin5, each with and without shift
   augmentation (random crop with 4 px of zero padding and a horizontal flip: the trainer's
   ``augment``), same seed and schedule: 10 runs, each in ``OUT/runs/<filter>-<aug|noaug>``. A
   finished run is reused; an unfinished one resumes from its last checkpoint (the trainer's exact
   resume), so killing the command and running it again loses nothing.
2. **Evaluate** every model on the same test images with the same random offsets: clean accuracy;
   consistency (crop and circular protocols) with Wilson 95% intervals; diagonal stability curves;
   feature-distance maps of the baseline and the bin5 model; corruption mCE and perturbation mFR
   (normalised by the baseline, and unnormalised) when :mod:`antialias.eval.corruption` /
   :mod:`antialias.eval.perturbation` are available. Results are cached per run and part.
3. **Report**: ``OUT/results.json``, ``OUT/report.html`` (self-contained), PNG figures in
   ``OUT/figures/``, and one verdict per claim of the paper (:mod:`antialias.report.verdicts`).

Python::

    from antialias.reproduce import ReproduceConfig, reproduce
    results = reproduce(ReproduceConfig.from_preset("quick", out="reproduction"))

Deviations from the paper, all deliberate and stated in the report: a narrow VGG13-bn, a subset of
the training set and a few epochs (CPU budgets), Fashion-MNIST padded to 32x32 by default instead of
CIFAR-10, and our own small-image consistency protocols (the paper's CIFAR protocol was not published).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from antialias._reproduce_eval import EvalSettings

__all__ = ["FILTERS", "PRESETS", "ReproduceConfig", "add_arguments", "reproduce", "run_from_args"]

#: Anti-aliasing filters trained beside the baseline, weakest to strongest.
FILTERS: tuple[str, ...] = ("rect2", "tri3", "tri4", "bin5")


@dataclasses.dataclass(frozen=True)
class ReproduceConfig:
    """Everything that defines a reproduction (recorded in ``results.json``).

    Args:
        data: ``"fashion-mnist"`` (padded to 32x32), ``"fashion-mnist:PATH"``, ``"cifar10:PATH"``,
            ``"imagenet:PATH"`` or a ``module:function`` data factory (see :mod:`antialias.train`).
        out: Output folder (runs, figures, results.json, report.html).
        preset: Name of the preset the sizes came from (informational).
        model: Zoo name of the trained model.
        width: Channel multiplier of the model.
        filters: Anti-aliasing filters trained beside the baseline.
        augment: Augmentation settings to train (True: random crop + flip).
        train_subset: First N training images (None: all).
        epochs: Epochs per run.
        batch_size: Batch size.
        lr: Peak learning rate (cosine schedule, ``warmup_epochs`` of linear warm-up).
        warmup_epochs: Warm-up length.
        weight_decay: SGD weight decay.
        seed: Seed of every run (the same for all: never tuned).
        save_every_steps: Checkpoint interval inside an epoch (bounds the work lost to a kill).
        eval: What is measured (:class:`EvalSettings`).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        threads: CPU threads of PyTorch during the run (None: leave as is). One by default: these
            models are small, and on a shared or small CPU a second thread made training 5-10x
            *slower* here (OpenMP threads spinning against other processes). Exact resume needs
            the same thread count as the interrupted run.
    """

    data: str = "fashion-mnist"
    out: str = "reproduction"
    preset: str = "default"
    model: str = "vgg13_bn_cifar"
    width: float = 0.25
    filters: tuple[str, ...] = FILTERS
    augment: tuple[bool, ...] = (False, True)
    train_subset: int | None = 10000
    epochs: int = 4
    batch_size: int = 128
    lr: float = 0.05
    warmup_epochs: float = 0.5
    weight_decay: float = 5e-4
    seed: int = 0
    save_every_steps: int = 20
    eval: EvalSettings = EvalSettings()
    device: str = "cpu"
    threads: int | None = 1

    def __post_init__(self) -> None:
        from antialias.filters import filter_row

        object.__setattr__(self, "filters", tuple(self.filters))
        object.__setattr__(self, "augment", tuple(bool(a) for a in self.augment))
        if isinstance(self.eval, dict):
            object.__setattr__(self, "eval", EvalSettings(**self.eval))
        w = "ReproduceConfig"
        if not isinstance(self.data, str) or not self.data:
            raise ValueError(f"`{w}`: `data` must be a data set spec such as 'fashion-mnist' or 'cifar10:PATH', got {self.data!r}.")
        for f in self.filters:
            filter_row(f, where=w)
        if "bin5" not in self.filters:
            raise ValueError(f"`{w}`: `filters` must include 'bin5' (the heatmaps and verdicts compare it with the "
                             f"baseline), got {self.filters!r}.")
        if not self.augment or len(set(self.augment)) != len(self.augment):
            raise ValueError(f"`{w}`: `augment` must list False and/or True once each, got {self.augment!r}.")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{w}`: `{name}` must be a positive int, got {value!r}.")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"`{w}`: `threads` must be a positive int or None, got {self.threads!r}.")
        if not (isinstance(self.width, (int, float)) and self.width > 0):
            raise ValueError(f"`{w}`: `width` must be a positive number, got {self.width!r}.")

    @classmethod
    def from_preset(cls, name: str, **changes: Any) -> ReproduceConfig:
        """The named preset (``"default"``, ``"quick"``, ``"tiny"``) with ``changes`` applied.

        Examples:
            >>> ReproduceConfig.from_preset("quick").train_subset
            2000
        """
        if name not in PRESETS:
            raise ValueError(f"`ReproduceConfig.from_preset`: `name` must be one of {sorted(PRESETS)}, got {name!r}.")
        values = dict(PRESETS[name])
        ev = values.pop("eval", {})
        if "eval" in changes:
            ev = {**ev, **changes.pop("eval")}
        return cls(preset=name, **{**values, **changes}, eval=EvalSettings(**ev))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["filters"], d["augment"] = list(self.filters), list(self.augment)
        return d

    def replace(self, **changes: Any) -> ReproduceConfig:
        return dataclasses.replace(self, **changes)


#: Sizes of each preset, chosen to fit the budgets on a 2-core CPU (see the README's table).
PRESETS: dict[str, dict[str, Any]] = {
    "default": dict(width=0.125, train_subset=8000, epochs=3, batch_size=64, lr=0.05,
                    eval=dict(num_images=2000, stability_images=200, stability_max_shift=8,
                              equivariance_images=2, equivariance_step=1, corruption_images=150,
                              perturbation_images=50)),
    "quick": dict(width=0.125, train_subset=2000, epochs=2, batch_size=50, lr=0.05,
                  eval=dict(num_images=1000, stability_images=100, stability_max_shift=8,
                            equivariance_images=2, equivariance_step=3, corruption_images=40,
                            perturbation_images=20)),
    # For the test suite: seconds, not meaningful.
    "tiny": dict(width=0.0625, train_subset=128, epochs=1, batch_size=64, lr=0.05, save_every_steps=1,
                 eval=dict(num_images=64, stability_images=8, stability_max_shift=3, equivariance_images=1,
                           equivariance_step=15, corruption_images=2, perturbation_images=2, batch_size=64)),
}


# ----------------------------------------------------------------------------------- progress


class _Progress:
    """One display over the whole pipeline: a tqdm bar on a terminal, plain lines otherwise."""

    def __init__(self, total: int, stream: TextIO, mode: str) -> None:
        self.stream, self.total, self.done, self.t0 = stream, total, 0, time.perf_counter()
        if mode == "auto":
            mode = "bar" if getattr(stream, "isatty", lambda: False)() else "log"
        self.mode = mode
        self.bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="reproduce", file=stream, dynamic_ncols=True, unit="task")

    def start(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text)
        elif self.mode == "log":
            elapsed = time.perf_counter() - self.t0
            print(f"[{self.done}/{self.total} {elapsed:6.0f}s] {text}", file=self.stream, flush=True)

    def advance(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        elif self.mode != "none":
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------------------- pipeline


def run_name(filter_size: str | None, augment: bool) -> str:
    """Run folder name, e.g. ``"baseline-noaug"`` or ``"bin5-aug"``.

    Examples:
        >>> run_name(None, False), run_name("bin5", True)
        ('baseline-noaug', 'bin5-aug')
    """
    return f"{filter_size or 'baseline'}-{'aug' if augment else 'noaug'}"


def _train_config(cfg: ReproduceConfig, filter_size: str | None, augment: bool, out: Path, progress: str):
    from antialias._reproduce_data import resolve_data_spec
    from antialias.train import TrainConfig

    data, root = resolve_data_spec(cfg.data)
    return TrainConfig(
        model=cfg.model, filter_size=filter_size, model_kwargs={"width": cfg.width}, data=data, data_root=root,
        train_subset=cfg.train_subset, val_subset=cfg.eval.num_images, epochs=cfg.epochs,
        batch_size=cfg.batch_size, lr=cfg.lr, warmup_epochs=cfg.warmup_epochs, weight_decay=cfg.weight_decay,
        augment=augment, seed=cfg.seed, device=cfg.device, out=str(out), save_every_steps=cfg.save_every_steps,
        keep_checkpoints=1, progress=progress, log_every_steps=10_000,
    )


def _train_or_reuse(tcfg, stream: TextIO) -> tuple[str, dict[str, Any]]:
    """Trains, resumes or reuses the run in ``tcfg.out``; returns (what happened, last epoch's metrics)."""
    from antialias.train import config_differences, train

    run = Path(tcfg.out)
    record_path = run / "config.json"
    if record_path.is_file():
        stored = json.loads(record_path.read_text(encoding="utf-8")).get("config", {})
        diffs = config_differences(stored, tcfg.to_dict())
        if diffs:
            raise ValueError(
                f"`reproduce`: `out` must hold runs of this configuration, got {str(run)!r} trained with other "
                f"settings ({'; '.join(diffs)}). Use another --out, or delete that folder to retrain."
            )
        if (run / "model.safetensors").is_file() and (run / "model.json").is_file():
            metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
            return "reused", (metrics[-1] if metrics else {})
        result = train(tcfg.replace(resume=True), stream=stream)
        status = "resumed"
    else:
        result = train(tcfg.replace(overwrite=run.exists()), stream=stream)
        status = "trained"
    if result.interrupted:
        raise KeyboardInterrupt
    return status, (result.metrics[-1] if result.metrics else {})


def _load_model(cfg: ReproduceConfig, run: Path, in_channels: int, num_classes: int):
    from antialias.checkpoint import load_checkpoint
    from antialias.models import get_model

    state, meta = load_checkpoint(run / "model.safetensors")
    filter_size = meta.get("filter_size")
    model = get_model(cfg.model, filter_size=filter_size, in_channels=in_channels, num_classes=num_classes,
                      width=cfg.width)
    model.load_state_dict(state)
    return model.eval(), meta["tensors_sha256"]


def reproduce(config: ReproduceConfig, *, stream: TextIO | None = None, progress: str = "auto") -> dict[str, Any]:
    """Runs the whole pipeline (see the module docstring) and returns the results written to ``results.json``.

    Args:
        config: What to train and measure, and where to write.
        stream: Where progress goes (default: stderr).
        progress: ``"auto"`` (a bar on a terminal, lines otherwise), ``"bar"``, ``"log"`` or ``"none"``.

    Raises:
        ValueError: Bad configuration, or an output folder holding runs of other settings.
        antialias.data.DatasetNotFoundError: The data set is missing (the message says how to get it).
        KeyboardInterrupt: Ctrl-C; the running training saved a checkpoint first: run again to continue.
    """
    from antialias._reproduce_pipeline import run_pipeline

    if not isinstance(config, ReproduceConfig):
        raise TypeError(f"`reproduce`: `config` must be a ReproduceConfig, got {type(config).__name__}.")
    stream = sys.stderr if stream is None else stream
    import torch

    before = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return run_pipeline(config, stream=stream, progress=progress)
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the options of ``antialias reproduce`` on ``parser``."""
    parser.add_argument("--data", default="fashion-mnist", metavar="SPEC",
                        help="fashion-mnist (default; padded to 32x32), fashion-mnist:PATH, cifar10:PATH, imagenet:PATH, "
                             "or a module:function data factory")
    parser.add_argument("--out", default="reproduction", metavar="DIR",
                        help="output folder: runs/, figures/, results.json, report.html (default: %(default)s)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="preset", const="quick",
                      help="smaller training subset and evaluation (about 1.5 minutes on an idle 2-core CPU, "
                           "under 4 when it is shared); the default takes about 9 and under 20")
    size.add_argument("--tiny", action="store_const", dest="preset", const="tiny", help=argparse.SUPPRESS)
    parser.set_defaults(preset="default")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                        help="where to train and evaluate (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="PyTorch CPU threads (default: %(default)s, fastest for these small models on a shared CPU)")
    parser.add_argument("--download", action="store_true",
                        help="download Fashion-MNIST / CIFAR into the cache if missing (hash-checked)")
    parser.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                        help="a bar on a terminal, plain lines otherwise (default: %(default)s)")


def run_from_args(args: argparse.Namespace) -> int:
    """Runs ``antialias reproduce`` from parsed arguments; returns the exit code (130 after Ctrl-C)."""
    from antialias.data import DatasetNotFoundError

    try:
        cfg = ReproduceConfig.from_preset(args.preset, data=args.data, out=args.out, device=args.device,
                                     threads=args.threads)
        if args.download:
            _download(cfg.data)
        results = reproduce(cfg, progress=args.progress)
    except KeyboardInterrupt:
        print("antialias reproduce: interrupted; the finished work is kept. Run the same command again to "
              "continue where it stopped.", file=sys.stderr)
        return 130
    except (ValueError, TypeError, DatasetNotFoundError, OSError) as exc:
        print(f"antialias reproduce: error: {exc}", file=sys.stderr)
        return 1
    print(f"report: {Path(cfg.out) / 'report.html'}")
    for claim in results["claims"]:
        print(f"- {claim['sentence']}")
    return 0


def _download(data: str) -> None:
    from antialias.data import load_dataset

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
