"""Initialise an anti-aliased network from baseline (torchvision-layout) weights, by name.

Zhang, *Making Convolutional Networks Shift-Invariant Again* (ICML 2019): the reference's authors
report that fine-tuning an anti-aliased network from the baseline's weights beats training it from
scratch (their ``*_lpf4_finetune`` checkpoints). Anti-aliasing inserts blur layers into
``nn.Sequential`` containers, which renumbers some parameters; everything else keeps its name.

Unlike the reference's loader, which pairs tensors by shape, every key here is renamed by an explicit
rule for the architecture's layout and then looked up by name; a shape that differs is reported,
never guessed around. The rules (filter size ``k``, BlurPool at stride 2, see zoo_layout.md):

- **ResNet / ResNeXt / Wide ResNet** (and the CIFAR ResNets): in the first block of ``layer2``,
  ``layer3``, ``layer4``, the strided conv becomes ``Sequential(BlurPool, conv)``:
  BasicBlock ``conv2.weight -> conv2.1.weight``, Bottleneck ``conv3.weight -> conv3.1.weight``;
  the shortcut becomes ``Sequential(BlurPool, conv, bn)``: ``downsample.0.* -> downsample.1.*``,
  ``downsample.1.* -> downsample.2.*``. ``layer1``'s stride-1 shortcut keeps its names.
- **VGG / VGG-bn**: each max-pool becomes two modules, so ``features.<i>`` moves up by the number of
  pools before ``i``.
- **AlexNet**: ``features.{0,3,6,8,10} -> features.{0,5,9,11,13}`` (a BlurPool after conv1 and after
  each of the three max-pools).
- **DenseNet**: names unchanged (the blur replaces parameter-free pools); torchvision's published
  files' older names ``denselayerN.norm.1`` are accepted as ``denselayerN.norm1``.
- **MobileNetV2**: in the stride-2 blocks ``features.{2,4,7,14}``, ``conv.2.* -> conv.3.*`` and
  ``conv.3.* -> conv.4.*`` (a BlurPool before the pointwise-linear conv); ``classifier.1.*`` (after
  the dropout) ``-> classifier.0.*``.
- **CIFAR VGG**: names unchanged.

Examples:
    >>> from antialias.models import get_model
    >>> baseline = get_model("resnet18", filter_size=None)
    >>> model = get_model("resnet18", filter_size=4)
    >>> report = transfer_baseline(baseline.state_dict(), model)
    >>> report.complete, len(report.loaded), len(report.renamed)
    (True, 122, 21)
    >>> report.renamed[0]
    ('layer2.0.conv2.weight', 'layer2.0.conv2.1.weight')
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = ["TransferReport", "baseline_key_map", "rename_baseline_key", "transfer_baseline"]

_RESNETS = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2",
)  # fmt: skip
_BASIC = ("resnet18", "resnet34", "resnet20_cifar", "resnet56_cifar")
_DENSENETS = ("densenet121", "densenet161", "densenet169", "densenet201")

# torchvision's VGG configurations: output channels of each conv, "M" for a max-pool.
_VGG_CFGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
_ALEXNET_FEATURES = {0: 0, 3: 5, 6: 9, 8: 11, 10: 13}
_MOBILENET_STRIDE2 = (2, 4, 7, 14)


def _vgg_index_map(cfg: list[int | str], batch_norm: bool) -> dict[int, int]:
    """torchvision ``features`` index -> anti-aliased index, for every module of the Sequential."""
    mapping: dict[int, int] = {}
    old = pools = 0
    for v in cfg:
        width = 1 if v == "M" else (3 if batch_norm else 2)  # pool | conv, (bn,) relu
        for j in range(width):
            mapping[old + j] = old + j + pools
        old += width
        pools += v == "M"
    return mapping


def _index_rule(prefix: str, table: Mapping[int, int]) -> Callable[[str], str]:
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.(.+)$")

    def rule(key: str) -> str:
        m = pattern.match(key)
        if m and int(m.group(1)) in table:
            return f"{prefix}.{table[int(m.group(1))]}.{m.group(2)}"
        return key

    return rule


def _regex_rule(rules: Iterable[tuple[str, str]]) -> Callable[[str], str]:
    compiled = [(re.compile(p), r) for p, r in rules]

    def rule(key: str) -> str:
        for pattern, replacement in compiled:  # the first matching rule only: no double renames
            new, n = pattern.subn(replacement, key)
            if n:
                return new
        return key

    return rule


_STRIDE2_BLOCK = r"^(layer[234]\.0)\."
_SHORTCUT = [
    (_STRIDE2_BLOCK + r"downsample\.0\.", r"\1.downsample.1."),
    (_STRIDE2_BLOCK + r"downsample\.1\.", r"\1.downsample.2."),
]
_LAYOUT_RULES: dict[str, Callable[[str], str]] = {
    "resnet_basic": _regex_rule([(_STRIDE2_BLOCK + r"conv2\.", r"\1.conv2.1."), *_SHORTCUT]),
    "resnet_bottleneck": _regex_rule([(_STRIDE2_BLOCK + r"conv3\.", r"\1.conv3.1."), *_SHORTCUT]),
    "densenet": _regex_rule([(r"(\.denselayer\d+\.)(norm|relu|conv)\.([12])\.", r"\1\2\3.")]),
    "alexnet": _index_rule("features", _ALEXNET_FEATURES),
    "identity": lambda key: key,
}
for _name, _cfg in _VGG_CFGS.items():
    _LAYOUT_RULES[_name] = _index_rule("features", _vgg_index_map(_cfg, batch_norm=False))
    _LAYOUT_RULES[_name + "_bn"] = _index_rule("features", _vgg_index_map(_cfg, batch_norm=True))


def _mobilenet_rule(key: str) -> str:
    m = re.match(r"^features\.(\d+)\.conv\.([23])\.(.+)$", key)
    if m and int(m.group(1)) in _MOBILENET_STRIDE2:
        return f"features.{m.group(1)}.conv.{int(m.group(2)) + 1}.{m.group(3)}"
    m = re.match(r"^classifier\.1\.(.+)$", key)
    if m:
        return f"classifier.0.{m.group(1)}"
    return key


_LAYOUT_RULES["mobilenet_v2"] = _mobilenet_rule

# Architecture name -> layout.
_ARCH_LAYOUT: dict[str, str] = {
    **{
        a: "resnet_basic" if a in _BASIC else "resnet_bottleneck"
        for a in (*_RESNETS, "resnet20_cifar", "resnet56_cifar")
    },
    **dict.fromkeys(_DENSENETS, "densenet"),
    **{a: a for a in _VGG_CFGS},
    **{a + "_bn": a + "_bn" for a in _VGG_CFGS},
    "alexnet": "alexnet",
    "mobilenet_v2": "mobilenet_v2",
    "vgg13_bn_cifar": "identity",
}


def _feature_param_indices(keys: Iterable[str]) -> frozenset[int]:
    return frozenset(int(m.group(1)) for k in keys if (m := re.match(r"^features\.(\d+)\.weight$", k)))


def _infer_layout(keys: Iterable[str], where: str) -> str:
    """Recognise a torchvision layout from its key names alone (no shapes)."""
    keys = set(keys)
    if "layer1.0.conv1.weight" in keys:
        return "resnet_bottleneck" if "layer1.0.conv3.weight" in keys else "resnet_basic"
    if "features.conv0.weight" in keys:
        return "densenet"
    if "features.1.conv.0.0.weight" in keys and "classifier.1.weight" in keys:
        return "mobilenet_v2"
    alexnet_head = {"classifier.1.weight", "classifier.4.weight", "classifier.6.weight"}
    if alexnet_head <= keys and _feature_param_indices(keys) == frozenset(_ALEXNET_FEATURES):
        return "alexnet"
    if {"classifier.0.weight", "classifier.3.weight", "classifier.6.weight"} <= keys:
        found = _feature_param_indices(keys)
        for name, cfg in _VGG_CFGS.items():
            for bn in (False, True):
                convs = {i for i, _ in _conv_positions(cfg, bn)}
                expected = convs | ({i + 1 for i in convs} if bn else set())  # conv (+ bn) weights
                if found == expected:
                    return name + ("_bn" if bn else "")
    raise ValueError(
        f"`{where}`: could not recognise the layout of `baseline_state_dict` from its key names; pass "
        f"`arch=` (one of {', '.join(sorted(_ARCH_LAYOUT))})."
    )


def _conv_positions(cfg: list[int | str], batch_norm: bool) -> list[tuple[int, int | str]]:
    out, i = [], 0
    for v in cfg:
        if v != "M":
            out.append((i, v))
        i += 1 if v == "M" else (3 if batch_norm else 2)
    return out


def _layout_for(arch: str | None, keys: Iterable[str], where: str) -> str:
    if arch is None:
        return _infer_layout(keys, where)
    if not isinstance(arch, str):
        raise TypeError(f"`{where}`: `arch` must be a str or None, got {arch!r}.")
    layout = _ARCH_LAYOUT.get(arch.lower())
    if layout is None:
        close = difflib.get_close_matches(arch.lower(), list(_ARCH_LAYOUT), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"`{where}`: `arch` must be an architecture with known transfer rules, got {arch!r}.{hint} "
            f"Known: {', '.join(sorted(_ARCH_LAYOUT))}."
        )
    return layout


def rename_baseline_key(key: str, arch: str) -> str:
    """The anti-aliased model's name for a baseline (torchvision-layout) state_dict key.

    Args:
        key: A key of the baseline state_dict.
        arch: Architecture name (``"resnet50"``, ``"vgg16_bn"``, ``"resnet20_cifar"``, ...).

    Returns:
        The renamed key (often unchanged).

    Examples:
        >>> rename_baseline_key("layer2.0.downsample.1.running_var", "resnet50")
        'layer2.0.downsample.2.running_var'
        >>> rename_baseline_key("features.7.weight", "vgg16_bn")
        'features.8.weight'
    """
    return _LAYOUT_RULES[_layout_for(arch, (), "rename_baseline_key")](key)


def baseline_key_map(keys: Iterable[str], arch: str | None = None) -> dict[str, str]:
    """Map every baseline key to its anti-aliased name.

    Args:
        keys: Baseline state_dict keys.
        arch: Architecture name; ``None`` recognises the layout from the key names.

    Returns:
        ``{baseline_key: antialiased_key}`` in the order of ``keys``.

    Raises:
        ValueError: Unknown ``arch``, or ``arch=None`` and the layout is not recognised.

    Examples:
        >>> baseline_key_map(["features.3.weight", "classifier.1.weight", "classifier.4.weight",
        ...     "classifier.6.weight", "features.0.weight", "features.6.weight", "features.8.weight",
        ...     "features.10.weight"])["features.3.weight"]
        'features.5.weight'
    """
    keys = list(keys)
    rule = _LAYOUT_RULES[_layout_for(arch, keys, "baseline_key_map")]
    return {k: rule(k) for k in keys}


@dataclass
class TransferReport:
    """What :func:`transfer_baseline` did.

    Attributes:
        layout: The renaming rules used (``"resnet_bottleneck"``, ``"vgg16_bn"``, ...).
        loaded: ``(baseline_key, model_key)`` of every tensor copied.
        unmatched: Baseline keys whose (renamed) name the model does not have.
        missing: Model keys that received nothing (the model's ``.filt`` buffers excepted: they
            are set by construction).
        mismatched: ``(baseline_key, model_key, baseline_shape, model_shape)`` for names present in
            both with different shapes (a different ``num_classes``, say); not copied.
    """

    layout: str
    loaded: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def renamed(self) -> list[tuple[str, str]]:
        """The loaded pairs whose name changed."""
        return [(a, b) for a, b in self.loaded if a != b]

    @property
    def complete(self) -> bool:
        """True when every baseline tensor was used and every model tensor was filled."""
        return not (self.unmatched or self.missing or self.mismatched)

    def __str__(self) -> str:
        lines = [
            f"TransferReport ({self.layout}): {len(self.loaded)} loaded ({len(self.renamed)} renamed), "
            f"{len(self.unmatched)} unmatched, {len(self.missing)} missing, {len(self.mismatched)} mismatched"
        ]
        lines += [f"  renamed    {a} -> {b}" for a, b in self.renamed]
        lines += [f"  unmatched  {k}" for k in self.unmatched]
        lines += [f"  missing    {k}" for k in self.missing]
        lines += [f"  mismatched {a} -> {b}: {tuple(s)} vs {tuple(t)}" for a, b, s, t in self.mismatched]
        return "\n".join(lines)


def transfer_baseline(
    baseline_state_dict: Mapping[str, Tensor],
    model: nn.Module,
    *,
    arch: str | None = None,
    strict: bool = True,
) -> TransferReport:
    """Load baseline (torchvision-layout) weights into an anti-aliased model, by name.

    Each baseline key is renamed by the rules of the architecture's layout (see the module
    docstring) and copied to the model tensor of that name when the shapes agree. Nothing is
    matched by shape. The filters of the blur layers are not parameters and stay as built.

    Args:
        baseline_state_dict: State dict of the baseline network, e.g.
            ``get_model("resnet50", filter_size=None).state_dict()`` or a torchvision checkpoint
            (load it with ``torch.load(path, weights_only=True)``).
        model: The anti-aliased network (``get_model("resnet50", filter_size=4)``); modified in place.
        arch: Architecture name selecting the rules; ``None`` recognises the layout from the key
            names (it cannot tell the CIFAR ResNets from torchvision's: they share rules anyway).
        strict: Raise, before copying anything, unless the transfer is complete: every baseline
            key used, every model tensor filled, no shape difference. With ``strict=False``
            whatever matches is copied and the report lists the rest (e.g. a new classifier).

    Returns:
        A :class:`TransferReport`; ``print(report)`` lists every rename and every problem.

    Raises:
        ValueError: ``strict=True`` and the transfer is incomplete (the message lists the keys);
            unknown ``arch``; an unrecognised layout with ``arch=None``.
        TypeError: ``baseline_state_dict`` is not a mapping of names to tensors, or ``model`` is not
            an ``nn.Module``.
    """
    where = "transfer_baseline"
    if not isinstance(model, nn.Module):
        raise TypeError(f"`{where}`: `model` must be an nn.Module, got {type(model).__name__}.")
    if not isinstance(baseline_state_dict, Mapping):
        raise TypeError(
            f"`{where}`: `baseline_state_dict` must be a mapping of names to tensors, got "
            f"{type(baseline_state_dict).__name__}."
        )
    bad = [k for k, v in baseline_state_dict.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise TypeError(
            f"`{where}`: `baseline_state_dict` must map names to tensors, got non-tensor entries {bad[:5]!r}."
        )
    layout = _layout_for(arch, baseline_state_dict.keys(), where)
    rule = _LAYOUT_RULES[layout]
    target = model.state_dict()
    report = TransferReport(layout)
    chosen: dict[str, Tensor] = {}
    source_of: dict[str, str] = {}
    for key, value in baseline_state_dict.items():
        new = rule(key)
        # Unmatched: no such target key, or two baseline keys renamed onto one name (a rule bug or odd input).
        if new not in target or new in chosen:
            report.unmatched.append(key)
        elif tuple(target[new].shape) != tuple(value.shape):
            report.mismatched.append((key, new, tuple(value.shape), tuple(target[new].shape)))
        else:
            chosen[new] = value
            source_of[new] = key
            report.loaded.append((key, new))
    report.missing = [k for k in target if k not in chosen and not k.endswith(".filt")]
    if strict and not report.complete:
        raise ValueError(
            f"`{where}`: the baseline weights must cover the model exactly (strict=True), got an "
            f"incomplete transfer; nothing was loaded. Pass strict=False to load what matches.\n{report}"
        )
    with torch.no_grad():
        result = model.load_state_dict(chosen, strict=False)
    if result.unexpected_keys:  # cannot happen: every chosen key came from model.state_dict()
        raise RuntimeError(f"`{where}`: unexpected keys after renaming: {result.unexpected_keys}")
    return report
