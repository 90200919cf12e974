"""The run directory: config.json, metrics.jsonl, atomic checkpoints, final weights.

Layout::

    out/config.json                      resolved config, library version, seed
    out/metrics.jsonl                    one JSON line per epoch
    out/checkpoints/step-00000120/       one complete checkpoint (the highest step is the latest)
        model.safetensors (+ sidecar)    weights, via antialias.checkpoint
        state.pt                         optimiser, scheduler, RNG per rank, data position, history
    out/model.safetensors (+ sidecar)    final weights

A checkpoint is written into ``checkpoints/.tmp-*`` (files fsynced), then renamed in one step to
``step-N``: a process killed at any moment leaves either the complete new checkpoint or none, and
older checkpoints are deleted only after the new one is in place. ``state.pt`` holds only tensors and
plain Python types, so it loads with ``torch.load(weights_only=True)``.

The trainer records every path it creates in ``out/.antialias-manifest.json`` (see
:mod:`antialias._manifest`) before writing it, and ``overwrite`` deletes those paths only; a folder
holding anything else is refused. ``metrics.jsonl`` is strict JSON: a NaN or infinite number is
written as ``null`` and its key listed under ``"non_finite"``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from antialias._io import atomic_write_text, fsync_dir, publish
from antialias._manifest import Manifest, describe
from antialias.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["RunDir", "metrics_line"]

_STEP_DIR = re.compile(r"^step-(\d+)$")
RUN_FILES = ("config.json", "metrics.jsonl", "checkpoints", "model.safetensors", "model.json", "tensorboard")
_TMP_STEP = re.compile(r"^\.tmp-step-\d+-\d+$")


def metrics_line(record: dict[str, Any]) -> str:
    """One strict-JSON line of metrics: NaN and infinities become null, their keys listed in ``non_finite``.

    Examples:
        >>> metrics_line({"epoch": 1, "loss": float("nan")})
        '{"epoch": 1, "loss": null, "non_finite": ["loss"]}'
    """
    bad = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
    clean = {k: (None if k in bad else v) for k, v in record.items()}
    if bad:
        clean["non_finite"] = bad
    return json.dumps(clean, allow_nan=False)


def _fsync_tree(path: Path) -> None:
    for f in path.iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(path)


def save_weights(path: Path, state_dict: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    save_checkpoint(path, {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, metadata)


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    return load_checkpoint(path)


class RunDir:
    """The files of one run, rooted at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.ckpt_dir = self.path / "checkpoints"
        self.manifest = Manifest(self.path, "antialias train")

    # --------------------------------------------------------------- state of the folder
    def is_nonempty(self) -> bool:
        return self.path.is_dir() and any(self.path.iterdir())

    def foreign_files(self) -> list[str]:
        """Paths in the folder that the trainer did not write (``overwrite`` is refused while there are any)."""
        return self.manifest.foreign()

    def overwrite_verdict(self) -> str | None:
        """Why ``overwrite`` must not clear this folder (files we did not write, named), or None."""
        foreign = self.foreign_files()
        if not foreign:
            return None
        return (f"`train`: `out` must hold only files of an earlier `antialias train` run to be overwritten, got "
                f"{str(self.path)!r} also holding {describe(foreign)}, which antialias did not write (its record "
                f"is {self.manifest.path.name}). Move them away, or choose another --out.")

    def claim(self, *names: str) -> None:
        """Records paths the trainer is about to create (relative to the run folder)."""
        self.manifest.add(*names)

    def clear_run_files(self) -> None:
        """Deletes this trainer's files (only those in the manifest) for ``overwrite``; other files stay."""
        verdict = self.overwrite_verdict()
        if verdict is not None:  # checked before the run too; a file may have appeared since
            raise ValueError(verdict)
        self.manifest.remove_owned()

    def read_config(self) -> dict[str, Any] | None:
        p = self.path / "config.json"
        if not p.is_file():
            return None
        try:
            record = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise ValueError(f"`train`: `out` must hold a readable config.json, got a corrupt {p}: {exc}.") from None
        if not isinstance(record, dict) or not isinstance(record.get("config", {}), dict):
            raise ValueError(f"`train`: `out` must hold a config.json written by antialias train, got {p} holding "
                             f"{type(record).__name__ if not isinstance(record, dict) else 'another record'}.")
        return record

    def write_config(self, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.claim("config.json")
        atomic_write_text(self.path / "config.json", json.dumps(record, indent=2, sort_keys=True) + "\n")

    def rewrite_metrics(self, history: list[dict[str, Any]]) -> None:
        """Makes metrics.jsonl hold exactly ``history`` (the checkpoint's record is the truth)."""
        self.claim("metrics.jsonl")
        atomic_write_text(self.path / "metrics.jsonl", "".join(metrics_line(h) + "\n" for h in history))

    def append_metrics(self, record: dict[str, Any]) -> None:
        self.claim("metrics.jsonl")
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(metrics_line(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    # --------------------------------------------------------------- checkpoints
    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints as ``(step, path)``, oldest first."""
        if not self.ckpt_dir.is_dir():
            return []
        found = []
        for p in self.ckpt_dir.iterdir():
            m = _STEP_DIR.match(p.name)
            if m and p.is_dir():
                found.append((int(m.group(1)), p))
        return sorted(found)

    def remove_partial(self) -> None:
        """Deletes half-written checkpoints left by a killed process (only folders of our temporary names)."""
        if self.ckpt_dir.is_dir():
            for p in self.ckpt_dir.iterdir():
                if _TMP_STEP.match(p.name) and p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)

    def save(self, step: int, weights: dict[str, torch.Tensor], weights_meta: dict[str, Any],
             state: dict[str, Any], keep: int) -> Path:
        """Writes checkpoint ``step`` atomically and prunes all but the ``keep`` newest."""
        final = self.ckpt_dir / f"step-{step:08d}"
        if final.is_dir():  # same position saved before (e.g. Ctrl-C right after resuming)
            return final
        self.claim(final.relative_to(self.path).as_posix())
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.ckpt_dir / f".tmp-step-{step:08d}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        try:
            tmp.mkdir()
            save_weights(tmp / "model.safetensors", weights, weights_meta)
            torch.save(state, tmp / "state.pt")
            _fsync_tree(tmp)
            publish(tmp, final)
        except BaseException as exc:  # disk full, Ctrl-C, anything: no half-written folder stays behind
            shutil.rmtree(tmp, ignore_errors=True)
            if not isinstance(exc, (OSError, RuntimeError)):  # torch.save reports a full disk as RuntimeError
                raise
            previous = self.checkpoints()
            kept = (
                f"the previous checkpoint {previous[-1][1]} is intact" if previous else "no earlier checkpoint exists"
            )
            reason = getattr(exc, "strerror", None) or " ".join(str(exc).split())[:200]
            raise OSError(
                getattr(exc, "errno", None) or 0,
                f"`train`: checkpoint {final} could not be written ({reason}); {kept}. "
                "Free disk space and continue with --resume.",
            ) from exc
        for _, old in self.checkpoints()[:-keep]:
            rel = old.relative_to(self.path).as_posix()
            if self.manifest.owns(rel):  # a step folder we did not write is never deleted
                shutil.rmtree(old, ignore_errors=True)
                self.manifest.discard(rel)
        return final

    def load_latest(self) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]] | None:
        """The newest readable checkpoint as ``(path, weights, state)``; None when there is none.

        A checkpoint that fails to load (e.g. damaged on disk) is skipped with a warning in favour of
        the one before it.
        """
        for _step, path in reversed(self.checkpoints()):
            try:
                weights, _ = load_weights(path / "model.safetensors")
                state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
            except Exception as exc:  # any damage means: try the previous one
                warnings.warn(f"`train`: skipping unreadable checkpoint {path}: {exc}", UserWarning, stacklevel=2)
                continue
            return path, weights, state
        return None

    def save_final(self, weights: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
        path = self.path / "model.safetensors"
        self.claim("model.safetensors", "model.json")
        save_weights(path, weights, metadata)
        return path
