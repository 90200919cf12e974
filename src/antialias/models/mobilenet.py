"""MobileNetV2, baseline or anti-aliased (Zhang, ICML 2019).

Architecture of Sandler et al. (CVPR 2018). ``filter_size=None`` builds it in torchvision's
``state_dict`` layout. An int or filter name builds the layout of the published anti-aliased
checkpoints (adobe/antialiased-cnns): the stem conv keeps its stride 2; each inverted residual
with stride 2 runs its depthwise conv at stride 1 and puts ``BlurPool2d(hidden)`` after its ReLU6,
before the pointwise-linear conv (``conv.2``); and ``classifier`` is ``Sequential(Linear)``.

Deviation: that checkpoint layout has no dropout inside ``classifier``; the anti-aliased network
keeps torchvision's dropout (``dropout=0.2``) as the parameter-free ``self.dropout`` before it,
which changes nothing in eval mode. Pass ``dropout=0.0`` to train without it.
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
    register_model,
)

__all__ = ["InvertedResidual", "MobileNetV2", "mobilenet_v2"]

# (expansion t, output channels c, repeats n, first stride s) of each stage (Sandler et al., Table 2).
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to a multiple of ``divisor``, never going down by more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn_relu6(cin: int, cout: int, kernel_size: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise 3x3, project (1x1, linear); a residual when shapes allow.

    Args:
        inp, oup: Input and output channels.
        stride: 1 or 2.
        expand_ratio: Hidden channels as a multiple of ``inp``.
        filter_size: None, or the blur filter: with ``stride=2`` the depthwise conv runs at stride 1
            and ``BlurPool2d(hidden)`` follows its ReLU6.
        padding_mode: Padding of the blur.
    """

    def __init__(
        self,
        inp: int,
        oup: int,
        stride: int,
        expand_ratio: int,
        *,
        filter_size: FilterSpec | None = None,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"`InvertedResidual`: `stride` must be 1 or 2, got {stride!r}.")
        hidden = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        blur = filter_size if stride > 1 else None  # the filter when this block blurs, else None
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_relu6(inp, hidden, kernel_size=1))
        layers.append(_conv_bn_relu6(hidden, hidden, stride=1 if blur is not None else stride, groups=hidden))
        if blur is not None:
            layers.append(BlurPool2d(hidden, blur, stride, padding_mode))
        layers += [nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)  # (N, oup, H/s, W/s)
        return x + out if self.use_res_connect else out


class MobileNetV2(nn.Module):
    """MobileNetV2 for ImageNet, baseline or anti-aliased.

    Args:
        num_classes: Outputs of the classifier.
        width_mult: Channel multiplier (channels rounded to multiples of 8).
        dropout: Dropout before the last linear layer.
        filter_size: None for the baseline (torchvision layout), or the blur filter.
        padding_mode: Padding of the blur.

    Shape:
        ``(N, 3, H, W) -> (N, num_classes)``.

    Examples:
        >>> net = MobileNetV2(num_classes=7, width_mult=0.25, filter_size="tri3").eval()
        >>> net(torch.randn(1, 3, 64, 64)).shape
        torch.Size([1, 7])
    """

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        dropout: float = 0.2,
        *,
        filter_size: FilterSpec | None = None,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        _check_padding_mode(padding_mode, "MobileNetV2")
        channels = _make_divisible(32 * width_mult)
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [_conv_bn_relu6(3, channels, stride=2)]
        for t, c, n, s in _SETTINGS:
            out = _make_divisible(c * width_mult)
            for i in range(n):
                block = InvertedResidual(
                    channels, out, s if i == 0 else 1, t, filter_size=filter_size, padding_mode=padding_mode
                )
                features.append(block)
                channels = out
        features.append(_conv_bn_relu6(channels, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        linear = nn.Linear(self.last_channel, num_classes)
        if filter_size is None:
            self.dropout: nn.Module = nn.Identity()
            self.classifier = nn.Sequential(nn.Dropout(dropout), linear)
        else:
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Sequential(linear)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (N, last_channel, H/32, W/32)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(self.dropout(x))  # (N, num_classes)


@register_model
@_builder_doc(
    "MobileNetV2, anti-aliased with ``filter_size`` (None: baseline).",
    args="**kwargs: Passed to :class:`MobileNetV2` (``width_mult``, ``dropout``).",
    examples="""
        >>> with torch.device("meta"):  # shapes only: no memory, no init cost
        ...     net = mobilenet_v2(num_classes=10)
        >>> sum(p.numel() for p in net.parameters())
        2236682
        >>> net.classifier
        Sequential(
          (0): Linear(in_features=1280, out_features=10, bias=True)
        )
    """,
)
def mobilenet_v2(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> MobileNetV2:
    return _build(
        "mobilenet_v2", partial(MobileNetV2, **kwargs), filter_size, weights, progress, num_classes, padding_mode
    )
