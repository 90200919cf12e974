"""The training runs of a reproduction: names, configs, train-or-reuse, loading, and progress display."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn
from tqdm.auto import tqdm

from antialias.checkpoint import load_checkpoint
from antialias.reproduce._data import resolve_data_spec
from antialias.reproduce.config import ReproduceConfig
from antialias.runs.model import build_model
from antialias.train import TrainConfig, config_differences, train

__all__ = ["PlannedRun", "Progress", "load_model", "plan_runs", "run_name", "torch_threads", "train_config",
           "train_or_reuse"]

# ----------------------------------------------------------------------------------- progress


class Progress:
    """One display over the whole pipeline: a tqdm bar on a terminal, plain lines otherwise."""

    def __init__(self, total: int, stream: TextIO, mode: str) -> None:
        self.stream, self.total, self.done, self.t0 = stream, total, 0, time.perf_counter()
        if mode == "auto":
            mode = "bar" if getattr(stream, "isatty", lambda: False)() else "log"
        self.mode = mode
        self.bar = None
        if mode == "bar":
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


def run_name(filter_size: str | None, augment: bool, replicate: int = 0) -> str:
    """Run folder name, e.g. ``"baseline-noaug"``, ``"bin5-aug"``, or ``"bin5-aug-r2"`` for the third training.

    Examples:
        >>> run_name(None, False), run_name("bin5", True), run_name("bin5", True, 2)
        ('baseline-noaug', 'bin5-aug', 'bin5-aug-r2')
    """
    name = f"{filter_size or 'baseline'}-{'aug' if augment else 'noaug'}"
    return f"{name}-r{replicate}" if replicate else name


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One training of the reproduction: its folder name, filter (None: baseline), augmentation and seed.

    ``replicate`` counts the trainings of the same configuration (0, 1, ...); the seed is the
    configuration's seed plus ``replicate``.
    """

    name: str
    filter_size: str | None
    augment: bool
    replicate: int
    seed: int


def plan_runs(cfg: ReproduceConfig) -> list[PlannedRun]:
    """Every training of ``cfg`` in order: first trainings of all configurations, then the extra seeds.

    Examples:
        >>> from antialias.reproduce.config import ReproduceConfig
        >>> cfg = ReproduceConfig(filters=("rect2", "bin5"), augment=(False,), seeds=2, seeded=("baseline",))
        >>> [r.name for r in plan_runs(cfg)]
        ['baseline-noaug', 'rect2-noaug', 'bin5-noaug', 'baseline-noaug-r1']
    """
    plan = []
    for replicate in range(cfg.seeds):
        for aug in cfg.augment:
            for f in (None, *cfg.filters):
                if replicate == 0 or (f or "baseline") in cfg.seeded:
                    plan.append(PlannedRun(run_name(f, aug, replicate), f, aug, replicate, cfg.seed + replicate))
    return plan


def _model_kwargs(cfg: ReproduceConfig) -> dict[str, Any]:
    """The builder's keyword arguments: the width multiplier, left out at 1 (the ImageNet builders take none)."""
    return {} if cfg.width == 1 else {"width": cfg.width}


def train_config(cfg: ReproduceConfig, run: PlannedRun, out: Path, progress: str) -> TrainConfig:
    """The trainer's configuration of one run of the reproduction."""
    data, root = resolve_data_spec(cfg.data)
    return TrainConfig(
        model=cfg.model, filter_size=run.filter_size, model_kwargs=_model_kwargs(cfg), data=data, data_root=root,
        train_subset=cfg.train_subset, val_subset=cfg.val_images, epochs=cfg.epochs,
        batch_size=cfg.batch_size, lr=cfg.lr, warmup_epochs=cfg.warmup_epochs, weight_decay=cfg.weight_decay,
        augment=run.augment, seed=run.seed, device=cfg.device, out=str(out), save_every_steps=cfg.save_every_steps,
        keep_checkpoints=1, progress=progress, log_every_steps=10_000,
    )


def train_or_reuse(tcfg: TrainConfig, stream: TextIO) -> tuple[str, dict[str, Any]]:
    """Trains, resumes or reuses the run in ``tcfg.out``; returns (what happened, last epoch's metrics)."""
    if tcfg.out is None:
        raise ValueError("`train_or_reuse`: `tcfg.out` must be the run's folder, got None.")
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


def load_model(cfg: ReproduceConfig, run: Path, in_channels: int, num_classes: int) -> tuple[nn.Module, str]:
    """The trained model of ``run`` in evaluation mode, and the SHA-256 of its weights (the cache key)."""
    state, meta = load_checkpoint(run / "model.safetensors")
    filter_size = meta.get("filter_size")
    model = build_model(cfg.model, filter_size, in_channels=in_channels, num_classes=num_classes,
                        model_kwargs=_model_kwargs(cfg), where="reproduce")
    model.load_state_dict(state)
    return model.eval(), meta["tensors_sha256"]


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """PyTorch's CPU thread count set to ``threads`` (None: unchanged) inside the block, restored after."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
