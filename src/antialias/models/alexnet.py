"""AlexNet, baseline or anti-aliased (Zhang, ICML 2019).

Architecture of Krizhevsky (2014, "One weird trick", the single-GPU variant torchvision ships).
``filter_size=None`` builds it in torchvision's ``state_dict`` layout. An int or filter name builds
the layout of the published anti-aliased checkpoints (adobe/antialiased-cnns): the 11x11 stem conv
runs at stride 2 (not 4), followed by ReLU and a ``BlurPool2d``; every ``MaxPool2d(3, 2)`` becomes
``MaxPool2d(3, 1)`` then ``BlurPool2d``. The classifier is unchanged.
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

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    """AlexNet for ImageNet, baseline or anti-aliased.

    Args:
        num_classes: Outputs of the last linear layer.
        dropout: Dropout probability of the classifier.
        filter_size: None for the baseline (torchvision layout), or the blur filter.
        padding_mode: Padding of the blur.

    Shape:
        ``(N, 3, H, W) -> (N, num_classes)``; ``H, W >= 63`` for the baseline. The anti-aliased
        network's last blur sees a map too short to reflect below ``H, W = 95`` (79 for ``rect2``)
        and warns (it then pads with "replicate").

    Examples:
        >>> AlexNet(num_classes=10, filter_size=4)(torch.randn(1, 3, 96, 96)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self,
        num_classes: int = 1000,
        dropout: float = 0.5,
        *,
        filter_size: FilterSpec | None = None,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        _check_padding_mode(padding_mode, "AlexNet")

        def pool(channels: int) -> list[nn.Module]:
            if filter_size is None:
                return [nn.MaxPool2d(3, 2)]
            return [nn.MaxPool2d(3, 1), BlurPool2d(channels, filter_size, 2, padding_mode)]

        if filter_size is None:
            stem: list[nn.Module] = [nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True)]
        else:
            stem = [nn.Conv2d(3, 64, 11, 2, 2), nn.ReLU(inplace=True), BlurPool2d(64, filter_size, 2, padding_mode)]
        self.features = nn.Sequential(
            *stem,
            *pool(64),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            *pool(192),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            *pool(256),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))  # (N, 256, 6, 6)
        return self.classifier(torch.flatten(x, 1))  # (N, num_classes)


@register_model
@_builder_doc(
    "AlexNet, anti-aliased with ``filter_size`` (None: baseline).",
    args="**kwargs: Passed to :class:`AlexNet` (``dropout``).",
    examples="""
        >>> with torch.device("meta"):  # shapes only: no memory, no init cost
        ...     net = alexnet()
        >>> sum(p.numel() for p in net.parameters())  # the blur adds no parameters
        61100840
        >>> net.features[:3]
        Sequential(
          (0): Conv2d(3, 64, kernel_size=(11, 11), stride=(2, 2), padding=(2, 2))
          (1): ReLU(inplace=True)
          (2): BlurPool2d(64, filter_size=4, stride=(2, 2), padding_mode='reflect')
        )
    """,
)
def alexnet(
    *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, progress: bool = True,
    num_classes: int = DEFAULT_NUM_CLASSES, padding_mode: str = "reflect", **kwargs: Any,
) -> AlexNet:
    return _build("alexnet", partial(AlexNet, **kwargs), filter_size, weights, progress, num_classes, padding_mode)
