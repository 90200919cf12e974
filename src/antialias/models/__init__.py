"""Model zoo: baseline and anti-aliased architectures (Zhang, ICML 2019) behind one registry.

Every builder takes ``filter_size`` (None: the unmodified baseline in torchvision's ``state_dict``
layout; an int or ``"tri4"``-style name: the anti-aliased network in the layout of the published
anti-aliased checkpoints, which load with ``strict=True``) and ``weights``.

Examples:
    >>> import torch
    >>> from antialias.models import get_model, list_models
    >>> "resnet50" in list_models()
    True
    >>> net = get_model("resnet20_cifar", filter_size=4, in_channels=1, width=0.5).eval()
    >>> net(torch.randn(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from antialias.models import _weights, cifar, densenet, mobilenet, resnet, vgg
from antialias.models._registry import get_model, get_model_builder, list_models, register_model
from antialias.models._weights import *  # noqa: F403  (the published weights: enums, list_weights, ...)
from antialias.models.alexnet import AlexNet, alexnet
from antialias.models.cifar import *  # noqa: F403
from antialias.models.densenet import *  # noqa: F403
from antialias.models.mobilenet import *  # noqa: F403
from antialias.models.resnet import *  # noqa: F403
from antialias.models.transfer import TransferReport, transfer_baseline
from antialias.models.vgg import *  # noqa: F403

__all__ = [
    "AlexNet",
    "TransferReport",
    "alexnet",
    "get_model",
    "get_model_builder",
    "list_models",
    "register_model",
    "transfer_baseline",
]
__all__ += [name for name in _weights.__all__ if name != "resolve"]  # resolve: internal to builders
__all__ += cifar.__all__
__all__ += densenet.__all__
__all__ += mobilenet.__all__
__all__ += resnet.__all__
__all__ += vgg.__all__
