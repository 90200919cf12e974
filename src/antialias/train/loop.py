"""The training loop: :func:`train` runs one :class:`~antialias.train.config.TrainConfig` to the end.

Exact resume. Everything that decides the next step is either a pure function of the position
(data order and augmentation, see ``_data.py``) or saved in the checkpoint (weights, optimiser
momentum, scheduler, AMP scaler, torch/CUDA/numpy/python RNG of every rank, the position, the
epoch's running sums and the metrics history). With a fixed seed on CPU a run killed at any moment
and resumed therefore ends with bit-identical weights; ``tests/train/test_resume.py`` checks that
with ``kill -9``. (Bit-identity also needs the same number of CPU threads, ``torch.get_num_threads()``,
in both runs: the summation order of CPU kernels depends on it. config.json records it.)

Distributed. Under ``torchrun`` each process takes its slice of every global batch and the model is
wrapped in DistributedDataParallel. Each rank's loss is ``sum(losses) * world_size / batch_size``,
so DDP's gradient average is the mean over the global batch even when the slices differ by one
image: N processes compute the same update as one (up to float summation order; BatchNorm sees
per-rank batches unless SyncBatchNorm is used).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sized
from pathlib import Path
from types import FrameType
from typing import Any, TextIO, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import Dataset

from antialias._version import __version__
from antialias.data.seeding import derived_seed
from antialias.data.spec import load_split
from antialias.downsample import lps_temperature, set_lps_temperature
from antialias.models.transfer import transfer_baseline
from antialias.runs import distributed as D
from antialias.runs.model import NonFiniteError, build_model, check_finite, load_state_dict_file
from antialias.runs.rundir import RunDir
from antialias.train._data import TrainData, numpy_rng_state, set_numpy_rng_state
from antialias.train._progress import Silent, check_tensorboard, make_reporter
from antialias.train.config import TrainConfig, config_differences

__all__ = ["RunResult", "train"]

STATE_FORMAT = 1


@dataclasses.dataclass
class RunResult:
    """What :func:`train` returns.

    Attributes:
        model: The trained model (unwrapped from DDP), on the training device.
        metrics: One dict per epoch (the lines of metrics.jsonl).
        steps: Optimiser steps done in total.
        interrupted: True when Ctrl-C/SIGTERM stopped the run (a checkpoint was saved).
        out: The run directory, or None.
        checkpoint: The last checkpoint written or resumed from, or None.
        weights: ``out/model.safetensors`` when the run finished, else None.
        config: The config that ran.
    """

    model: nn.Module
    metrics: list[dict[str, Any]]
    steps: int
    interrupted: bool
    out: Path | None
    checkpoint: Path | None
    weights: Path | None
    config: TrainConfig


# ---------------------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _determinism(enabled: bool, device_type: str) -> Iterator[None]:
    """Deterministic algorithms for the run only; the caller's settings come back afterwards."""
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    if enabled:
        if device_type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        # warn_only on CUDA: a few kernels (e.g. some pooling backward) have no deterministic version.
        torch.use_deterministic_algorithms(True, warn_only=device_type == "cuda")
    elif device_type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = prev_cudnn


class _StopFlag:
    """Ctrl-C / SIGTERM ask for a clean stop at the next step; a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.set = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.set and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.set = True

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _resolve_device(cfg: TrainConfig) -> str:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("`train`: `device` must be 'cpu' or 'auto' on a machine without CUDA, got 'cuda'.")
    device_type = "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"
    if cfg.amp == "fp16" and device_type != "cuda":
        raise ValueError("`train`: `amp` must be 'bf16' or 'none' on CPU, got 'fp16' (float16 training needs CUDA).")
    return device_type


def _lr_factor(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    total = cfg.epochs * steps_per_epoch
    warmup = round(cfg.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:  # ``step`` optimiser steps done so far
        if step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "cosine":
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        epoch = step // steps_per_epoch
        return cfg.gamma ** sum(1 for m in cfg.milestones if epoch >= m)

    return factor


def _rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
        "numpy": numpy_rng_state(),
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    set_numpy_rng_state(state["numpy"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _size(dataset: Dataset) -> int:
    return len(cast(Sized, dataset))  # the map-style data sets TrainData holds have a length


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _check_run_dir(cfg: TrainConfig, run: RunDir) -> tuple[str | None, dict[str, Any] | None]:
    """Rank 0's verdict on the run directory: (error message or None, stored config record)."""
    if cfg.resume:
        record = run.read_config()
        if record is None:
            return (f"`train`: `out` must hold a run to resume, got {str(run.path)!r} (no config.json). "
                    "Start a fresh run without --resume."), None
        diffs = config_differences(record.get("config", {}), cfg.to_dict())
        if diffs and not cfg.force_resume:
            listing = "\n  ".join(diffs)
            return (f"`train`: the config must match the run being resumed, got {len(diffs)} difference(s) "
                    f"(stored -> now):\n  {listing}\nDrop those options (the run's config.json is used), "
                    "or pass --force-resume to continue with the new values."), record
        return None, record
    if run.is_nonempty():
        if cfg.overwrite:
            return run.overwrite_verdict(), None  # only a folder of our own files is cleared
        names = sorted(p.name for p in run.path.iterdir())
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        return (f"`train`: `out` must be a new or empty folder for a fresh run, got {str(run.path)!r} holding "
                f"{shown}. Pass --resume to continue that run, --overwrite to replace its run files, "
                "or choose another --out."), None
    return None, None


# ---------------------------------------------------------------------------------------- train


def train(config: TrainConfig, *, stream: TextIO | None = None) -> RunResult:
    """Trains a model as ``config`` says; resumes, checkpoints and runs under torchrun.

    Args:
        config: The run's configuration.
        stream: Where progress goes (default: stdout; rank 0 only).

    Returns:
        A :class:`RunResult` with the trained model and per-epoch metrics.

    Raises:
        ValueError: On a bad config, a run directory that does not allow the run (non-empty
            without resume/overwrite, or a resume whose config differs), or unusable data/model.
        OSError: When a checkpoint cannot be written (the previous one stays intact).

    Examples:
        >>> cfg = TrainConfig(model="antialias.train._demo:tiny_model", filter_size=None,
        ...                   data="antialias.train._demo:tiny_data", epochs=2, batch_size=16,
        ...                   lr=0.05, progress="none")
        >>> result = train(cfg)
        >>> result.steps, [m["epoch"] for m in result.metrics], result.interrupted
        (12, [1, 2], False)
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"`train`: `config` must be a TrainConfig, got {type(config).__name__}.")
    cfg = config
    if cfg.tensorboard:
        if cfg.out is None:
            raise ValueError("`train`: `out` must be set when `tensorboard` is True, got None.")
        check_tensorboard()
    device_type = _resolve_device(cfg)
    info = D.setup(device_type)
    try:
        if cfg.sync_batchnorm and info.distributed and device_type != "cuda":
            raise ValueError(
                "`train`: `sync_batchnorm` must be False on CPU (PyTorch's SyncBatchNorm runs on GPUs only), "
                "got True. Drop --sync-batchnorm."
            )
        if cfg.sync_batchnorm and not info.distributed:
            warnings.warn("`train`: `sync_batchnorm` has no effect in a single process (it synchronises BatchNorm "
                          "statistics across torchrun processes); training with plain BatchNorm.", UserWarning,
                          stacklevel=2)
        with _determinism(cfg.deterministic, device_type):
            return _train(cfg, info, device_type, stream)
    finally:
        D.teardown(info)


def _train(cfg: TrainConfig, info: D.DistInfo, device_type: str, stream: TextIO | None) -> RunResult:
    """One run on this rank, in named steps; every rank runs every step (collectives inside)."""
    device = torch.device(device_type, info.local_rank) if device_type == "cuda" else torch.device("cpu")
    run = RunDir(cfg.out) if cfg.out is not None else None
    _check_out(cfg, info, run)
    data, steps_per_epoch = _load_data(cfg, info, device_type)
    model, optimizer, scheduler, scaler = _build(cfg, info, data, device, steps_per_epoch, stream)
    pos = _Position()
    resumed = _resume(cfg, info, run, pos, model, optimizer, scheduler, scaler)
    if run is not None and info.is_main:
        _write_run_files(cfg, info, run, data, steps_per_epoch, device_type, pos.history)
    reporter = make_reporter(
        cfg.progress,
        is_main=info.is_main,
        every=cfg.log_every_steps,
        tensorboard_dir=(run.path / "tensorboard") if (run is not None and cfg.tensorboard) else None,
        stream=stream,
    )
    if resumed:
        reporter.message(f"resumed from {pos.last_ckpt} (epoch {pos.epoch + 1}, step {pos.global_step})")
    if info.distributed:
        ddp_kwargs: dict[str, Any] = {"device_ids": [info.local_rank]} if device_type == "cuda" else {}
        model = nn.parallel.DistributedDataParallel(model, **ddp_kwargs)
    loop = _Loop(cfg, info, device, device_type, run, data, steps_per_epoch, model, optimizer, scheduler, scaler,
                 pos, reporter)
    interrupted = loop.run()
    return _finish(cfg, info, run, model, pos, interrupted)


# ---------------------------------------------------------------------------------------- set-up


def _check_out(cfg: TrainConfig, info: D.DistInfo, run: RunDir | None) -> None:
    """The run directory: rank 0 decides, every rank raises the same error."""
    verdict = None
    if run is not None and info.is_main:
        verdict, _ = _check_run_dir(cfg, run)
    verdict = D.broadcast_object(verdict, info)
    if verdict is not None:
        raise ValueError(verdict)


def _load_data(cfg: TrainConfig, info: D.DistInfo, device_type: str) -> tuple[TrainData, int]:
    """Seeds every RNG from ``cfg.seed``, loads both splits; returns them and the steps per epoch."""
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    data = TrainData(
        load_split(cfg.data, "train", root=cfg.data_root, download=cfg.download),
        load_split(cfg.data, "test", root=cfg.data_root, download=cfg.download),
        train_subset=cfg.train_subset, val_subset=cfg.val_subset, augment=cfg.augment, normalize=cfg.normalize,
        num_workers=cfg.num_workers, pin_memory=device_type == "cuda",
    )
    n_train = _size(data.train)
    if cfg.batch_size % info.world_size:
        raise ValueError(f"`train`: `batch_size` (global) must be divisible by the number of processes "
                         f"({info.world_size}), got {cfg.batch_size}.")
    steps_per_epoch = n_train // cfg.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"`train`: `batch_size` must be at most the number of training images ({n_train}), "
                         f"got {cfg.batch_size}. Lower --batch-size or raise --train-subset.")
    return data, steps_per_epoch


def _build(
    cfg: TrainConfig, info: D.DistInfo, data: TrainData, device: torch.device, steps_per_epoch: int,
    stream: TextIO | None,
) -> tuple[nn.Module, torch.optim.Optimizer, LambdaLR, torch.amp.GradScaler | None]:
    """The model (fine-tuned from a baseline if asked), its optimiser, LR schedule and AMP scaler."""
    channels, _, _ = data.sample_shape()
    model = build_model(cfg.model, cfg.filter_size, in_channels=channels, num_classes=data.num_classes,
                        model_kwargs=cfg.model_kwargs)
    if cfg.finetune_from is not None and not cfg.resume:
        report = transfer_baseline(load_state_dict_file(cfg.finetune_from), model)
        if info.is_main and cfg.progress != "none":
            print(f"fine-tuning from {cfg.finetune_from}: {report}".splitlines()[0], file=stream or sys.stdout)
    if cfg.sync_batchnorm and info.distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # accepted at run time; torch's overloads omit it
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                weight_decay=cfg.weight_decay)
    scheduler = LambdaLR(optimizer, _lr_factor(cfg, steps_per_epoch))
    scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
    torch.manual_seed(derived_seed(cfg.seed, info.rank, 0xD06))  # per-rank stream for dropout etc.
    return model, optimizer, scheduler, scaler


def _zero_sums() -> dict[str, float]:
    return {"loss_sum": 0.0, "correct": 0.0, "count": 0.0, "seconds": 0.0}


@dataclasses.dataclass
class _Position:
    """Where the run stands: what a checkpoint saves besides weights, optimiser and RNGs."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    accum: dict[str, float] = dataclasses.field(default_factory=_zero_sums)  # this epoch's running sums
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # one metrics record per epoch
    last_ckpt: Path | None = None


def _resume(
    cfg: TrainConfig, info: D.DistInfo, run: RunDir | None, pos: _Position, model: nn.Module,
    optimizer: torch.optim.Optimizer, scheduler: LambdaLR, scaler: torch.amp.GradScaler | None,
) -> bool:
    """With ``cfg.resume``: restores the latest checkpoint into the objects and ``pos``; True if one was found."""
    loaded = None
    if cfg.resume and run is not None and info.is_main:  # TrainConfig refuses resume without out
        run.remove_partial()
        found = run.load_latest()
        loaded = None if found is None else (str(found[0]), found[1], found[2])
    loaded = D.broadcast_object(loaded, info) if cfg.resume else None
    if loaded is None:
        return False
    path, weights, state = loaded
    pos.last_ckpt = Path(path)
    _unwrap(model).load_state_dict(weights)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    pos.epoch, pos.step_in_epoch, pos.global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
    pos.history = list(state["history"])
    if info.is_main:
        pos.accum = dict(state["accum"])  # global sums so far; other ranks add theirs from zero
    rngs = state["rng"]
    if len(rngs) == info.world_size:
        _set_rng_state(rngs[info.rank])
    else:
        # stacklevel 4: the warning points at the caller of train() (here <- _train <- train <- caller).
        warnings.warn(f"`train`: the checkpoint was written by {len(rngs)} process(es), this run has "
                      f"{info.world_size}: RNG streams (dropout) restart from the seed, so the run will not "
                      "be bit-identical to an uninterrupted one.", UserWarning, stacklevel=4)
    return True


def _write_run_files(
    cfg: TrainConfig, info: D.DistInfo, run: RunDir, data: TrainData, steps_per_epoch: int, device_type: str,
    history: list[dict[str, Any]],
) -> None:
    """config.json (fresh or resumed) and metrics.jsonl in step with the checkpoint (rank 0)."""
    if not cfg.resume and cfg.overwrite:
        run.clear_run_files()
    if cfg.tensorboard:
        run.claim("tensorboard")
    channels, height, width = data.sample_shape()
    run.write_config({
        "config": cfg.to_dict(),
        "antialias_version": __version__,
        "torch_version": torch.__version__,
        "seed": cfg.seed,
        "world_size": info.world_size,
        "device": device_type,
        "num_threads": torch.get_num_threads(),
        "steps_per_epoch": steps_per_epoch,
        "data": {"train_images": _size(data.train), "val_images": _size(data.test), "num_classes": data.num_classes,
                 "image_shape": [channels, height, width], "train_transform": repr(data.train_transform),
                 "eval_transform": repr(data.eval_transform)},
    })
    run.rewrite_metrics(history)


# ---------------------------------------------------------------------------------------- the loop


class _Loop:
    """The epoch loop over a built model: steps, evaluation and checkpoints, all advancing ``pos``."""

    def __init__(
        self, cfg: TrainConfig, info: D.DistInfo, device: torch.device, device_type: str, run: RunDir | None,
        data: TrainData, steps_per_epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer,
        scheduler: LambdaLR, scaler: torch.amp.GradScaler | None, pos: _Position, reporter: Silent,
    ) -> None:
        self.cfg, self.info, self.device, self.device_type, self.rundir = cfg, info, device, device_type, run
        self.data, self.steps_per_epoch, self.pos, self.reporter = data, steps_per_epoch, pos, reporter
        self.model, self.optimizer, self.scheduler, self.scaler = model, optimizer, scheduler, scaler
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
        total = cfg.epochs * steps_per_epoch
        self.limit = total if cfg.max_steps is None else min(cfg.max_steps, total)
        self.B, self.W = cfg.batch_size, info.world_size  # global batch, processes
        self.n_val = _size(data.test)

    def run(self) -> bool:
        """Trains to the end, or until Ctrl-C/SIGTERM; True when interrupted (a checkpoint was saved)."""
        pos, cfg = self.pos, self.cfg
        interrupted = False
        with _StopFlag() as stop:
            try:
                while pos.epoch < cfg.epochs and pos.global_step < self.limit:
                    self.reporter.start_epoch(pos.epoch, cfg.epochs, self.steps_per_epoch, pos.step_in_epoch)
                    self.model.train()
                    set_lps_temperature(self.model, lps_temperature(pos.epoch, cfg.epochs, cfg.lps_tau_start,
                                                                    cfg.lps_tau_end))  # no-op without LPS layers
                    if self._train_epoch(stop) or self._end_epoch(stop):
                        interrupted = True
                        break
            finally:
                self.reporter.close()
        return interrupted

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.amp_dtype)

    def _prepare(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """One optimiser step on this rank's slice; returns its summed loss and correct count."""
        x, y = self._prepare(x, y)
        with self._autocast():
            out = self.model(x)
        loss_sum = F.cross_entropy(out.float(), y, reduction="sum", label_smoothing=self.cfg.label_smoothing)
        loss = loss_sum * (self.W / self.B)  # DDP averages over ranks -> the global batch's mean
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()
        return float(loss_sum.detach()), float((out.detach().argmax(1) == y).sum())

    def _train_epoch(self, stop: _StopFlag) -> bool:
        """Steps from the position to the end of the epoch (or of max_steps); True when stopped."""
        pos, cfg, reporter = self.pos, self.cfg, self.reporter
        last = min(self.steps_per_epoch, pos.step_in_epoch + (self.limit - pos.global_step))
        loader = self.data.train_loader(batch_size=self.B // self.W, seed=cfg.seed, epoch=pos.epoch,
                                        start_batch=pos.step_in_epoch, rank=self.info.rank, world_size=self.W)
        t0 = time.perf_counter()
        # strict=False: the loader runs to the epoch's end, max_steps may stop earlier.
        for s, (x, y) in zip(range(pos.step_in_epoch, last), loader, strict=False):
            loss_value, correct = self._step(x, y)
            self._check_loss(loss_value)
            pos.global_step += 1
            pos.step_in_epoch = s + 1
            pos.accum["loss_sum"] += loss_value
            pos.accum["correct"] += correct
            pos.accum["count"] += len(y)
            reporter.step(pos.global_step, loss_value / max(1, len(y)), len(y) * self.W)
            if D.any_true(stop.set, self.info, self.device):
                pos.accum["seconds"] += time.perf_counter() - t0
                pos.last_ckpt = self._checkpoint() or pos.last_ckpt
                reporter.message(f"interrupted at step {pos.global_step}: "
                                 + (f"checkpoint saved to {pos.last_ckpt}; continue with --resume"
                                    if pos.last_ckpt is not None else "no run directory, nothing saved"))
                return True
            if cfg.save_every_steps and pos.global_step % cfg.save_every_steps == 0 and pos.step_in_epoch < last:
                pos.accum["seconds"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                pos.last_ckpt = self._checkpoint() or pos.last_ckpt
        pos.accum["seconds"] += time.perf_counter() - t0
        return False

    def _diverged(self, what: str) -> str:
        kept = (f"the last good checkpoint {self.pos.last_ckpt} is kept" if self.pos.last_ckpt is not None
                else "no checkpoint was written")
        # Not "resume with a lower --lr": the checkpoint's optimiser and schedule state restore the old rate.
        return (f"Training diverged ({what}); {kept}. Start again (--overwrite) with a lower --lr or some "
                "--warmup-epochs, or check the data.")

    def _check_loss(self, loss_value: float) -> None:
        """Stops the run (every rank) on a NaN or infinite loss, before anything is saved."""
        if D.any_true(not math.isfinite(loss_value), self.info, self.device):
            raise NonFiniteError(
                f"`train`: the training loss must be finite, got {loss_value!r} at step {self.pos.global_step + 1} "
                f"(epoch {self.pos.epoch + 1}). " + self._diverged("non-finite loss")
            )

    def _check_weights(self) -> None:
        """Stops the run before a checkpoint of NaN or infinite weights replaces a good one."""
        net = _unwrap(self.model)
        check_finite(net.state_dict(), where="train",
                     what=f"the weights after step {self.pos.global_step} (epoch {self.pos.epoch + 1})",
                     fix=self._diverged("non-finite weights"))

    def _end_epoch(self, stop: _StopFlag) -> bool:
        """End of the epoch (or of max_steps inside it): evaluate, record, checkpoint; True when stopped."""
        pos, info = self.pos, self.info
        val_loss, val_acc = self._evaluate()
        sums = D.all_reduce_sum([pos.accum[k] for k in ("loss_sum", "correct", "count")], info, self.device)
        seconds = pos.accum["seconds"]
        record = {
            "epoch": pos.epoch + 1,
            "global_step": pos.global_step,
            "steps": pos.step_in_epoch,
            "loss": sums[0] / max(1.0, sums[2]),
            "train_acc": sums[1] / max(1.0, sums[2]),
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": seconds,
            "images_per_s": sums[2] / seconds if seconds > 0 else None,
        }
        pos.history.append(record)
        if pos.step_in_epoch >= self.steps_per_epoch:
            pos.epoch, pos.step_in_epoch = pos.epoch + 1, 0
            pos.accum = _zero_sums()
        pos.last_ckpt = self._checkpoint() or pos.last_ckpt
        if self.rundir is not None and info.is_main:
            self.rundir.append_metrics(record)
        self.reporter.end_epoch(record)
        if D.any_true(stop.set, info, self.device):
            self.reporter.message(f"interrupted after epoch {record['epoch']}: checkpoint {pos.last_ckpt}; "
                                  "continue with --resume")
            return True
        return False

    def _evaluate(self) -> tuple[float | None, float | None]:
        """Validation loss and accuracy over the whole test split (all ranks' slices), or Nones without one."""
        if self.n_val == 0:
            return None, None
        net = _unwrap(self.model)
        net.eval()
        loss_sum = correct = 0.0
        with torch.no_grad():
            for x, y in self.data.eval_loader(batch_size=self.B // self.W, rank=self.info.rank, world_size=self.W):
                x, y = self._prepare(x, y)
                with self._autocast():
                    out = net(x)
                loss_sum += float(F.cross_entropy(out.float(), y, reduction="sum"))
                correct += float((out.argmax(1) == y).sum())
        loss_sum, correct = D.all_reduce_sum([loss_sum, correct], self.info, self.device)
        net.train()
        return loss_sum / self.n_val, correct / self.n_val

    def _checkpoint(self) -> Path | None:
        """Saves the position, optimiser, schedule, scaler and every rank's RNGs (rank 0 writes); its path."""
        pos, info = self.pos, self.info
        self._check_weights()  # the same weights on every rank (DDP), so every rank raises alike
        rngs = D.gather_objects(_rng_state(), info)
        sums = D.all_reduce_sum([pos.accum[k] for k in ("loss_sum", "correct", "count")], info, self.device)
        if self.rundir is None or not info.is_main:
            return None
        state = {
            "format": STATE_FORMAT,
            "epoch": pos.epoch, "step_in_epoch": pos.step_in_epoch, "global_step": pos.global_step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rngs,
            "accum": {"loss_sum": sums[0], "correct": sums[1], "count": sums[2], "seconds": pos.accum["seconds"]},
            "history": pos.history,
            "world_size": self.W,
        }
        meta = _weights_metadata(self.cfg, pos.epoch, pos.global_step)
        return self.rundir.save(
            pos.global_step, _unwrap(self.model).state_dict(), meta, state, self.cfg.keep_checkpoints
        )


# ---------------------------------------------------------------------------------------- final files


def _finish(
    cfg: TrainConfig, info: D.DistInfo, run: RunDir | None, model: nn.Module, pos: _Position, interrupted: bool
) -> RunResult:
    """Writes ``model.safetensors`` when the run finished (rank 0), waits for every rank, builds the result."""
    net = _unwrap(model)
    weights_path = None
    if run is not None and info.is_main and not interrupted:
        meta = _weights_metadata(cfg, pos.epoch, pos.global_step)
        meta["metrics"] = pos.history[-1] if pos.history else None
        weights_path = run.save_final(net.state_dict(), meta)
    D.barrier(info)
    return RunResult(model=net, metrics=pos.history, steps=pos.global_step, interrupted=interrupted,
                     out=None if run is None else run.path, checkpoint=pos.last_ckpt, weights=weights_path, config=cfg)


def _weights_metadata(cfg: TrainConfig, epoch: int, global_step: int) -> dict[str, Any]:
    # save_checkpoint adds the library and torch versions itself.
    return {"config": cfg.to_dict(), "seed": cfg.seed,
            "model": cfg.model, "filter_size": cfg.filter_size, "epoch": epoch, "global_step": global_step}
