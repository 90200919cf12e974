"""ResNet, ResNeXt and Wide ResNet, baseline or anti-aliased (Zhang, ICML 2019).

Architectures of He et al. (CVPR 2016; the "v1.5" variant with the stride on the 3x3 conv), Xie et
al. (ResNeXt, CVPR 2017) and Zagoruyko & Komodakis (Wide ResNet, BMVC 2016).

``filter_size=None`` builds the unmodified network in torchvision's ``state_dict`` layout.
An int or filter name builds the anti-aliased network in the layout of the published
anti-aliased checkpoints (adobe/antialiased-cnns), which load with ``strict=True``:

- stem: ``maxpool`` = ``Sequential(MaxPool2d(2, stride=1), BlurPool2d(64))`` instead of
  ``MaxPool2d(3, 2, 1)``;
- strided BasicBlock: ``conv1`` at stride 1, then ``conv2`` = ``Sequential(BlurPool2d, conv3x3)``;
- strided Bottleneck: ``conv2`` at stride 1, then ``conv3`` = ``Sequential(BlurPool2d, conv1x1)``;
- strided shortcut: ``downsample`` = ``Sequential(BlurPool2d(in), conv1x1, BatchNorm2d)`` (a blur
  before a 1x1 conv equals a blur after it, and is cheaper).

The blur pads with ``padding_mode`` ("reflect" as the reference) and outputs ``ceil(H / 2)``.

Every builder here takes the keyword-only arguments documented in :func:`resnet18` and returns a
:class:`ResNet`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from antialias.filters import FilterSpec
from antialias.layers import BlurPool2d
from antialias.models._registry import (
    DEFAULT_FILTER_SIZE,
    DEFAULT_NUM_CLASSES,
    _build,
    _builder_doc,
    _check_padding_mode,
    _count_example,
    register_model,
)

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
]


def _conv3x3(cin: int, cout: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride, bias=False)


def _blur_then(
    channels: int, stride: int, layer: nn.Module, filter_size: FilterSpec, padding_mode: str
) -> nn.Sequential:
    return nn.Sequential(BlurPool2d(channels, filter_size, stride, padding_mode), layer)


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity shortcut (ResNet-18/34).

    Args:
        inplanes, planes: Input and output channels.
        stride: Downsampling of the block (1 or 2).
        downsample: Shortcut module, or None for the identity.
        groups, base_width: Must be 1 and 64 (as torchvision).
        filter_size: None (baseline) or the blur filter; with ``stride > 1`` the second conv
            becomes ``Sequential(BlurPool2d(planes), conv3x3)`` and the first runs at stride 1.
        padding_mode: Padding of the blur.
    """

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        *,
        filter_size: FilterSpec | None = None,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError(
                f"`BasicBlock`: `groups` and `base_width` must be 1 and 64, got {groups!r} and {base_width!r}. "
                "Use Bottleneck for grouped or wide blocks."
            )
        blur = filter_size if stride > 1 else None  # the filter when this block blurs, else None
        self.conv1 = _conv3x3(inplanes, planes, 1 if blur is not None else stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        conv2 = _conv3x3(planes, planes)
        self.conv2 = _blur_then(planes, stride, conv2, blur, padding_mode) if blur is not None else conv2
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))  # (N, planes, H/s, W/s)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (grouped) conv, 1x1 expand (ResNet-50+, ResNeXt, Wide ResNet).

    Args:
        inplanes, planes: Input channels, and output channels divided by 4.
        stride: Downsampling of the block, on the 3x3 conv (ResNet "v1.5").
        downsample: Shortcut module, or None for the identity.
        groups: Groups of the 3x3 conv (ResNeXt cardinality).
        base_width: Width per group; the 3x3 conv has ``planes * base_width / 64 * groups`` channels.
        filter_size: None (baseline) or the blur filter; with ``stride > 1`` the 3x3 conv runs at
            stride 1 and ``conv3`` becomes ``Sequential(BlurPool2d(width), conv1x1)``.
        padding_mode: Padding of the blur.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        *,
        filter_size: FilterSpec | None = None,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        blur = filter_size if stride > 1 else None  # the filter when this block blurs, else None
        self.conv1 = _conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, 1 if blur is not None else stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        conv3 = _conv1x1(width, planes * self.expansion)
        self.conv3 = _blur_then(width, stride, conv3, blur, padding_mode) if blur is not None else conv3
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))  # (N, 4 * planes, H/s, W/s)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet family for 224x224 ImageNet inputs (any size >= 32 works), baseline or anti-aliased.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: Blocks per stage, e.g. ``(3, 4, 6, 3)`` for ResNet-50.
        num_classes: Outputs of ``fc``.
        zero_init_residual: Zero the last BN of each block, so every block starts as the identity.
        groups, width_per_group: ResNeXt cardinality and width (Wide ResNet: ``width_per_group=128``).
        filter_size: None for the baseline (torchvision layout), or the blur filter (int taps or
            ``"rect2"``, ``"tri3"``, ``"tri4"``, ``"bin5"``) for the anti-aliased network.
        padding_mode: Padding of the blur ("reflect", "replicate", "zeros", "circular").

    Shape:
        ``(N, 3, H, W) -> (N, num_classes)``.

    Examples:
        >>> net = ResNet(BasicBlock, (1, 1, 1, 1), num_classes=10, filter_size=3).eval()
        >>> net(torch.randn(1, 3, 64, 64)).shape
        torch.Size([1, 10])
        >>> type(net.maxpool[1]).__name__, net.layer2[0].conv2[0].filter_size
        ('BlurPool2d', 3)
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int] | list[int],
        num_classes: int = 1000,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        *,
        filter_size: FilterSpec | None = None,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        _check_padding_mode(padding_mode, "ResNet")
        if len(layers) != 4:
            raise ValueError(f"`ResNet`: `layers` must hold 4 block counts, got {layers!r}.")
        self.filter_size = filter_size
        self.padding_mode = padding_mode
        self.groups = groups
        self.base_width = width_per_group
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        if filter_size is None:
            self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1)
        else:
            self.maxpool = nn.Sequential(nn.MaxPool2d(2, 1), BlurPool2d(64, filter_size, 2, padding_mode))
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        out = planes * block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            if self.filter_size is not None and stride != 1:
                downsample = nn.Sequential(
                    BlurPool2d(self.inplanes, self.filter_size, stride, self.padding_mode),
                    _conv1x1(self.inplanes, out),
                    nn.BatchNorm2d(out),
                )
            else:
                downsample = nn.Sequential(_conv1x1(self.inplanes, out, stride), nn.BatchNorm2d(out))
        make = partial(block, groups=self.groups, base_width=self.base_width, filter_size=self.filter_size,
                       padding_mode=self.padding_mode)
        stage = [make(self.inplanes, planes, stride, downsample)]
        self.inplanes = out
        stage += [make(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, 512 * expansion, H/32, W/32)
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (N, num_classes)


_resnet_doc = partial(_builder_doc, args="**kwargs: Passed to :class:`ResNet` (``zero_init_residual``).")


@register_model
@_resnet_doc(
    "ResNet-18 (He et al., 2016), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("resnet18()", 11689512) + """
>>> net = resnet18(filter_size="tri3", num_classes=10)
>>> net.layer2[0].conv2
Sequential(
  (0): BlurPool2d(128, filter_size='tri3', stride=(2, 2), padding_mode='reflect')
  (1): Conv2d(128, 128, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
)
""",
)
def resnet18(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> ResNet:
    return _build(
        "resnet18", partial(ResNet, BasicBlock, (2, 2, 2, 2), **kwargs),
        filter_size, weights, progress, num_classes, padding_mode,
    )


@register_model
@_resnet_doc(
    "ResNet-34 (He et al., 2016), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("resnet34()", 21797672),
)
def resnet34(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> ResNet:
    return _build(
        "resnet34", partial(ResNet, BasicBlock, (3, 4, 6, 3), **kwargs),
        filter_size, weights, progress, num_classes, padding_mode,
    )


@register_model
@_resnet_doc(
    "ResNet-50 (He et al., 2016; stride on the 3x3 conv), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("resnet50()", 25557032),
)
def resnet50(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> ResNet:
    return _build(
        "resnet50", partial(ResNet, Bottleneck, (3, 4, 6, 3), **kwargs),
        filter_size, weights, progress, num_classes, padding_mode,
    )


@register_model
@_resnet_doc(
    "ResNet-101 (He et al., 2016), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("resnet101()", 44549160),
)
def resnet101(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> ResNet:
    return _build(
        "resnet101", partial(ResNet, Bottleneck, (3, 4, 23, 3), **kwargs),
        filter_size, weights, progress, num_classes, padding_mode,
    )


@register_model
@_resnet_doc(
    "ResNet-152 (He et al., 2016), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("resnet152()", 60192808),
)
def resnet152(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> ResNet:
    return _build(
        "resnet152", partial(ResNet, Bottleneck, (3, 8, 36, 3), **kwargs),
        filter_size, weights, progress, num_classes, padding_mode,
    )


@register_model
@_resnet_doc(
    "ResNeXt-50 32x4d (Xie et al., 2017), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("resnext50_32x4d()", 25028904),
)
def resnext50_32x4d(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> ResNet:
    return _build(
        "resnext50_32x4d", partial(ResNet, Bottleneck, (3, 4, 6, 3), groups=32, width_per_group=4, **kwargs),
        filter_size, weights, progress, num_classes, padding_mode,
    )


@register_model
@_resnet_doc(
    "ResNeXt-101 32x8d (Xie et al., 2017), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("resnext101_32x8d()", 88791336),
)
def resnext101_32x8d(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> ResNet:
    return _build(
        "resnext101_32x8d", partial(ResNet, Bottleneck, (3, 4, 23, 3), groups=32, width_per_group=8, **kwargs),
        filter_size, weights, progress, num_classes, padding_mode,
    )


@register_model
@_resnet_doc(
    "Wide ResNet-50-2 (Zagoruyko & Komodakis, 2016: bottlenecks twice as wide), anti-aliased with ``filter_size``.",
    examples=_count_example("wide_resnet50_2()", 68883240),
)
def wide_resnet50_2(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> ResNet:
    return _build(
        "wide_resnet50_2", partial(ResNet, Bottleneck, (3, 4, 6, 3), width_per_group=128, **kwargs),
        filter_size, weights, progress, num_classes, padding_mode,
    )


@register_model
@_resnet_doc(
    "Wide ResNet-101-2 (Zagoruyko & Komodakis, 2016), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("wide_resnet101_2()", 126886696),
)
def wide_resnet101_2(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> ResNet:
    return _build(
        "wide_resnet101_2", partial(ResNet, Bottleneck, (3, 4, 23, 3), width_per_group=128, **kwargs),
        filter_size, weights, progress, num_classes, padding_mode,
    )
