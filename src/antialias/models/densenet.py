"""DenseNet-121/161/169/201, baseline or anti-aliased (Zhang, ICML 2019).

Architecture of Huang et al. (CVPR 2017), DenseNet-BC (bottleneck layers, compression 0.5).
``filter_size=None`` builds it in torchvision's ``state_dict`` layout. An int or filter name builds
the layout of the published anti-aliased checkpoints (adobe/antialiased-cnns): the stem's
``MaxPool2d(3, 2, 1)`` becomes ``max0`` = ``MaxPool2d(3, 1, 1)`` then ``pool0`` = ``BlurPool2d``,
and each transition's ``AvgPool2d(2)`` becomes ``pool`` = ``BlurPool2d`` (average pooling is the
``rect2`` blur; the paper swaps it for the stronger filter).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
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

__all__ = ["DenseNet", "densenet121", "densenet161", "densenet169", "densenet201"]


class _DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (to ``bn_size * growth_rate``), BN-ReLU-conv3x3 (to ``growth_rate``)."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(mid)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(mid, growth_rate, 3, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = torch.cat(features, 1)  # (N, in_channels, H, W)
        x = self.conv1(self.relu1(self.norm1(x)))
        x = self.conv2(self.relu2(self.norm2(x)))  # (N, growth_rate, H, W)
        return F.dropout(x, p=self.drop_rate, training=self.training)


class _DenseBlock(nn.ModuleDict):
    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = _DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, drop_rate)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)  # (N, in + num_layers * growth_rate, H, W)


class _Transition(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, filter_size: FilterSpec | None, padding_mode: str) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(in_channels))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(in_channels, out_channels, 1, bias=False))
        if filter_size is None:
            self.add_module("pool", nn.AvgPool2d(2, 2))
        else:
            self.add_module("pool", BlurPool2d(out_channels, filter_size, 2, padding_mode))


class DenseNet(nn.Module):
    """DenseNet-BC for ImageNet, baseline or anti-aliased.

    Args:
        growth_rate: Channels each dense layer adds.
        block_config: Dense layers per block.
        num_init_features: Channels of the stem conv.
        bn_size: Bottleneck width, as a multiple of ``growth_rate``.
        drop_rate: Dropout after each dense layer.
        num_classes: Outputs of the classifier.
        filter_size: None for the baseline (torchvision layout), or the blur filter.
        padding_mode: Padding of the blur.

    Shape:
        ``(N, 3, H, W) -> (N, num_classes)``.

    Examples:
        >>> net = DenseNet(8, (1, 1), 16, num_classes=3, filter_size=4).eval()
        >>> net(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 3])
        >>> [name for name, _ in net.features.named_children()][:5]
        ['conv0', 'norm0', 'relu0', 'max0', 'pool0']
    """

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        num_classes: int = 1000,
        *,
        filter_size: FilterSpec | None = None,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        _check_padding_mode(padding_mode, "DenseNet")
        stem: list[tuple[str, nn.Module]] = [
            ("conv0", nn.Conv2d(3, num_init_features, 7, 2, 3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU(inplace=True)),
        ]
        if filter_size is None:
            stem.append(("pool0", nn.MaxPool2d(3, 2, 1)))
        else:
            stem += [
                ("max0", nn.MaxPool2d(3, 1, 1)),
                ("pool0", BlurPool2d(num_init_features, filter_size, 2, padding_mode)),
            ]
        self.features = nn.Sequential(OrderedDict(stem))
        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(
                f"denseblock{i + 1}", _DenseBlock(num_layers, channels, growth_rate, bn_size, drop_rate)
            )
            channels += num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(
                    f"transition{i + 1}", _Transition(channels, channels // 2, filter_size, padding_mode)
                )
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.features(x))  # (N, C, H/32, W/32)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)  # (N, num_classes)


_densenet_doc = partial(_builder_doc, args="**kwargs: Passed to :class:`DenseNet` (``bn_size``, ``drop_rate``).")


@register_model
@_densenet_doc(
    "DenseNet-121 (growth 32, blocks 6-12-24-16), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("densenet121()", 7978856),
)
def densenet121(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> DenseNet:
    return _build(
        "densenet121", partial(DenseNet, 32, (6, 12, 24, 16), 64, **kwargs),
        filter_size, weights, progress, num_classes, padding_mode,
    )


@register_model
@_densenet_doc(
    "DenseNet-161 (growth 48, blocks 6-12-36-24), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("densenet161()", 28681000),
)
def densenet161(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> DenseNet:
    return _build(
        "densenet161", partial(DenseNet, 48, (6, 12, 36, 24), 96, **kwargs),
        filter_size, weights, progress, num_classes, padding_mode,
    )


@register_model
@_densenet_doc(
    "DenseNet-169 (growth 32, blocks 6-12-32-32), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("densenet169()", 14149480),
)
def densenet169(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> DenseNet:
    return _build(
        "densenet169", partial(DenseNet, 32, (6, 12, 32, 32), 64, **kwargs),
        filter_size, weights, progress, num_classes, padding_mode,
    )


@register_model
@_densenet_doc(
    "DenseNet-201 (growth 32, blocks 6-12-48-32), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("densenet201()", 20013928),
)
def densenet201(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> DenseNet:
    return _build(
        "densenet201", partial(DenseNet, 32, (6, 12, 48, 32), 64, **kwargs),
        filter_size, weights, progress, num_classes, padding_mode,
    )
