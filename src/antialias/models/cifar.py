"""Small-image models of the paper's CIFAR experiments, baseline or anti-aliased (Zhang, ICML 2019).

- ``vgg13_bn_cifar``: VGG-13 with batch norm (Simonyan & Zisserman, 2015) for 32x32 inputs: conv
  stacks 64,64,M,128,128,M,256,256,M,512,512,M,512,512,M (times ``width``), a global pool and one
  linear layer.
- ``resnet20_cifar``, ``resnet56_cifar``: the CIFAR ResNets of He et al. (CVPR 2016, Sec. 4.2):
  a 3x3 stem and three stages of ``(depth - 2) / 6`` BasicBlocks at 16, 32, 64 channels (times
  ``width``), strides 1, 2, 2; parameter-free shortcuts (option A: subsample and zero-pad the new
  channels) by default, or 1x1 projections (option B).

Anti-aliasing (``filter_size`` an int or name) follows the ImageNet zoo, placement and names: a
strided BasicBlock runs ``conv1`` at stride 1 and ``conv2`` = ``Sequential(BlurPool2d, conv3x3)``;
the strided shortcut (``downsample``) blurs instead of subsampling (option A) or is
``Sequential(BlurPool2d, conv1x1, bn)`` (option B).

Small maps, by design (no warnings at 32x32 or 28x28): the VGG's first four pools are
``MaxPool2d(2, 2, ceil_mode=True)``, or ``MaxBlurPool2d(2, ceil_mode=True)`` when anti-aliased: a
dense 2x2 max then the blur, equal to the reference's ``MaxPool2d(2, 1)`` + ``BlurPool2d`` on even
maps, and on odd ones (28 -> 14 -> 7 -> 4 -> 2 for Fashion-MNIST) keeping the last row as
``ceil_mode`` does instead of needing a longer map. The fifth pool, which sees a 2x2 map at 32x32
(and at 28x28), is a global max-pool in both variants: at 32x32 it equals VGG-13's ``MaxPool2d(2)``,
and blurring a map about to be reduced to one value would only cost time. The ResNets never blur a
map smaller than 8x8 (7x7 from 28x28). Inputs of 1x28x28 (Fashion-MNIST) work as they are; pass
``in_channels=1``.

No published checkpoints exist for these. The blur adds no parameters: a baseline VGG checkpoint
loads into the anti-aliased VGG with ``strict=True``; for the ResNets, whose names follow the
ImageNet ResNet's, :func:`antialias.models.transfer.transfer_baseline` maps them by name.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from antialias.filters import FilterSpec
from antialias.layers import BlurPool2d, MaxBlurPool2d
from antialias.models._registry import (
    DEFAULT_FILTER_SIZE,
    _build,
    _builder_doc,
    _check_padding_mode,
    _count_example,
    _Default,
    register_model,
)

__all__ = ["CifarResNet", "CifarVGG", "resnet20_cifar", "resnet56_cifar", "vgg13_bn_cifar"]

DEFAULT_CIFAR_CLASSES = _Default(10)


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def _check_width(width: object, where: str) -> None:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"`{where}`: `width` must be a positive number, got {width!r}.")


def _check_in_channels(in_channels: object, where: str) -> None:
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(
            f"`{where}`: `in_channels` must be a positive int, got {in_channels!r}. Use 1 for grey images."
        )


# --------------------------------------------------------------------------- VGG



def _init_weights(model: nn.Module) -> None:
    """He initialisation of the convolutions (fan-out, ReLU), unit-scale zero-shift BatchNorm."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

class CifarVGG(nn.Module):
    """VGG with batch norm for small (32x32, 28x28) images, baseline or anti-aliased.

    Args:
        cfg: Conv widths and ``"M"`` pools (before ``width``); the last entry must be ``"M"``
            (it becomes the global max-pool).
        num_classes: Outputs of the linear classifier.
        in_channels: Input channels (1 for Fashion-MNIST).
        width: Channel multiplier (channels ``max(1, round(c * width))``).
        filter_size: None for the baseline, or the blur filter of the pools.
        padding_mode: Padding of the blur.

    Shape:
        ``(N, in_channels, H, W) -> (N, num_classes)``; any ``H, W >= 1`` for the baseline; the
        anti-aliased network warns (and pads with "replicate") on inputs smaller than 24x24.

    Examples:
        >>> net = CifarVGG([8, "M", 16, "M"], num_classes=4, in_channels=1, filter_size=4)
        >>> net(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 4])
    """

    def __init__(
        self,
        cfg: list[int | str],
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
        *,
        filter_size: FilterSpec | None = None,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        _check_padding_mode(padding_mode, "CifarVGG")
        _check_width(width, "CifarVGG")
        _check_in_channels(in_channels, "CifarVGG")
        if not cfg or cfg[-1] != "M":
            raise ValueError(f"`CifarVGG`: `cfg` must end with 'M' (the global pool), got {cfg!r}.")
        layers: list[nn.Module] = []
        channels = in_channels
        for i, v in enumerate(cfg):
            if v == "M":
                if i == len(cfg) - 1:
                    layers.append(nn.AdaptiveMaxPool2d(1))
                elif filter_size is None:
                    layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
                else:
                    layers.append(
                        MaxBlurPool2d(
                            2, 2, ceil_mode=True, channels=channels, filter_size=filter_size, padding_mode=padding_mode
                        )
                    )
                continue
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"`CifarVGG`: `cfg` must hold ints and 'M', got {v!r}.")
            out = _scaled(v, width)
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (N, C, 1, 1)
        return self.classifier(torch.flatten(x, 1))  # (N, num_classes)


# --------------------------------------------------------------------------- ResNet


class _Subsample(nn.Module):
    """Keep every ``stride``-th row and column: the baseline's option-A shortcut."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, :: self.stride, :: self.stride]  # (N, C, ceil(H/s), ceil(W/s))


class _ZeroPadShortcut(nn.Module):
    """Option A: downsample (subsample, or blur-pool when anti-aliased), then append zero channels."""

    def __init__(self, in_channels: int, out_channels: int, pool: nn.Module) -> None:
        super().__init__()
        self.pool = pool
        self.extra = out_channels - in_channels

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(self.pool(x), (0, 0, 0, 0, 0, self.extra))  # (N, out_channels, H/s, W/s)


class _CifarBlock(nn.Module):
    """BasicBlock with the ImageNet zoo's names: blurred ``conv2`` = ``Sequential(BlurPool2d, conv)``;
    the shortcut is ``downsample`` (option B blurred: ``Sequential(BlurPool2d, conv1x1, bn)``)."""

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int,
        shortcut: str,
        filter_size: FilterSpec | None,
        padding_mode: str,
    ) -> None:
        super().__init__()
        blur = filter_size if stride > 1 else None  # the filter when this block blurs, else None
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1 if blur is not None else stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.conv2 = nn.Sequential(BlurPool2d(planes, blur, stride, padding_mode), conv2) if blur is not None else conv2
        self.bn2 = nn.BatchNorm2d(planes)
        if stride == 1 and inplanes == planes:
            self.downsample: nn.Module = nn.Identity()
        elif shortcut == "A":
            pool = BlurPool2d(inplanes, blur, stride, padding_mode) if blur is not None else _Subsample(stride)
            self.downsample = _ZeroPadShortcut(inplanes, planes, pool)
        elif blur is not None:
            self.downsample = nn.Sequential(
                BlurPool2d(inplanes, blur, stride, padding_mode),
                nn.Conv2d(inplanes, planes, 1, bias=False),
                nn.BatchNorm2d(planes),
            )
        else:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, planes, H, W) when anti-aliased
        out = self.bn2(self.conv2(out))  # (N, planes, H/s, W/s)
        return self.relu(out + self.downsample(x))


class CifarResNet(nn.Module):
    """The CIFAR ResNets of He et al. (2016, Sec. 4.2), baseline or anti-aliased.

    Args:
        depth: ``6n + 2`` (20, 32, 44, 56, 110, ...).
        num_classes: Outputs of the linear classifier.
        in_channels: Input channels (1 for Fashion-MNIST).
        width: Channel multiplier on 16, 32, 64.
        shortcut: ``"A"`` (zero-padding, parameter-free, as the paper's CIFAR runs) or ``"B"``
            (1x1 projection + BN) where the shape changes.
        filter_size: None for the baseline, or the blur filter.
        padding_mode: Padding of the blur.

    Shape:
        ``(N, in_channels, H, W) -> (N, num_classes)``; feature maps ``H``, ``ceil(H/2)``, ``ceil(H/4)``.

    Examples:
        >>> net = CifarResNet(8, num_classes=3, width=0.5, filter_size=3)
        >>> net(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 3])
        >>> sum(p.numel() for p in CifarResNet(20, filter_size=None).parameters())  # 0.27M in the paper
        269722
    """

    def __init__(
        self,
        depth: int,
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
        shortcut: Literal["A", "B"] = "A",
        *,
        filter_size: FilterSpec | None = None,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        _check_padding_mode(padding_mode, "CifarResNet")
        _check_width(width, "CifarResNet")
        _check_in_channels(in_channels, "CifarResNet")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"`CifarResNet`: `depth` must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110), got {depth!r}.")
        if shortcut not in ("A", "B"):
            raise ValueError(f"`CifarResNet`: `shortcut` must be 'A' or 'B', got {shortcut!r}.")
        n = (depth - 2) // 6
        widths = [_scaled(c, width) for c in (16, 32, 64)]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        stages = []
        channels = widths[0]
        for out, stride in zip(widths, (1, 2, 2), strict=True):
            blocks = []
            for i in range(n):
                blocks.append(_CifarBlock(channels, out, stride if i == 0 else 1, shortcut, filter_size, padding_mode))
                channels = out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (N, 16w, H, W)
        x = self.layer3(self.layer2(self.layer1(x)))  # (N, 64w, H/4, W/4)
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (N, num_classes)


# --------------------------------------------------------------------------- builders

_VGG13: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


_cifar_doc = partial(
    _builder_doc,
    baseline="the baseline",
    num_classes=10,
    published=False,
    args="""
        in_channels: Input channels (1 for Fashion-MNIST).
        width: Channel multiplier (0.25 gives a net the CPU trains in minutes).
    """,
    checked=("in_channels", "width"),
)
_cifar_resnet_doc = partial(
    _cifar_doc,
    args="""
        in_channels: Input channels (1 for Fashion-MNIST).
        width: Channel multiplier on 16, 32, 64 (0.25 gives a net the CPU trains in minutes).
        shortcut: ``"A"`` (zero-pad, parameter-free) or ``"B"`` (1x1 projection) where the shape changes.
    """,
    checked=("in_channels", "width", "shortcut"),
)


@register_model
@_cifar_doc(
    "VGG-13-bn for 32x32 (and 28x28) images, anti-aliased with ``filter_size`` (None: baseline).",
    examples="""
        >>> vgg13_bn_cifar(width=0.25, in_channels=1)(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """,
)
def vgg13_bn_cifar(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_CIFAR_CLASSES, in_channels: int = 3, width: float = 1.0,
    padding_mode: str = "reflect",
) -> CifarVGG:
    make = partial(CifarVGG, _VGG13, in_channels=in_channels, width=width)
    return _build("vgg13_bn_cifar", make, filter_size, weights, progress, num_classes, padding_mode)


@register_model
@_cifar_resnet_doc(
    "ResNet-20 for CIFAR (He et al., 2016), anti-aliased with ``filter_size`` (None: baseline).",
    examples="""
        >>> resnet20_cifar(filter_size="tri3")(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """,
)
def resnet20_cifar(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_CIFAR_CLASSES, in_channels: int = 3, width: float = 1.0,
    padding_mode: str = "reflect", shortcut: Literal["A", "B"] = "A",
) -> CifarResNet:
    make = partial(CifarResNet, 20, in_channels=in_channels, width=width, shortcut=shortcut)
    return _build("resnet20_cifar", make, filter_size, weights, progress, num_classes, padding_mode)


@register_model
@_cifar_resnet_doc(
    "ResNet-56 for CIFAR (He et al., 2016), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("resnet56_cifar()", 853018),
)
def resnet56_cifar(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_CIFAR_CLASSES, in_channels: int = 3, width: float = 1.0,
    padding_mode: str = "reflect", shortcut: Literal["A", "B"] = "A",
) -> CifarResNet:
    make = partial(CifarResNet, 56, in_channels=in_channels, width=width, shortcut=shortcut)
    return _build("resnet56_cifar", make, filter_size, weights, progress, num_classes, padding_mode)
