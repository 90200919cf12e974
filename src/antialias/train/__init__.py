"""Training: a frozen config, a loop that resumes exactly and scales out with torchrun.

Python::

    from antialias.train import TrainConfig, train
    result = train(TrainConfig(model="resnet20_cifar", filter_size=4, data="fashion-mnist", out="runs/aa"))

Command line: ``antialias train --model resnet20_cifar --filter-size 4 --out runs/aa`` (the flags are
:class:`TrainConfig`'s fields), or ``torchrun --nproc_per_node=N -m antialias.train ...``.
"""

from antialias.train._cli import add_arguments, main, run_from_args
from antialias.train.config import TrainConfig, config_differences, load_config_file
from antialias.train.loop import RunResult, train

__all__ = [
    "RunResult",
    "TrainConfig",
    "add_arguments",
    "config_differences",
    "load_config_file",
    "main",
    "run_from_args",
    "train",
]
