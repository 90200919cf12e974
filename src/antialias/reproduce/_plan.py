"""``antialias reproduce --plan``: the training commands of a reproduction, to run elsewhere or under torchrun.

``antialias reproduce`` trains its runs one after another in one process. With several GPUs (or several
machines that see the same files) print the plan instead, run its commands, each under ``torchrun
--nproc_per_node=N`` if you like, in any order and at the same time, then run ``antialias reproduce``
with the same options: it finds every run finished with exactly the configuration it expects, reuses it
(:func:`antialias.reproduce._runs.train_or_reuse` compares ``config.json`` field by field, ignoring only
where files go, how progress is shown and how the data are loaded) and goes on to the evaluation and
the report.

The commands are made from :func:`antialias.reproduce._runs.train_config`, the very function the
pipeline trains with: every field of its :class:`~antialias.train.TrainConfig` that differs from the
field's default becomes an ``antialias train`` flag, so the plan and the pipeline cannot drift apart.
The global batch is the same under torchrun (each of the N processes takes ``batch_size / N``), so
the run's configuration, and the reuse, do not depend on N; BatchNorm then sees per-process batches,
so the weights are not bit-identical to a one-process run.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

from antialias.reproduce._runs import plan_runs, train_config
from antialias.reproduce.config import ReproduceConfig
from antialias.train import TrainConfig

__all__ = ["format_plan", "plan_commands", "train_arguments"]

#: Fields left to the trainer's defaults in printed commands: they change only how progress is shown
#: (both are in the trainer's RESUMABLE_FIELDS, so reuse ignores them).
_LEFT_OUT = frozenset({"progress", "log_every_steps"})

#: Loader workers per process written into the commands when the user gives none: image folders are
#: decoded per image (JPEG), which one process cannot do at a GPU's pace; in-memory sets need none.
FOLDER_WORKERS = 8


def _token(value: Any) -> list[str]:
    if value is None:
        return ["none"]
    if isinstance(value, dict):
        return [json.dumps(value, sort_keys=True)]
    if isinstance(value, (tuple, list)):
        return [str(v) for v in value]
    if isinstance(value, float):
        return [repr(value)]  # repr round-trips every float exactly
    return [str(value)]


def train_arguments(tcfg: TrainConfig) -> list[str]:
    """The ``antialias train`` flags that rebuild ``tcfg`` (its fields that differ from the defaults).

    Examples:
        >>> train_arguments(TrainConfig(filter_size=None, augment=False, lr=0.05, out="runs/a"))
        ['--filter-size', 'none', '--lr', '0.05', '--no-augment', '--out', 'runs/a']
    """
    defaults = TrainConfig()
    argv: list[str] = []
    for field in dataclasses.fields(TrainConfig):
        value, flag = getattr(tcfg, field.name), "--" + field.name.replace("_", "-")
        if field.name in _LEFT_OUT or value == getattr(defaults, field.name):
            continue
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{field.name.replace('_', '-')}")
        else:
            argv += [flag, *_token(value)]
    return argv


def plan_commands(cfg: ReproduceConfig, *, nproc_per_node: int | None = None,
                  num_workers: int | None = None) -> list[str]:
    """One shell command per planned run of ``cfg``, training it into ``cfg.out/runs/NAME``.

    Args:
        cfg: The reproduction, as ``antialias reproduce`` would run it.
        nproc_per_node: Processes (GPUs) per command: ``torchrun --standalone --nproc_per_node=N -m
            antialias.train ...``; None: one process, ``antialias train ...``.
        num_workers: Data loader workers per process (None: :data:`FOLDER_WORKERS` for ImageNet
            folders, the trainer's default otherwise). Not part of the run's identity.

    Raises:
        ValueError: ``nproc_per_node`` not a positive divisor of the global batch size.
    """
    where = "antialias reproduce --plan"
    if nproc_per_node is not None:
        if isinstance(nproc_per_node, bool) or not isinstance(nproc_per_node, int) or nproc_per_node < 1:
            raise ValueError(f"`{where}`: `--nproc-per-node` must be a positive int, got {nproc_per_node!r}.")
        if cfg.batch_size % nproc_per_node:
            raise ValueError(
                f"`{where}`: `--nproc-per-node` must divide the global batch size {cfg.batch_size} of preset "
                f"{cfg.preset!r} (each process takes an equal share), got {nproc_per_node}. Use a divisor such as "
                f"{', '.join(str(d) for d in (1, 2, 4, 8) if cfg.batch_size % d == 0)}."
            )
    if num_workers is not None and (isinstance(num_workers, bool) or not isinstance(num_workers, int)
                                    or num_workers < 0):
        raise ValueError(f"`{where}`: `--num-workers` must be an int >= 0, got {num_workers!r}.")
    if num_workers is None and cfg.data.partition(":")[0].lower() == "imagenet":
        num_workers = FOLDER_WORKERS
    if nproc_per_node is None:
        launcher = ["antialias", "train"]
    else:
        launcher = ["torchrun", "--standalone", f"--nproc_per_node={nproc_per_node}", "-m", "antialias.train"]
    runs_dir = Path(cfg.out) / "runs"
    commands = []
    for run in plan_runs(cfg):
        tcfg = train_config(cfg, run, runs_dir / run.name, "auto")
        if num_workers is not None:
            tcfg = tcfg.replace(num_workers=num_workers)
        commands.append(shlex.join([*launcher, *train_arguments(tcfg)]))
    return commands


def format_plan(cfg: ReproduceConfig, reproduce_command: str, *, nproc_per_node: int | None = None,
                num_workers: int | None = None) -> str:
    """The text ``--plan`` prints: a comment header, the commands, and the command that evaluates them."""
    commands = plan_commands(cfg, nproc_per_node=nproc_per_node, num_workers=num_workers)
    procs = "one process each" if nproc_per_node is None else f"{nproc_per_node} processes (GPUs) each"
    lines = [
        f"# antialias reproduce --plan: {len(commands)} trainings of preset {cfg.preset!r} ({cfg.model}, "
        f"{cfg.epochs} epochs, global batch {cfg.batch_size}), {procs}, into {Path(cfg.out) / 'runs'!s}/.",
        "# Run them from this folder, in any order, at the same time if there are GPUs for it (e.g. each with",
        "# its own CUDA_VISIBLE_DEVICES); a stopped one continues with the same command plus --resume.",
        "# Then this command reuses every finished run and evaluates them into the report:",
        f"#   {reproduce_command}",
        *commands,
    ]
    return "\n".join(lines)
