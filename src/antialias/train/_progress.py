"""Progress display (tqdm bar on a terminal, plain log lines otherwise) and TensorBoard scalars.

Only rank 0 builds a reporter that shows anything; the others get :class:`Silent`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tqdm.auto import tqdm

__all__ = ["Silent", "check_tensorboard", "make_reporter"]


class Silent:
    """Shows nothing."""

    def start_epoch(self, epoch: int, epochs: int, total_steps: int, done_steps: int) -> None: ...
    def step(self, step: int, loss: float, images: int) -> None: ...
    def end_epoch(self, metrics: dict[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


class LogLines(Silent):
    """One plain line every ``every`` steps and one per epoch: for CI and log files."""

    def __init__(self, stream: TextIO, every: int) -> None:
        self.stream, self.every = stream, every

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def start_epoch(self, epoch: int, epochs: int, total_steps: int, done_steps: int) -> None:
        self.epoch, self.epochs, self.total, self.done = epoch, epochs, total_steps, done_steps
        self.t0, self.images, self.loss_sum, self.n = time.perf_counter(), 0, 0.0, 0

    def step(self, step: int, loss: float, images: int) -> None:
        self.done += 1
        self.images += images
        self.loss_sum += loss
        self.n += 1
        if self.done % self.every == 0 or self.done == self.total:
            dt = max(time.perf_counter() - self.t0, 1e-9)
            rate = self.images / dt
            eta = (self.total - self.done) * dt / max(self.n, 1)
            self._print(
                f"epoch {self.epoch + 1}/{self.epochs} step {self.done}/{self.total} "
                f"loss {self.loss_sum / self.n:.4f} {rate:.1f} img/s eta {_hms(eta)}"
            )

    def end_epoch(self, metrics: dict[str, Any]) -> None:
        val = metrics.get("val_acc")
        val_text = f" val_acc {val:.4f}" if val is not None else ""
        self._print(
            f"epoch {metrics['epoch']}/{self.epochs} done: loss {metrics['loss']:.4f} "
            f"train_acc {metrics['train_acc']:.4f}{val_text} {metrics['seconds']:.1f}s "
            f"{metrics['images_per_s']:.1f} img/s"
        )

    def message(self, text: str) -> None:
        self._print(text)


class Bar(LogLines):
    """A tqdm bar per epoch with loss, images/s and ETA."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream, every=1)
        self.bar: tqdm | None = None

    def start_epoch(self, epoch: int, epochs: int, total_steps: int, done_steps: int) -> None:
        super().start_epoch(epoch, epochs, total_steps, done_steps)
        self.bar = tqdm(total=total_steps, initial=done_steps, desc=f"epoch {epoch + 1}/{epochs}",
                        file=self.stream, dynamic_ncols=True, leave=True)

    def step(self, step: int, loss: float, images: int) -> None:
        self.images += images
        self.n += 1
        if self.bar is None:  # no epoch started: nothing to show the step on
            return
        dt = max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{self.images / dt:.0f}", refresh=False)
        self.bar.update(1)

    def end_epoch(self, metrics: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        super().end_epoch(metrics)

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            super().message(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class WithTensorBoard(Silent):
    """Forwards to ``inner`` and writes scalars (train/loss per step, epoch metrics) to TensorBoard."""

    def __init__(self, inner: Silent, logdir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.inner, self.writer = inner, SummaryWriter(log_dir=str(logdir))

    def start_epoch(self, epoch: int, epochs: int, total_steps: int, done_steps: int) -> None:
        self.inner.start_epoch(epoch, epochs, total_steps, done_steps)

    def step(self, step: int, loss: float, images: int) -> None:
        self.inner.step(step, loss, images)
        self.writer.add_scalar("train/loss_step", loss, step)

    def end_epoch(self, metrics: dict[str, Any]) -> None:
        self.inner.end_epoch(metrics)
        for key in ("loss", "train_acc", "val_acc", "val_loss", "images_per_s", "lr"):
            if metrics.get(key) is not None:
                self.writer.add_scalar(f"epoch/{key}", metrics[key], metrics["epoch"])
        self.writer.flush()

    def message(self, text: str) -> None:
        self.inner.message(text)

    def close(self) -> None:
        self.inner.close()
        self.writer.close()


def check_tensorboard() -> None:
    """Raises a clear error when TensorBoard scalars are asked for but tensorboard is missing."""
    try:
        import tensorboard  # noqa: F401
    except ModuleNotFoundError:
        raise ValueError(
            "`train`: `tensorboard` must be installed to write TensorBoard scalars, got tensorboard=True "
            "without it. Install it with `pip install 'antialias[tensorboard]'` (or `pip install tensorboard`), "
            "or drop --tensorboard."
        ) from None


def make_reporter(mode: str, *, is_main: bool, every: int, tensorboard_dir: Path | None,
                  stream: TextIO | None = None) -> Silent:
    """Picks the display: ``auto`` is a bar on a terminal and log lines otherwise."""
    if not is_main:
        return Silent()
    stream = sys.stdout if stream is None else stream
    if mode == "auto":
        mode = "bar" if getattr(stream, "isatty", lambda: False)() else "log"
    inner: Silent = {"bar": lambda: Bar(stream), "log": lambda: LogLines(stream, every), "none": Silent}[mode]()
    if tensorboard_dir is not None:
        return WithTensorBoard(inner, tensorboard_dir)
    return inner


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"
