"""``antialias compare``: the downsamplers of :mod:`antialias.downsample` trained and measured side by side.

Every method is the same network (the zoo's ``vgg13_bn_cifar``, narrowed by ``width``) converted with
:func:`antialias.convert.convert` ``(method=m)``: ``baseline`` (strided pooling, unconverted),
``blurpool`` (Zhang, ICML 2019), ``aps`` (adaptive polyphase sampling, Chaman & Dokmanic, CVPR 2021),
``lps`` (learnable polyphase sampling, Rojas-Gomez et al., NeurIPS 2022), ``ideal`` (Fourier low-pass,
as in FLC pooling, Grabinski et al., ECCV 2022, and Michaeli et al., CVPR 2023) and ``adaptive``
(content-adaptive filters, Zou et al., BMVC 2020). With ``circular=True`` (the default) every padded
convolution and every blur pads circularly, the setting in which APS and LPS are exactly invariant to
circular shifts: a claim this command checks, not assumes.

Steps (each cached, so an interrupted command continues where it stopped):

1. **Train** every method with the trainer (:func:`antialias.train.train`, through
   :func:`antialias.reproduce._runs.train_or_reuse`): same data, same seed, same schedule, no shift
   augmentation, in ``OUT/runs/<method>``. The model comes from the factory :func:`compare_model`.
2. **Evaluate** on the same test images with the same random shifts: accuracy; random-shift
   consistency (circular and crop protocols, :func:`antialias.eval.evaluate_consistency`); worst-case
   consistency and MAC over the circular, crop and sub-pixel grids, k-way and random sub-pixel
   consistency (:func:`antialias.eval.evaluate_worst_case`); every circular shift of the image on a
   subset; the cost of a training step (:func:`antialias.eval.cost.step_cost`).
3. **Judge** the claims with the decision rule of ``antialias reproduce``
   (:mod:`antialias.reproduce._verdicts`): paired comparisons with the baseline on the same images,
   plus exact checks ("APS gives 100% consistency under every circular shift" is confirmed only if
   every evaluated image keeps its prediction under every one of the H x W shifts).
4. **Report**: ``OUT/results.json``, ``OUT/comparison.md`` (the README's table), ``OUT/comparison.png``
   and ``OUT/report.html`` (:mod:`antialias.report.compare`).

Python::

    from antialias.reproduce.compare import CompareConfig, compare
    results = compare(CompareConfig.from_preset("quick", out="comparison"))
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import difflib
import functools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

from antialias._io import atomic_write_text
from antialias._manifest import Manifest, describe
from antialias._version import __version__
from antialias.checkpoint import load_checkpoint
from antialias.convert import convert
from antialias.data.spec import load_split
from antialias.eval import ConsistencyConfig, ShiftConsistency, evaluate_consistency
from antialias.eval._stats import Proportion, paired_proportion_difference
from antialias.eval.cost import step_cost
from antialias.eval.worst_case import WorstCaseConfig, WorstCaseMetrics, evaluate_worst_case
from antialias.models import get_model
from antialias.report.compare import write_comparison_report
from antialias.reproduce._comparisons import direction
from antialias.reproduce._data import EvalData, load_eval_data, resolve_data_spec
from antialias.reproduce._evaluate import PartCache, bits, from_bits
from antialias.reproduce._runs import Progress, torch_threads, train_or_reuse
from antialias.reproduce._verdicts import (
    CONFIRMED,
    NOT_CONFIRMED,
    NOT_MEASURED,
    RULE,
    _diff_text,
    _majority,
)
from antialias.train import TrainConfig

__all__ = ["COMPARE_PRESETS", "DEFAULT_METHODS", "METHODS", "CompareConfig", "compare", "compare_model",
           "judge_comparison", "parse_methods"]

#: Every method ``antialias compare`` knows; ``baseline`` is the unconverted network.
METHODS: tuple[str, ...] = ("baseline", "blurpool", "aps", "lps", "ideal", "adaptive")
#: The methods compared by default.
DEFAULT_METHODS: tuple[str, ...] = ("baseline", "blurpool", "aps", "lps", "ideal")
#: This module's factory, as the trainer imports it.
FACTORY = "antialias.reproduce.compare:compare_model"


def parse_methods(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``"baseline,aps"`` (or a sequence) as a checked tuple of method names.

    Examples:
        >>> parse_methods("baseline, aps,lps")
        ('baseline', 'aps', 'lps')
    """
    names = [t.strip() for t in text.split(",")] if isinstance(text, str) else [str(t).strip() for t in text]
    names = [n for n in names if n]
    for n in names:
        if n not in METHODS:
            close = difflib.get_close_matches(n, METHODS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"`compare`: `methods` must be names from {', '.join(METHODS)}, got {n!r}.{hint}")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"`compare`: `methods` must list at least one method, each once, got {text!r}.")
    return tuple(names)


def compare_model(*, arch: str = "vgg13_bn_cifar", method: str = "baseline", width: float = 0.125,
                  circular: bool = True, filter_size: int | str = 1, in_channels: int = 3,
                  num_classes: int = 10) -> nn.Module:
    """The network of one method: the zoo's baseline ``arch``, circular padding if asked, converted with ``method``.

    A model factory for the trainer (``model="antialias.reproduce.compare:compare_model"`` with these
    keywords in ``model_kwargs``), so a run's ``config.json`` records how its model was built.

    Args:
        arch: Zoo name of the baseline network.
        method: ``"baseline"`` (no conversion) or a method of :func:`antialias.convert.convert`.
        width: Channel multiplier.
        circular: Pad every padded convolution (and every blur) circularly.
        filter_size: The blur of ``blurpool``; the pre-blur of ``aps``/``lps`` (1: none, as published).
        in_channels: Input channels.
        num_classes: Classes.

    Examples:
        >>> net = compare_model(method="aps", width=0.0625, in_channels=1)
        >>> x = torch.rand(2, 1, 32, 32)
        >>> bool((net.eval()(x) == net(torch.roll(x, (5, -3), dims=(2, 3)))).all())
        True
    """
    parse_methods([method])
    net = get_model(arch, filter_size=None, width=width, in_channels=in_channels, num_classes=num_classes)
    if circular:
        for m in net.modules():
            if isinstance(m, nn.Conv2d) and m.padding != (0, 0):
                m.padding_mode = "circular"
    if method == "baseline":
        return net
    converted, _ = convert(net, method=method, filter_size=filter_size,
                           padding_mode="circular" if circular else "reflect")
    return converted


# ----------------------------------------------------------------------------------- configuration


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """Everything that defines a comparison (recorded in ``results.json``).

    Args:
        data: ``"fashion-mnist"`` (padded to 32x32), ``"fashion-mnist:PATH"``, ``"cifar10:PATH"`` or a
            ``module:function`` data factory.
        out: Output folder.
        preset: Name of the preset the sizes came from (informational).
        methods: Methods compared (see :data:`METHODS`); the verdicts compare each with ``baseline``.
        model: Zoo name of the network every method converts.
        width: Channel multiplier.
        circular: Circular padding throughout (the setting of APS's and LPS's exact invariance).
        blur_filter: BlurPool's filter.
        polyphase_filter: Pre-blur of APS and LPS (1: none, as published).
        train_subset: First N training images.
        epochs, batch_size, lr, warmup_epochs, weight_decay: The schedule (SGD, cosine).
        seed: Seed of every run (never tuned).
        save_every_steps: Checkpoint interval inside an epoch.
        num_images: Test images for accuracy and random-shift consistency.
        worst_case_images: The first N of them for the worst-case grids, k-way and random sub-pixel
            consistency (each image takes one forward per shift of the grids).
        circular_max_shift: Random circular protocol: two shifts in -m..m.
        crop_max_shift: Random crop protocol: pad by m zeros, crop at offsets in 0..2m.
        grid_max_shift: Worst-case grids: circular shifts in -m..m, crop offsets 0..2m.
        subpixel_step, subpixel_max_shift: Worst-case sub-pixel grid.
        k: Random circular shifts of k-way consistency.
        full_grid_images: Images checked under every circular shift (0: skip).
        cost_steps: Timed training steps of the cost measurement.
        eval_batch_size: Images per forward in the evaluation.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        threads: PyTorch CPU threads (None: leave as is).
    """

    data: str = "fashion-mnist"
    out: str = "comparison"
    preset: str = "default"
    methods: tuple[str, ...] = DEFAULT_METHODS
    model: str = "vgg13_bn_cifar"
    width: float = 0.125
    circular: bool = True
    blur_filter: int | str = 4
    polyphase_filter: int | str = 1
    train_subset: int | None = 4000
    epochs: int = 3
    batch_size: int = 64
    lr: float = 0.05
    warmup_epochs: float = 0.5
    weight_decay: float = 5e-4
    seed: int = 0
    save_every_steps: int = 20
    num_images: int = 1000
    worst_case_images: int = 300
    circular_max_shift: int = 8
    crop_max_shift: int = 4
    grid_max_shift: int = 1
    subpixel_step: float = 0.25
    subpixel_max_shift: float = 0.5
    k: int = 5
    full_grid_images: int = 30
    cost_steps: int = 10
    eval_batch_size: int = 250
    device: str = "cpu"
    threads: int | None = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", parse_methods(self.methods))
        w = "CompareConfig"
        for name in ("epochs", "batch_size", "num_images", "worst_case_images", "k", "cost_steps", "eval_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{w}`: `{name}` must be a positive int, got {value!r}.")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"`{w}`: `threads` must be a positive int or None, got {self.threads!r}.")
        if not isinstance(self.data, str) or not self.data:
            raise ValueError(f"`{w}`: `data` must be a data set spec such as 'fashion-mnist', got {self.data!r}.")

    @classmethod
    def from_preset(cls, name: str, **changes: Any) -> CompareConfig:
        """The named preset (``"default"``, ``"quick"``, ``"tiny"``) with ``changes`` applied.

        Examples:
            >>> CompareConfig.from_preset("tiny").num_images
            32
        """
        if name not in COMPARE_PRESETS:
            raise ValueError(f"`CompareConfig.from_preset`: `name` must be one of {sorted(COMPARE_PRESETS)}, "
                             f"got {name!r}.")
        return cls(preset=name, **{**COMPARE_PRESETS[name], **changes})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["methods"] = list(self.methods)
        return d

    def worst_case(self) -> WorstCaseConfig:
        """The worst-case protocol of the comparison."""
        return WorstCaseConfig(max_shift=self.grid_max_shift, subpixel_step=self.subpixel_step,
                               subpixel_max_shift=self.subpixel_max_shift, k=self.k,
                               random_shift=self.circular_max_shift, seed=self.seed)


#: Sizes of each preset, chosen to fit the README's budgets on a shared 2-core CPU (measured there). The
#: evaluation forwards ~50 shifted copies per worst-case image and 1,023 per every-shift image.
COMPARE_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "quick": {"train_subset": 2000, "epochs": 2, "num_images": 500, "worst_case_images": 100, "full_grid_images": 4,
              "cost_steps": 5},
    # For the test suite: seconds, not meaningful.
    "tiny": {"width": 0.0625, "train_subset": 128, "epochs": 1, "save_every_steps": 1, "num_images": 32,
             "worst_case_images": 32, "full_grid_images": 3, "k": 3, "cost_steps": 2, "eval_batch_size": 32},
}


# ----------------------------------------------------------------------------------- the pipeline


def _train_config(cfg: CompareConfig, method: str, out: Path, progress: str) -> TrainConfig:
    data, root = resolve_data_spec(cfg.data)
    filter_size = cfg.blur_filter if method == "blurpool" else cfg.polyphase_filter
    kwargs = {"arch": cfg.model, "method": method, "width": cfg.width, "circular": cfg.circular,
              "filter_size": filter_size}
    return TrainConfig(
        model=FACTORY, filter_size=None, model_kwargs=kwargs, data=data, data_root=root,
        train_subset=cfg.train_subset, val_subset=cfg.num_images, epochs=cfg.epochs, batch_size=cfg.batch_size,
        lr=cfg.lr, warmup_epochs=cfg.warmup_epochs, weight_decay=cfg.weight_decay, augment=False, seed=cfg.seed,
        device=cfg.device, out=str(out), save_every_steps=cfg.save_every_steps, keep_checkpoints=1,
        progress=progress, log_every_steps=10_000,
    )


def _load(tcfg: TrainConfig, run: Path, in_channels: int, num_classes: int) -> tuple[nn.Module, str]:
    state, meta = load_checkpoint(run / "model.safetensors")
    model = compare_model(**tcfg.model_kwargs, in_channels=in_channels, num_classes=num_classes)
    model.load_state_dict(state)
    return model.eval(), meta["tensors_sha256"]


def _device(cfg: CompareConfig) -> str:
    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return cfg.device


def _accuracy(model: nn.Module, data: EvalData, cfg: CompareConfig) -> dict[str, Any]:
    correct = []
    device = _device(cfg)
    model.to(device).eval()
    with torch.inference_mode():
        for images, labels in data.batches(cfg.num_images, cfg.eval_batch_size):
            correct.append(model(data.preprocess(images.to(device))).argmax(1).cpu() == labels)
    c = torch.cat(correct)
    return {"accuracy": Proportion.from_counts(int(c.sum()), c.numel()).to_dict(), "per_image": bits(c)}


def _consistency(model: nn.Module, data: EvalData, cfg: CompareConfig, protocol: str) -> dict[str, Any]:
    m = cfg.circular_max_shift if protocol == "circular" else cfg.crop_max_shift
    ccfg = ConsistencyConfig(protocol=protocol, max_shift=m, pad_mode="zeros", seed=cfg.seed,
                             centre=False)  # accuracy comes from the worst-case pass; no extra forward
    metric = ShiftConsistency(keep_outcomes=True)
    out = evaluate_consistency(model, data.batches(cfg.num_images, cfg.eval_batch_size), ccfg,
                               preprocess=data.preprocess, device=_device(cfg), metric=metric)
    return {"consistency": out["consistency"].to_dict(), "per_image": bits(metric.outcomes()["consistent"])}


def _worst_case(model: nn.Module, data: EvalData, cfg: CompareConfig, wcfg: WorstCaseConfig,
                n: int) -> dict[str, Any]:
    metrics = WorstCaseMetrics.for_config(wcfg)
    out = evaluate_worst_case(model, data.batches(n, cfg.eval_batch_size), wcfg, preprocess=data.preprocess,
                              device=_device(cfg), metrics=metrics)
    per_image = metrics.per_image()
    return {
        "worst_case": {k: v.to_dict() for k, v in out["worst_case"].items()},
        "mac": {k: v.to_dict() for k, v in out["mac"].items()},
        "k_way": out["k_way"].to_dict(), "random_subpixel": out["random_subpixel"].to_dict(),
        "accuracy": out["accuracy"].to_dict(),
        "per_image": {k: bits(v) for k, v in per_image.items() if v.dtype == torch.bool},
        "mac_per_image": {k: [round(float(x), 6) for x in v] for k, v in per_image.items() if v.dtype != torch.bool},
    }


def _cost(model: nn.Module, data: EvalData, cfg: CompareConfig) -> dict[str, Any]:
    n = min(cfg.batch_size, len(data.images))
    images = data.preprocess(data.images[:n]).to(_device(cfg))
    labels = data.labels[:n].to(_device(cfg))
    torch.manual_seed(cfg.seed)  # LPS draws Gumbel noise in training mode
    return step_cost(copy.deepcopy(model).to(_device(cfg)), images, labels, steps=cfg.cost_steps,
                     warmup=min(3, cfg.cost_steps))


def _evaluate(model: nn.Module, data: EvalData, cfg: CompareConfig, cache: PartCache,
              bar: Progress, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    base = {"data": data.description, "seed": cfg.seed, "num_images": cfg.num_images,
            "batch_size": cfg.eval_batch_size}
    ev: dict[str, Any] = {"consistency": {}}
    bar.start(f"evaluating {name}: accuracy")
    clean = cache.get("accuracy", base, functools.partial(_accuracy, model, data, cfg))
    for protocol in ("circular", "crop"):
        bar.start(f"evaluating {name}: consistency ({protocol})")
        m = cfg.circular_max_shift if protocol == "circular" else cfg.crop_max_shift
        ev["consistency"][protocol] = cache.get(f"consistency_{protocol}", {**base, "max_shift": m},
                                                functools.partial(_consistency, model, data, cfg, protocol))
    bar.start(f"evaluating {name}: worst case")
    wcfg = cfg.worst_case()
    worst = cache.get("worst_case", {**base, **dataclasses.asdict(wcfg), "n": cfg.worst_case_images},
                      lambda: _worst_case(model, data, cfg, wcfg, cfg.worst_case_images))
    ev.update(worst)
    ev["worst_case_accuracy"] = ev.pop("accuracy")  # of the worst-case subset
    ev["accuracy"] = clean["accuracy"]  # of all num_images, with its per-image outcomes for the paired test
    ev["per_image"] = {**ev["per_image"], "correct": clean["per_image"]}
    if cfg.full_grid_images > 0:
        bar.start(f"evaluating {name}: every circular shift of {cfg.full_grid_images} images")
        size = int(data.images.shape[-1])
        full = dataclasses.replace(wcfg, families=("circular",), max_shift=max(data.images.shape[-2:]) // 2)
        record = cache.get("every_circular_shift", {**base, "n": cfg.full_grid_images, "size": size},
                           lambda: _worst_case(model, data, cfg, full, cfg.full_grid_images))
        ev["every_circular_shift"] = record["worst_case"]["circular"]
        ev["every_circular_shift_mac"] = record["mac"]["circular"]
        ev["every_circular_shift_shifts"] = int(data.images.shape[-2] * data.images.shape[-1] - 1)
    bar.start(f"evaluating {name}: cost")
    cost = cache.get("cost", {"batch_size": cfg.batch_size, "steps": cfg.cost_steps, "device": _device(cfg),
                              "threads": torch.get_num_threads()}, lambda: _cost(model, data, cfg))
    return ev, cost


#: The files ``compare`` writes at the top of its folder (comparison.png is protected by save_png's own mark).
_OUTPUT_FILES = ("comparison.md", "report.html", "results.json")


def _check_out(out: Path) -> Manifest:
    """The manifest of ``out``; refuses a folder whose report files another program wrote."""
    manifest = Manifest(out, "antialias compare")
    foreign = [name for name in _OUTPUT_FILES if os.path.lexists(out / name) and not manifest.owns(name)]
    if foreign:
        raise FileExistsError(
            f"`compare`: `out` must not hold files of these names that antialias compare did not write, got "
            f"{str(out)!r} holding {describe(foreign)}. Move them away, or choose another --out."
        )
    return manifest


def compare(config: CompareConfig, *, stream: TextIO | None = None, progress: str = "auto") -> dict[str, Any]:
    """Trains, evaluates, judges and reports every method (see the module docstring); returns ``results.json``.

    Raises:
        ValueError: Bad configuration, or an output folder holding runs of other settings.
        antialias.data.DatasetNotFoundError: The data set is missing (the message says how to get it).
        KeyboardInterrupt: Ctrl-C; the running training saved a checkpoint first: run again to continue.
    """
    if not isinstance(config, CompareConfig):
        raise TypeError(f"`compare`: `config` must be a CompareConfig, got {type(config).__name__}.")
    stream = sys.stderr if stream is None else stream
    with torch_threads(config.threads):
        return _pipeline(config, stream, progress)


def _pipeline(cfg: CompareConfig, stream: TextIO, progress: str) -> dict[str, Any]:
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    spec, root = resolve_data_spec(cfg.data)
    load_split(spec, "test", root=root, download=False)  # a missing data set fails here, before any work
    out = Path(cfg.out)
    manifest = _check_out(out)  # before any work: never replace a file this command did not write
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    bar = Progress(2 * len(cfg.methods) + 1, stream, progress)
    trainer_progress = {"bar": "bar", "log": "log"}.get(bar.mode, "none")
    methods: dict[str, dict[str, Any]] = {}
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        tcfgs = {}
        for m in cfg.methods:
            bar.start(f"training {m}")
            t1 = time.perf_counter()
            tcfgs[m] = _train_config(cfg, m, runs_dir / m, trainer_progress)
            status, last = train_or_reuse(tcfgs[m], stream)
            methods[m] = {"run_dir": str(Path("runs") / m), "status": status, "train": last,
                          "train_seconds": time.perf_counter() - t1, "model_kwargs": tcfgs[m].model_kwargs}
            bar.message(f"{m}: {status} ({time.perf_counter() - t1:.0f}s), val_acc "
                        f"{last.get('val_acc', float('nan')):.4f}")
            bar.advance()
        timings["training"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        data = load_eval_data(spec, root, train_subset=cfg.train_subset,
                              num_images=max(cfg.num_images, cfg.full_grid_images, cfg.batch_size))
        for m in cfg.methods:
            bar.start(f"evaluating {m}")
            t1 = time.perf_counter()
            model, sha = _load(tcfgs[m], runs_dir / m, data.images.shape[1], data.num_classes)
            ev, cost = _evaluate(model, data, cfg, PartCache(runs_dir / m / "eval", sha), bar, m)
            methods[m].update(eval=ev, cost=cost, eval_seconds=time.perf_counter() - t1)
            bar.advance()
        timings["evaluation"] = time.perf_counter() - t0
        bar.start("writing the report")
        results: dict[str, Any] = {
            "format": "antialias-comparison", "format_version": 1, "antialias_version": __version__,
            "torch_version": torch.__version__, "python_version": platform.python_version(),
            "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        "platform": platform.platform(), "load_average_start": list(load_start)},
            "config": cfg.to_dict(), "seed": cfg.seed, "data_description": data.description,
            "methods": methods, "notes": _notes(cfg),
        }
        results["claims"] = judge_comparison(results)
        results["decision_rule"] = RULE + " " + EXACT_RULE
        timings["total_before_report"] = time.perf_counter() - t_start
        results["timing"] = timings
        manifest.add(*_OUTPUT_FILES)
        write_comparison_report(results, out)
        timings["total"] = time.perf_counter() - t_start
        results["load_average_end"] = list(os.getloadavg())
        atomic_write_text(out / "results.json", json.dumps(results, indent=1, default=str))
        bar.advance()
        bar.message(f"done in {timings['total']:.0f}s: {out / 'report.html'}")
    finally:
        bar.close()
    return results


def _notes(cfg: CompareConfig) -> list[str]:
    notes = [
        "Every method trains the same network from the same seed and data order, without shift augmentation; "
        "only the downsampling layers differ.",
        "Time per step is wall-clock (median of the timed steps) with "
        f"{cfg.threads or torch.get_num_threads()} PyTorch thread(s) on {cfg.device}: on a shared CPU it varies "
        "from run to run; activation memory is counted from autograd's saved tensors and does not.",
    ]
    if "lps" in cfg.methods:
        notes.append("LPS is evaluated in eval mode (argmax selection), as published; it trains with the "
                     "Gumbel-softmax temperature the trainer sets.")
    if not cfg.circular:
        notes.append("Zero/reflect padding: APS and LPS are not expected to be exactly circular-shift invariant.")
    return notes


# ----------------------------------------------------------------------------------- verdicts

#: The exact checks, added to the paired rule of ``antialias reproduce``.
EXACT_RULE = ("An exact claim ('100% consistency under every circular shift') is confirmed only when every "
              "evaluated image keeps its prediction under every shift, and not confirmed otherwise.")

#: Published claims of exact circular-shift invariance, by method.
_EXACT = {"aps": "APS (Chaman & Dokmanic, CVPR 2021)", "lps": "LPS (Rojas-Gomez et al., NeurIPS 2022)"}


def _paired(results: dict[str, Any], method: str, key: tuple[str, ...]) -> dict[str, Any] | None:
    """Paired difference of the per-image 0/1 outcomes at ``key`` between ``method`` and the baseline."""
    def outcomes(m: str) -> str | None:
        node: Any = results["methods"][m]["eval"]
        for k in key:
            node = node.get(k) if isinstance(node, dict) else None
        return node if isinstance(node, str) else None

    a, b = outcomes("baseline"), outcomes(method)
    if a is None or b is None or len(a) != len(b) or not a:
        return None
    return paired_proportion_difference(from_bits(a).int().tolist(), from_bits(b).int().tolist())


def judge_comparison(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One verdict per claim: exact invariance of APS/LPS, and each method against the baseline.

    Returns:
        Dicts with ``claim``, ``method``, ``verdict``, ``sentence`` and ``comparisons``.
    """
    claims: list[dict[str, Any]] = []
    methods = results["methods"]
    circular = results["config"].get("circular", True)
    for m, who in _EXACT.items():
        if m not in methods:
            continue
        p = methods[m]["eval"].get("every_circular_shift")
        claim = f"{who} gives 100% consistency under every circular shift"
        if p is None or not circular:
            reason = "circular padding is off" if not circular else "full_grid_images is 0"
            claims.append({"claim": claim, "method": m, "verdict": NOT_MEASURED, "comparisons": [],
                           "sentence": f"{claim}: not measured ({reason})."})
            continue
        shifts = methods[m]["eval"].get("every_circular_shift_shifts")
        verdict = CONFIRMED if p["successes"] == p["total"] else NOT_CONFIRMED
        claims.append({"claim": claim, "method": m, "verdict": verdict, "comparisons": [],
                       "sentence": f"{claim}: {p['successes']} of {p['total']} test images keep their prediction "
                                   f"under all {shifts} circular shifts ({verdict})."})
        sub = methods[m]["eval"]["worst_case"].get("subpixel")
        if sub is not None:
            claim2 = f"{who.split(' (')[0]}'s invariance does not extend to sub-pixel shifts (Michaeli et al., 2023)"
            verdict2 = CONFIRMED if sub["successes"] < sub["total"] else NOT_CONFIRMED
            claims.append({"claim": claim2, "method": m, "verdict": verdict2, "comparisons": [],
                           "sentence": f"{claim2}: {sub['successes']} of {sub['total']} images keep their prediction "
                                       f"under every 1/4- and 1/2-pixel Fourier shift of the grid ({verdict2})."})
    if "baseline" not in methods:
        return claims
    for m in methods:
        if m == "baseline":
            continue
        keys = {"random circular": ("consistency", "circular", "per_image"),
                "random crop": ("consistency", "crop", "per_image"),
                "worst case over all grids": ("per_image", "worst_case_all")}
        comps = [(label, _paired(results, m, key)) for label, key in keys.items()]
        found = [(label, d) for label, d in comps if d is not None]
        verdict = _majority([direction(d) for _, d in found], "up") if found else NOT_MEASURED
        text = "; ".join(f"{label} {_diff_text(d)}" for label, d in found)
        claims.append({"claim": f"{m} is more shift-consistent than the baseline", "method": m, "verdict": verdict,
                       "comparisons": [dict(d, label=label) for label, d in found],
                       "sentence": f"{m} is more shift-consistent than the baseline ({verdict}): {text}."})
        acc = _paired(results, m, ("per_image", "correct"))
        if acc is None:
            continue
        down = direction(acc) == "down"
        averdict = NOT_CONFIRMED if down else CONFIRMED
        claims.append({"claim": f"{m} keeps the baseline's accuracy", "method": m, "verdict": averdict,
                       "comparisons": [dict(acc, label="accuracy")],
                       "sentence": f"{m} keeps the baseline's accuracy ({averdict}): {_diff_text(acc)}."})
    return claims

