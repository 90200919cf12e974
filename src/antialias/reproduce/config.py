"""The configuration of ``antialias reproduce``: what is trained and measured, and the presets."""

from __future__ import annotations

import dataclasses
from typing import Any

from antialias.filters import filter_row

__all__ = ["FILTERS", "PRESETS", "EvalSettings", "ReproduceConfig", "check_preset_data"]

#: Anti-aliasing filters trained beside the baseline, weakest to strongest.
FILTERS: tuple[str, ...] = ("rect2", "tri3", "tri4", "bin5")


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """What is measured on each model, and on how many images.

    Attributes:
        num_images: Test images for accuracy and both consistency protocols.
        crop_max_shift: Crop protocol: pad by this many zeros, two crops at offsets in
            ``[-m, m]^2`` (per image, seeded). Our small-image choice (the paper's CIFAR protocol
            was not published).
        circular_max_shift: Circular protocol: two ``torch.roll`` copies with shifts in ``[-m, m]^2``
            (8 of 32: content wraps around the border, unlike the crop protocol's zeros; shifts of
            16 would cut every object into quadrants).
        stability_images: Images for the diagonal stability curves.
        stability_max_shift: Diagonal shifts ``d = 0..m`` (crops of the zero-padded image).
        equivariance_images: Images averaged in the feature-distance maps (baseline and bin5 only).
        equivariance_step: Spacing of the circular-shift grid (1: every shift, the paper's maps). Use
            an odd step when coarser: with an even one every shift is a multiple of 2 and the first
            subsampling looks perfectly equivariant, hiding exactly the aliasing being measured.
        corruption_images: Images per corruption and severity (0: skip).
        perturbation_images: Sequences per perturbation (0: skip).
        seed: Seed of the offsets (the same for every model: paired comparisons).
        batch_size: Images per forward.
    """

    num_images: int = 1000
    crop_max_shift: int = 4
    circular_max_shift: int = 8
    stability_images: int = 200
    stability_max_shift: int = 8
    equivariance_images: int = 4
    equivariance_step: int = 1
    corruption_images: int = 200
    perturbation_images: int = 100
    seed: int = 0
    batch_size: int = 250

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
        seed: Seed of the first training of every configuration (never tuned).
        seeds: Trainings of each configuration named in ``seeded``, with seeds ``seed``, ``seed + 1``, ...
            (the others are trained once, with ``seed``). With several, verdicts include the variation
            between trainings (:mod:`antialias.reproduce._verdicts`).
        seeded: Configurations trained ``seeds`` times: ``"baseline"`` and/or filter names (each
            with every augmentation setting).
        val_images: Test images scored after every epoch (the learning curves of the report).
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
    seeds: int = 1
    seeded: tuple[str, ...] = ("baseline", "bin5")
    val_images: int = 2000
    save_every_steps: int = 20
    eval: EvalSettings = EvalSettings()
    device: str = "cpu"
    threads: int | None = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", tuple(self.filters))
        object.__setattr__(self, "augment", tuple(bool(a) for a in self.augment))
        object.__setattr__(self, "seeded", tuple(self.seeded))
        if isinstance(self.eval, dict):
            object.__setattr__(self, "eval", EvalSettings(**self.eval))
        w = "ReproduceConfig"
        if not isinstance(self.data, str) or not self.data:
            raise ValueError(
                f"`{w}`: `data` must be a data set spec such as 'fashion-mnist' or 'cifar10:PATH', got {self.data!r}."
            )
        for f in self.filters:
            filter_row(f, where=w)
        if "bin5" not in self.filters:
            raise ValueError(f"`{w}`: `filters` must include 'bin5' (the heatmaps and verdicts compare it with the "
                             f"baseline), got {self.filters!r}.")
        if not self.augment or len(set(self.augment)) != len(self.augment):
            raise ValueError(f"`{w}`: `augment` must list False and/or True once each, got {self.augment!r}.")
        unknown = [c for c in self.seeded if c != "baseline" and c not in self.filters]
        if unknown:
            raise ValueError(f"`{w}`: `seeded` must name 'baseline' or trained filters {list(self.filters)}, got "
                             f"{unknown!r}.")
        for name in ("epochs", "batch_size", "seeds", "val_images"):
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
        """The named preset (see :data:`PRESETS`) with ``changes`` applied.

        Examples:
            >>> ReproduceConfig.from_preset("quick").train_subset
            2000
        """
        if name not in PRESETS:
            raise ValueError(f"`ReproduceConfig.from_preset`: `name` must be one of {sorted(PRESETS)}, got {name!r}.")
        values = dict(PRESETS[name])
        check_preset_data(name, changes.get("data", values.get("data", "")))
        ev = values.pop("eval", {})
        if "eval" in changes:
            ev = {**ev, **changes.pop("eval")}
        return cls(preset=name, **{**values, **changes}, eval=EvalSettings(**ev))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["filters"], d["augment"], d["seeded"] = list(self.filters), list(self.augment), list(self.seeded)
        return d

    def replace(self, **changes: Any) -> ReproduceConfig:
        return dataclasses.replace(self, **changes)


#: Sizes of each preset, chosen to fit the budgets on a 2-core CPU (see the README's table). ``full``
#: (about two hours): all 60,000 Fashion-MNIST training images, 5 seeds of the baseline, Rect-2 and
#: Bin-5 (with and without augmentation: the headline comparisons and the filter ordering), one of
#: Tri-3 and Tri-4, the whole test set, and enough images
#: in every robustness part that the paper's effect sizes would be detectable (the report states the
#: detectable effect of every comparison).
PRESETS: dict[str, dict[str, Any]] = {
    "full": {"width": 0.125, "train_subset": None, "epochs": 4, "batch_size": 64, "lr": 0.05, "seeds": 5,
             "seeded": ("baseline", "rect2", "bin5"), "save_every_steps": 200,
             "eval": {"num_images": 10000, "stability_images": 1000, "stability_max_shift": 8,
                      "equivariance_images": 64, "equivariance_step": 1, "corruption_images": 1000,
                      "perturbation_images": 300}},
    "default": {"width": 0.125, "train_subset": 8000, "epochs": 3, "batch_size": 64, "lr": 0.05,
                "eval": {"num_images": 2000, "stability_images": 200, "stability_max_shift": 8,
                         "equivariance_images": 2, "equivariance_step": 1, "corruption_images": 150,
                         "perturbation_images": 50}},
    "quick": {"width": 0.125, "train_subset": 2000, "epochs": 2, "batch_size": 50, "lr": 0.05, "val_images": 1000,
              "eval": {"num_images": 1000, "stability_images": 100, "stability_max_shift": 8,
                       "equivariance_images": 2, "equivariance_step": 3, "corruption_images": 40,
                       "perturbation_images": 20}},
    # The paper's scale, for users with the data and a GPU (README "At the paper's scale"; the expected
    # times come from benchmarks/bench_reproduce_gpu.py). Their "data" names the data set they need:
    # `antialias reproduce` refuses another one (reproduce/_cli.py). cifar10: the full-width CIFAR VGG13-bn
    # of the paper's feature-distance figure on all 50,000 CIFAR-10 images. The paper does not state that
    # model's training recipe; ours is a common CIFAR one (SGD, batch 128, cosine, weight decay 5e-4, 200
    # epochs), with 3 seeds of the baseline and Bin-5, and the whole test set scored.
    "cifar10": {"data": "cifar10", "model": "vgg13_bn_cifar", "width": 1.0, "train_subset": None, "epochs": 200,
                "batch_size": 128, "lr": 0.05, "warmup_epochs": 1.0, "weight_decay": 5e-4, "seeds": 3,
                "seeded": ("baseline", "bin5"), "val_images": 10000, "save_every_steps": 0, "device": "cuda",
                "threads": None,
                "eval": {"num_images": 10000, "stability_images": 1000, "stability_max_shift": 8,
                         "equivariance_images": 64, "equivariance_step": 1, "corruption_images": 1000,
                         "perturbation_images": 300, "batch_size": 500}},
    # imagenet: ResNet50 (the paper's main ImageNet model) with the recipe of the paper's ImageNet training
    # (adobe/antialiased-cnns main.py, itself the PyTorch ImageNet example): 90 epochs, SGD momentum 0.9,
    # batch 256, lr 0.1, weight decay 1e-4, no warm-up; trained with the usual augmentation only, as in the
    # paper (one run per filter: 5 runs). Deviations, from what ReproduceConfig and the trainer offer: a
    # cosine schedule instead of the step decay (x0.1 at epochs 30 and 60), and flips on centre crops
    # instead of random-resized crops. Shifts are given at 32 px and scaled x7 by the pipeline: crop and
    # circular offsets within +-14 px (two views differ by up to 28 px; the paper's two crops, by up to 31),
    # diagonal stability up to 35 px (the paper's Figure 1: 32).
    "imagenet": {"data": "imagenet", "model": "resnet50", "width": 1.0, "augment": (True,), "train_subset": None,
                 "epochs": 90, "batch_size": 256, "lr": 0.1, "warmup_epochs": 0.0, "weight_decay": 1e-4,
                 "seeds": 1, "val_images": 10000, "save_every_steps": 1000, "device": "cuda", "threads": None,
                 "eval": {"num_images": 10000, "crop_max_shift": 2, "circular_max_shift": 2, "stability_images": 1000,
                          "stability_max_shift": 5, "equivariance_images": 8, "equivariance_step": 7,
                          "corruption_images": 200, "perturbation_images": 100, "batch_size": 250}},
    # For the test suite: seconds, not meaningful.
    "tiny": {"width": 0.0625, "train_subset": 128, "epochs": 1, "batch_size": 64, "lr": 0.05, "save_every_steps": 1,
             "val_images": 64,
             "eval": {"num_images": 64, "stability_images": 8, "stability_max_shift": 3, "equivariance_images": 1,
                      "equivariance_step": 15, "corruption_images": 2, "perturbation_images": 2, "batch_size": 64}},
}


#: What each preset's ``data`` names, for the error that refuses another data set.
_DATA_HELP = {
    "cifar10": ("CIFAR-10", "cifar10:/path/to/folder (holding cifar-10-batches-py; --download fetches it there)"),
    "imagenet": ("ImageNet", "imagenet:/path/to/imagenet (holding train/ and val/ with one folder per class)"),
}


def check_preset_data(preset: str, data: str) -> None:
    """Refuses a data set other than the one a preset is sized for (its ``data`` in :data:`PRESETS`).

    Raises:
        ValueError: ``data`` names another data set, or ImageNet without its folder; the message
            gives the ``--data`` to use.

    Examples:
        >>> check_preset_data("cifar10", "cifar10:/data/cifar")
        >>> try:
        ...     check_preset_data("imagenet", "fashion-mnist")
        ... except ValueError as exc:
        ...     print(str(exc).split(". ")[0])
        `antialias reproduce`: `--data` must be ImageNet for --preset imagenet, got 'fashion-mnist'
    """
    wanted = PRESETS.get(preset, {}).get("data")
    if wanted is None:
        return
    name, _, path = data.partition(":")
    label, spec = _DATA_HELP.get(wanted, (wanted, f"{wanted}:PATH"))
    others = ", ".join(p for p in PRESETS if p != "tiny" and "data" not in PRESETS[p])
    others = " or ".join(others.rsplit(", ", 1))
    if name.lower() != wanted:
        raise ValueError(f"`antialias reproduce`: `--data` must be {label} for --preset {preset}, got {data!r}. "
                         f"Give --data {spec}, or a preset sized for any data set: {others}.")
    if wanted == "imagenet" and not path:
        raise ValueError(f"`antialias reproduce`: `--data` must name the ImageNet folder for --preset {preset}, got "
                         f"{data!r}. Give --data {spec}.")
