"""Helpers of the integration tier: the architectures, a fixed input, and graph analyses written
independently of :mod:`antialias.convert` (their own tracer and their own rules), so a test that
compares the two can fail.

Only random weights: every builder is called with ``weights=None`` / ``pretrained=False``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import timm
import timm.layers
import torch
import torch.fx as fx
import torch.nn.functional as F
import torchvision
from torch import nn

import antialias.layers as aa_layers
from antialias.convert import PreBlurConv1d, PreBlurConv2d, PreBlurConv3d


@dataclass(frozen=True)
class Arch:
    """One architecture of the tier: where it comes from, how to build it, the input it gets."""

    source: str  # "torchvision" or "timm"
    name: str
    size: int  # side of the square input (small where the architecture allows, to keep CPU time low)
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.source}.{self.name}"

    def build(self) -> nn.Module:
        torch.manual_seed(0)  # the same random weights on every run
        if self.source == "torchvision":
            model = torchvision.models.get_model(self.name, weights=None, **self.kwargs)
        else:
            model = timm.create_model(self.name, pretrained=False, **self.kwargs)
        calibrate_batchnorm(model, natural_images(8, self.size, seed=1))
        return model.eval()


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, x: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``x``'s activations.

    With random weights and the default statistics (mean 0, variance 1) the signal of a deep network
    vanishes in eval mode: torchvision's googlenet (weights of std 0.01) gives the same logits for
    every input. Real statistics make every network depend on its input, as a trained one does.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch sets the statistics exactly
    model.train()
    model(x)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


# 64-96 px: every architecture below still downsamples at each of its stages (the last map is 2x2 or
# 3x3), at a fraction of the CPU time of 224 px. ViT is built for its input size (its position
# embedding is sized by it); googlenet without its training-only auxiliary heads.
ARCHS: list[Arch] = [
    Arch("torchvision", "resnet18", 96),
    Arch("torchvision", "resnet50", 64),
    Arch("torchvision", "resnext50_32x4d", 64),
    Arch("torchvision", "wide_resnet50_2", 64),
    Arch("torchvision", "vgg11_bn", 64),
    Arch("torchvision", "densenet121", 64),
    Arch("torchvision", "mobilenet_v2", 96),
    Arch("torchvision", "mobilenet_v3_large", 96),
    Arch("torchvision", "efficientnet_b0", 96),
    Arch("torchvision", "regnet_x_400mf", 96),
    Arch("torchvision", "shufflenet_v2_x1_0", 96),
    Arch("torchvision", "mnasnet1_0", 96),
    Arch("torchvision", "squeezenet1_1", 96),
    Arch("torchvision", "googlenet", 96, {"aux_logits": False, "init_weights": True}),
    Arch("torchvision", "convnext_tiny", 64),
    Arch("torchvision", "alexnet", 96),
    Arch("timm", "resnet18", 96),
    Arch("timm", "resnet26d", 96),
    Arch("timm", "efficientnet_b0", 96),
    Arch("timm", "tf_efficientnet_lite0", 96),  # TF-"same" padding computed in forward (Conv2dSame)
    Arch("timm", "mobilenetv3_large_100", 96),
    Arch("timm", "regnetx_002", 96),
    Arch("timm", "cspdarknet53", 64),
    Arch("timm", "lcnet_050", 96),
    Arch("timm", "gernet_s", 96),
    Arch("timm", "convnext_atto", 64),
    Arch("timm", "vit_tiny_patch16_224", 64, {"img_size": 64}),
    Arch("timm", "rexnet_100", 96),
    Arch("timm", "dla34", 96),
    Arch("timm", "ese_vovnet19b_dw", 96),  # MaxPool2d(3, 2, ceil_mode=True) between stages
]

ARCH_BY_ID = {a.id: a for a in ARCHS}


# --------------------------------------------------------------------------- the fixed input


def natural_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``n`` images with a natural image's 1/f amplitude spectrum, per-channel zero mean, unit std.

    White noise would put most of its energy at the frequencies subsampling aliases, which is
    the worst case rather than the case users meet; photos fall off as 1/f.
    """
    gen = torch.Generator().manual_seed(seed)
    fy = torch.fft.fftfreq(size).reshape(-1, 1)
    fx_ = torch.fft.rfftfreq(size).reshape(1, -1)
    amplitude = 1.0 / torch.sqrt(fy**2 + fx_**2).clamp_min(1.0 / size)
    phase = torch.rand(n, 3, *amplitude.shape, generator=gen) * 2 * math.pi
    images = torch.fft.irfft2(amplitude * torch.exp(1j * phase), s=(size, size))
    images = images - images.mean(dim=(-2, -1), keepdim=True)
    return (images / images.std(dim=(-2, -1), keepdim=True)).float()


@torch.no_grad()
def shift_change(model: nn.Module, x: torch.Tensor) -> float:
    """Mean absolute logit change between each image of ``x`` and itself rolled by 1 px (down, and
    right), relative to the mean absolute logit difference between different images of ``x``.

    The denominator is what the logits do when the content changes: a model whose logits merely
    shrank, or that ignores its input, does not pass for a shift-invariant one.
    """
    rolled = [torch.roll(x, 1, dims=-2), torch.roll(x, 1, dims=-1)]
    out = model(torch.cat([x, *rolled]))
    base, *moved = out.split(x.shape[0])
    change = torch.stack([(m - base).abs().mean() for m in moved]).mean()
    between = (base - base.roll(1, dims=0)).abs().mean()
    if between <= 1e-6 * base.abs().mean():
        raise ValueError(f"the logits hardly depend on the input ({float(between):.3g}): nothing to compare")
    return float(change / between)


# --------------------------------------------------------------------------- tracing


ACT_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.SiLU, nn.GELU, nn.ELU, nn.CELU, nn.SELU, nn.Mish,
    nn.Hardswish, nn.Hardtanh, nn.Softplus, nn.Tanh, nn.Sigmoid,
)
ACT_FUNCTIONS: set[Callable[..., Any]] = {
    F.relu, F.relu_, torch.relu, torch.relu_, F.relu6, F.leaky_relu, F.silu, F.gelu, F.elu, F.selu, F.celu,
    F.mish, F.hardswish, F.hardtanh, F.softplus, torch.tanh, torch.sigmoid, F.prelu,
}
ACT_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_"}
NORM_MODULES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm,
    nn.Identity, nn.Dropout, nn.Dropout2d,
)
NORM_FUNCTIONS: set[Callable[..., Any]] = {F.batch_norm, F.group_norm, F.layer_norm, F.instance_norm, F.dropout}

# Already anti-aliased: never traced into, and a strided one is blurred by construction. _Filtered is
# the base of every antialias layer that holds a blur filter (BlurPool, MaxBlurPool, convert's
# AvgBlurPool drop-ins), so a new such layer needs no entry here.
BLUR_MODULES: tuple[type[nn.Module], ...] = (
    aa_layers._Filtered,
    aa_layers.ConvBlurPool2d, aa_layers.BlurConv2d,
    PreBlurConv1d, PreBlurConv2d, PreBlurConv3d,
    timm.layers.BlurPool2d,
)
STRIDED_MODULES: tuple[type[nn.Module], ...] = (
    nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
)


def _timm_notrace() -> tuple[set[type[nn.Module]], set[Callable[..., Any]]]:
    """The modules and functions timm itself declares untraceable by torch.fx (its own fx support)."""
    from timm.layers import _fx

    return set(_fx.get_notrace_modules()), set(_fx.get_notrace_functions())


class Tracer(fx.Tracer):
    """torch.fx's tracer, with convs, pools and blur layers (of any class) kept as leaves and timm's
    own non-traceable modules and functions respected."""

    def __init__(self) -> None:
        modules, functions = _timm_notrace()
        super().__init__(autowrap_functions=tuple(functions))
        self._leaves = (*STRIDED_MODULES, *BLUR_MODULES, *modules)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return (
            isinstance(m, self._leaves)
            or type(m).__module__.startswith("antialias.")  # antialias's own layers are opaque here
            or super().is_leaf_module(m, module_qualified_name)
        )


def trace(model: nn.Module) -> fx.Graph:
    return Tracer().trace(model)


def _strides(m: nn.Module) -> tuple[int, ...]:
    stride = getattr(m, "stride", 1)
    if stride is None:  # a pool's stride defaults to its kernel size
        stride = m.kernel_size  # type: ignore[assignment]
    return tuple(stride) if isinstance(stride, (tuple, list)) else (int(stride),)


def _fused_act(m: nn.Module) -> bool:
    """A norm layer that also applies an activation (timm's BatchNormAct2d and kin hold it as ``.act``)."""
    act = getattr(m, "act", None)
    return isinstance(m, NORM_MODULES) and isinstance(act, nn.Module) and not isinstance(act, nn.Identity)


def _is_act_module(m: nn.Module) -> bool:
    return isinstance(m, ACT_MODULES) or type(m).__module__.startswith("timm.layers.activations")


def _classify(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    """"act", "norm+act", "norm" (shape-preserving, per-position) or "other"."""
    if node.op == "call_module":
        m = modules[str(node.target)]
        if _is_act_module(m):
            return "act"
        if _fused_act(m):
            return "norm+act"
        return "norm" if isinstance(m, NORM_MODULES) else "other"
    if node.op == "call_function":
        fn = node.target
        if fn in ACT_FUNCTIONS or getattr(fn, "__module__", "").startswith("timm.layers.activations"):
            return "act"
        return "norm" if fn in NORM_FUNCTIONS else "other"
    if node.op == "call_method":
        return "act" if node.target in ACT_METHODS else "other"
    return "other"


def activation_follows(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether the only consumer chain of ``node`` is norms then an activation (the paper's pattern)."""
    current = node
    while len(current.users) == 1:
        (user,) = current.users
        kind = _classify(user, modules)
        if kind in ("act", "norm+act"):
            return True
        if kind != "norm":
            return False
        current = user
    return False


def strided_convs(model: nn.Module) -> dict[str, bool]:
    """Every strided conv module called in ``model``'s forward -> whether an activation follows it."""
    graph = trace(model)
    modules = dict(model.named_modules(remove_duplicate=False))
    result: dict[str, bool] = {}
    for node in graph.nodes:
        if node.op != "call_module":
            continue
        m = modules[str(node.target)]
        if isinstance(m, nn.modules.conv._ConvNd) and any(s > 1 for s in _strides(m)):
            result[str(node.target)] = activation_follows(node, modules)
    return result


def _functional_stride(node: fx.Node) -> tuple[int, ...] | None:
    """The stride of a functional strided conv or pool node, None for any other node."""
    fn = node.target
    convs = (F.conv1d, F.conv2d, F.conv3d)
    pools = (F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)
    if node.op != "call_function" or fn not in (*convs, *pools):
        return None
    if fn in convs:  # conv(input, weight, bias=None, stride=1, ...)
        stride = node.args[3] if len(node.args) > 3 else node.kwargs.get("stride", 1)
    else:  # pool(input, kernel_size, stride=None, ...): None means the kernel size
        stride = node.args[2] if len(node.args) > 2 else node.kwargs.get("stride")
        if stride is None or stride == []:
            stride = node.args[1] if len(node.args) > 1 else node.kwargs["kernel_size"]
    return tuple(stride) if isinstance(stride, (tuple, list)) else (int(stride),)  # type: ignore[arg-type]


def _blur_before(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    src = node.args[0] if node.args else None
    return (
        isinstance(src, fx.Node)
        and src.op == "call_module"
        and isinstance(modules[str(src.target)], BLUR_MODULES)
    )


def unblurred_strided_ops(model: nn.Module) -> list[str]:
    """Strided convs and pools (modules and functions) of ``model``'s graph with no blur in or before them."""
    graph = trace(model)
    modules = dict(model.named_modules(remove_duplicate=False))
    found = []
    for node in graph.nodes:
        if node.op == "call_module":
            m = modules[str(node.target)]
            if isinstance(m, BLUR_MODULES) or not isinstance(m, STRIDED_MODULES):
                continue
            if any(s > 1 for s in _strides(m)) and not _blur_before(node, modules):
                found.append(f"{node.target} ({type(m).__name__}, stride={_strides(m)})")
        else:
            stride = _functional_stride(node)
            if stride is not None and any(s > 1 for s in stride) and not _blur_before(node, modules):
                found.append(f"{node.name} ({getattr(node.target, '__name__', node.target)}, stride={stride})")
    return found
