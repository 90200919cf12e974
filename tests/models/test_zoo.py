"""The model registry and builders: every registered model builds and runs, arguments reach the
layers, errors are clear, and the weights hook fixes the config and loads strictly."""

from __future__ import annotations

import sys
import types
import warnings

import pytest
import torch
from torch import nn
from zoo_helpers import check_logits, parity_fill, parity_input, reference_cases

import antialias.models as zoo
from antialias.layers import BlurPool2d, MaxBlurPool2d
from antialias.models import get_model, get_model_builder, list_models, register_model

IMAGENET = [
    "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
    "wide_resnet50_2", "wide_resnet101_2", "densenet121", "densenet161", "densenet169", "densenet201",
    "mobilenet_v2",
]
CIFAR = ["vgg13_bn_cifar", "resnet20_cifar", "resnet56_cifar"]


def blurs(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (BlurPool2d, MaxBlurPool2d))]


def test_registry_lists_every_architecture():
    assert set(IMAGENET + CIFAR) <= set(list_models())
    assert list_models() == sorted(list_models())
    assert list_models("vgg1?_bn") == ["vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]


# Every registered model, baseline and anti-aliased: builds, runs, and its output has the right shape.
# 96x96 is the smallest size at which every anti-aliased ImageNet model blurs no map too short to
# reflect (AlexNet's last pool): warnings are errors here.
@pytest.mark.parametrize("filter_size", [None, 4], ids=["baseline", "tri4"])
@pytest.mark.parametrize("name", list_models())
def test_every_model_builds_and_runs(name, filter_size):
    model = get_model(name, filter_size=filter_size, num_classes=7).eval()
    assert (len(blurs(model)) > 0) == (filter_size is not None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.inference_mode():
            out = model(torch.randn(2, 3, 96, 96))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", IMAGENET)
def test_builder_signature_is_typed_and_keyword_only(name):
    import inspect

    builder = get_model_builder(name)
    sig = inspect.signature(builder)
    for param in ("filter_size", "weights", "progress", "num_classes", "padding_mode"):
        assert sig.parameters[param].kind is inspect.Parameter.KEYWORD_ONLY
    assert repr(sig.parameters["filter_size"].default) == "4"
    assert repr(sig.parameters["num_classes"].default) == "1000"
    assert builder.__doc__ and builder.__annotations__["return"] != "nn.Module"
    with pytest.raises(TypeError):
        builder(4)


@pytest.mark.parametrize("filter_size, taps", [(2, 2), ("tri3", 3), ("Tri-4", 4), ("bin5", 5), (1, 1)])
def test_filter_size_and_padding_mode_reach_every_blur(filter_size, taps):
    model = get_model("resnet18", filter_size=filter_size, padding_mode="circular")
    layers = blurs(model)
    assert len(layers) == 1 + 3 * 2  # stem + (block conv2, shortcut) in layers 2-4
    for layer in layers:
        assert layer.padding_mode == "circular"
        assert layer.kernel.shape == (taps, taps)


def test_default_filter_is_tri4():
    assert {layer.kernel.shape for layer in blurs(zoo.mobilenet_v2())} == {(4, 4)}


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match=r"`name` must be a registered model, got 'resnt50'\. Did you mean 'resnet50'"):
        get_model("resnt50")
    with pytest.raises(ValueError, match="list_models"):
        get_model("no_such_thing_at_all")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"filter_size": "tri7"}, r"`filter_size` must be an int or one of"),
        ({"filter_size": 0}, r"`filter_size` must be >= 1"),
        ({"padding_mode": "reflection"}, r"`padding_mode` must be one of .* Did you mean 'reflect'"),
        ({"num_classes": 0}, r"`resnet18`: `num_classes` must be a positive int, got 0"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        zoo.resnet18(**kwargs)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="no_such_option"):
        zoo.resnet18(no_such_option=True)


def test_register_model_is_open_and_refuses_duplicates():
    @register_model("tiny_test_net")
    def tiny_test_net(*, filter_size=4, weights=None, num_classes=3):
        layers = [nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()]
        if filter_size is not None:
            layers.append(BlurPool2d(4, filter_size))
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))

    try:
        assert "tiny_test_net" in list_models()
        assert get_model("tiny_test_net", filter_size=3)[2].kernel.shape == (3, 3)
        assert not blurs(get_model("tiny_test_net", filter_size=None))
        with pytest.raises(ValueError, match=r"`name` must be unused, got 'tiny_test_net'"):
            register_model("tiny_test_net")(tiny_test_net)
        with pytest.raises(ValueError, match=r"`name` must be unused, got 'resnet18'"):
            register_model("resnet18")(tiny_test_net)
    finally:
        zoo._registry._MODELS.pop("tiny_test_net", None)


# --------------------------------------------------------------------------- weights hook


class FakeWeights:
    """Stands in for antialias.models._weights.Weights: reference-layout resnet18 Tri-3 weights."""

    def __init__(self) -> None:
        self.filter_size = 3
        self.meta = {"num_classes": 1000}
        self.calls: list[bool] = []

    def get_state_dict(self, progress: bool) -> dict:
        self.calls.append(progress)
        return parity_fill(reference_cases()["resnet18_lpf3"]["keys"])


@pytest.fixture
def fake_weights(monkeypatch):
    weights = FakeWeights()
    seen = []

    def resolve(w, arch):
        seen.append((w, arch))
        if arch != "resnet18":
            raise ValueError(f"weights for resnet18, not {arch}")
        return weights

    module = types.SimpleNamespace(resolve=resolve)
    monkeypatch.setitem(sys.modules, "antialias.models._weights", module)
    monkeypatch.setattr(zoo, "_weights", module, raising=False)
    weights.seen = seen
    return weights


def test_weights_fix_the_config_and_load_strictly(fake_weights):
    model = zoo.resnet18(weights="resnet18.fake", progress=False).eval()
    assert fake_weights.seen == [("resnet18.fake", "resnet18")]
    assert fake_weights.calls == [False]
    assert {layer.kernel.shape for layer in blurs(model)} == {(3, 3)}
    with torch.inference_mode():
        check_logits(model(parity_input(161)), reference_cases()["resnet18_lpf3"]["parity_odd"], "weights hook")


def test_weights_through_get_model_and_agreeing_arguments(fake_weights):
    assert blurs(get_model("resnet18", weights="w"))[0].kernel.shape == (3, 3)
    zoo.resnet18(weights="w", filter_size=3, num_classes=1000)
    zoo.resnet18(weights="w", filter_size="tri3")
    assert fake_weights.calls == [True, True, True]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"filter_size": 4}, r"`resnet18`: `filter_size` must match the weights \(3\), got 4"),
        ({"filter_size": None}, r"`filter_size` must match the weights \(3\), got None"),
        ({"num_classes": 10}, r"`resnet18`: `num_classes` must match the weights \(1000\), got 10"),
    ],
)
def test_weights_conflicting_arguments_raise(fake_weights, kwargs, match):
    with pytest.raises(ValueError, match=match):
        zoo.resnet18(weights="w", **kwargs)
    assert fake_weights.calls == []  # nothing was fetched


def test_weights_of_another_architecture_raise(fake_weights):
    with pytest.raises(ValueError, match="not resnet34"):
        zoo.resnet34(weights="w")


# --------------------------------------------------------------------------- CIFAR models


@pytest.mark.parametrize("filter_size", [None, 4, "bin5"])
@pytest.mark.parametrize("name", CIFAR)
@pytest.mark.parametrize("in_channels, size", [(1, 28), (3, 32)])
def test_cifar_models_on_small_images_without_warnings(name, filter_size, in_channels, size):
    model = get_model(name, filter_size=filter_size, in_channels=in_channels, width=0.25, num_classes=10)
    x = torch.randn(4, in_channels, size, size, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = model(x)
        out.square().sum().backward()
    assert out.shape == (4, 10)
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("shortcut", ["A", "B"])
@pytest.mark.parametrize("name", CIFAR)
def test_cifar_width_and_layout(name, shortcut):
    kwargs = {} if name.startswith("vgg") else {"shortcut": shortcut}
    narrow = get_model(name, filter_size=None, width=0.5, **kwargs)
    wide = get_model(name, filter_size=None, width=1.0, **kwargs)
    first = next(m for m in wide.modules() if isinstance(m, nn.Conv2d))
    assert first.out_channels == (64 if name.startswith("vgg") else 16)
    assert next(m for m in narrow.modules() if isinstance(m, nn.Conv2d)).out_channels == first.out_channels // 2
    base, anti = narrow.state_dict(), get_model(name, filter_size=4, width=0.5, **kwargs).state_dict()
    assert [t.shape for t in base.values()] == [t.shape for t in anti.values()]  # the blur adds nothing
    renamed = {old: new for old, new in zip(base, anti, strict=True) if old != new}
    if name.startswith("vgg"):
        assert renamed == {}  # a baseline checkpoint loads into the anti-aliased VGG as it is
        return
    # The ImageNet ResNet's names: the strided blocks' conv2 and projection gain a BlurPool in front.
    expected = {f"{layer}.0.conv2.weight": f"{layer}.0.conv2.1.weight" for layer in ("layer2", "layer3")}
    if shortcut == "B":
        for layer in ("layer2", "layer3"):
            expected[f"{layer}.0.downsample.0.weight"] = f"{layer}.0.downsample.1.weight"
            for leaf in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                expected[f"{layer}.0.downsample.1.{leaf}"] = f"{layer}.0.downsample.2.{leaf}"
    assert renamed == expected


@pytest.mark.parametrize("depth, paper_millions", [(20, 0.27), (56, 0.85)])
def test_cifar_resnet_parameter_counts_match_the_paper(depth, paper_millions):
    # He et al. (2016), Table 6: option-A shortcuts, 0.27M and 0.85M parameters.
    model = get_model(f"resnet{depth}_cifar", filter_size=None)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == paper_millions
    blocks = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(blocks) == depth - 1  # one BN per conv; the last layer is the linear classifier


def test_cifar_vgg_pool_equals_reference_pool_on_even_maps():
    # The documented claim: MaxBlurPool2d(2, ceil_mode=True) == MaxPool2d(2, 1) then BlurPool2d on even maps.
    pool = next(m for m in zoo.vgg13_bn_cifar(filter_size=4).modules() if isinstance(m, MaxBlurPool2d))
    reference = nn.Sequential(nn.MaxPool2d(2, 1), BlurPool2d(None, 4))
    for size in (32, 16, 8, 4):
        x = torch.randn(2, pool.channels, size, size)
        torch.testing.assert_close(pool(x), reference(x))


def test_cifar_shortcut_b_and_bad_config():
    model = zoo.resnet20_cifar(shortcut="B", filter_size=3)
    assert isinstance(model.layer2[0].downsample[0], BlurPool2d) and isinstance(model.layer2[0].conv2[0], BlurPool2d)
    assert isinstance(zoo.resnet20_cifar(shortcut="B", filter_size=None).layer2[0].downsample[0], nn.Conv2d)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError, match=r"`shortcut` must be 'A' or 'B', got 'C'"):
        zoo.resnet20_cifar(shortcut="C")
    with pytest.raises(ValueError, match=r"`depth` must be 6n \+ 2"):
        zoo.CifarResNet(21)
    with pytest.raises(ValueError, match=r"`width` must be a positive number, got 0"):
        zoo.vgg13_bn_cifar(width=0)
    with pytest.raises(ValueError, match=r"`in_channels` must be a positive int, got 0"):
        zoo.resnet56_cifar(in_channels=0)
