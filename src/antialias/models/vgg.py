"""VGG-11/13/16/19, with and without batch norm, baseline or anti-aliased (Zhang, ICML 2019).

Architecture of Simonyan & Zisserman (ICLR 2015), with batch norm after each conv in the ``_bn``
versions. ``filter_size=None`` builds the unmodified network in torchvision's ``state_dict``
layout; an int or filter name replaces every ``MaxPool2d(2, 2)`` by ``MaxPool2d(2, stride=1)``
followed by ``BlurPool2d(C)``, the layout of the published anti-aliased checkpoints
(adobe/antialiased-cnns). The blur adds a module per pool, so the indices in ``features`` shift by
one per pool relative to the baseline; the classifier is the same.
"""

from __future__ import annotations

from collections.abc import Callable
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
    _count_example,
    register_model,
)

__all__ = [
    "VGG",
    "make_vgg_features",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
]

#: Conv widths per configuration, ``"M"`` a 2x2 max-pool (the paper's configurations A, B, D, E).
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_vgg_features(
    cfg: list[int | str],
    batch_norm: bool,
    *,
    in_channels: int = 3,
    filter_size: FilterSpec | None = None,
    padding_mode: str = "reflect",
) -> nn.Sequential:
    """The ``features`` stack: 3x3 convs (+BN) + ReLU, and a pool at each ``"M"``.

    Args:
        cfg: Conv output channels and ``"M"`` for pools.
        batch_norm: Put a BatchNorm2d after each conv.
        in_channels: Input channels.
        filter_size: None: ``MaxPool2d(2, 2)``; else ``MaxPool2d(2, 1)`` then ``BlurPool2d``.
        padding_mode: Padding of the blur.

    Examples:
        >>> make_vgg_features([8, "M"], False, filter_size=4)
        Sequential(
          (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
          (1): ReLU(inplace=True)
          (2): MaxPool2d(kernel_size=2, stride=1, padding=0, dilation=1, ceil_mode=False)
          (3): BlurPool2d(8, filter_size=4, stride=(2, 2), padding_mode='reflect')
        )
    """
    layers: list[nn.Module] = []
    channels = in_channels
    for v in cfg:
        if v == "M":
            if filter_size is None:
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.MaxPool2d(2, 1), BlurPool2d(channels, filter_size, 2, padding_mode)]
            continue
        if not isinstance(v, int):
            raise ValueError(f"`make_vgg_features`: `cfg` must hold ints and 'M', got {v!r}.")
        layers.append(nn.Conv2d(channels, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG for ImageNet: ``features``, a 7x7 adaptive average pool, a 3-layer classifier.

    Args:
        features: The conv stack (see :func:`make_vgg_features`), ending in 512 channels.
        num_classes: Outputs of the last linear layer.
        dropout: Dropout probability of the classifier.
        init_weights: Initialise as torchvision (Kaiming for convs, N(0, 0.01) for linears).

    Shape:
        ``(N, 3, H, W) -> (N, num_classes)``; any ``H, W >= 32``.

    Examples:
        >>> net = VGG(make_vgg_features([8, "M"], True, filter_size=3), num_classes=5, last_channels=8)
        >>> net(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 5])
    """

    def __init__(
        self,
        features: nn.Module,
        num_classes: int = 1000,
        dropout: float = 0.5,
        init_weights: bool = True,
        *,
        last_channels: int = 512,
    ) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(last_channels * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))  # (N, 512, 7, 7)
        return self.classifier(torch.flatten(x, 1))  # (N, num_classes)


def _vgg(cfg: str, batch_norm: bool, **kwargs: Any) -> Callable[..., VGG]:
    """The constructor :func:`~antialias.models._registry._build` calls for a VGG configuration."""

    def make(*, num_classes: int, filter_size: FilterSpec | None, padding_mode: str) -> VGG:
        features = make_vgg_features(CONFIGS[cfg], batch_norm, filter_size=filter_size, padding_mode=padding_mode)
        return VGG(features, num_classes, **kwargs)

    return make


_vgg_doc = partial(_builder_doc, args="**kwargs: Passed to :class:`VGG` (``dropout``, ``init_weights``).")


@register_model
@_vgg_doc(
    "VGG-11 (configuration A), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("vgg11()", 132863336),
)
def vgg11(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> VGG:
    return _build("vgg11", _vgg("A", False, **kwargs), filter_size, weights, progress, num_classes, padding_mode)


@register_model
@_vgg_doc(
    "VGG-11 with batch norm, anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("vgg11_bn()", 132868840),
)
def vgg11_bn(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> VGG:
    return _build("vgg11_bn", _vgg("A", True, **kwargs), filter_size, weights, progress, num_classes, padding_mode)


@register_model
@_vgg_doc(
    "VGG-13 (configuration B), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("vgg13()", 133047848),
)
def vgg13(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> VGG:
    return _build("vgg13", _vgg("B", False, **kwargs), filter_size, weights, progress, num_classes, padding_mode)


@register_model
@_vgg_doc(
    "VGG-13 with batch norm, anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("vgg13_bn()", 133053736),
)
def vgg13_bn(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> VGG:
    return _build("vgg13_bn", _vgg("B", True, **kwargs), filter_size, weights, progress, num_classes, padding_mode)


@register_model
@_vgg_doc(
    "VGG-16 (configuration D), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("vgg16()", 138357544),
)
def vgg16(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> VGG:
    return _build("vgg16", _vgg("D", False, **kwargs), filter_size, weights, progress, num_classes, padding_mode)


@register_model
@_vgg_doc(
    "VGG-16 with batch norm, anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("vgg16_bn()", 138365992),
)
def vgg16_bn(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> VGG:
    return _build("vgg16_bn", _vgg("D", True, **kwargs), filter_size, weights, progress, num_classes, padding_mode)


@register_model
@_vgg_doc(
    "VGG-19 (configuration E), anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("vgg19()", 143667240),
)
def vgg19(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> VGG:
    return _build("vgg19", _vgg("E", False, **kwargs), filter_size, weights, progress, num_classes, padding_mode)


@register_model
@_vgg_doc(
    "VGG-19 with batch norm, anti-aliased with ``filter_size`` (None: baseline).",
    examples=_count_example("vgg19_bn()", 143678248),
)
def vgg19_bn(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> VGG:
    return _build("vgg19_bn", _vgg("E", True, **kwargs), filter_size, weights, progress, num_classes, padding_mode)
