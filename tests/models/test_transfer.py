"""Baseline -> anti-aliased weight transfer: the renaming rules against the reference key lists,
completeness on every built architecture, equal computation where the placements agree, and errors.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from antialias.models import get_model
from antialias.models.transfer import (
    TransferReport,
    baseline_key_map,
    rename_baseline_key,
    transfer_baseline,
)

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "adobe_state_dict"  # copy of ../shared/reference
ARCHS = [
    "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2", "densenet121", "densenet161",
    "densenet169", "densenet201", "mobilenet_v2",
]  # fmt: skip
CIFAR = ["vgg13_bn_cifar", "resnet20_cifar", "resnet56_cifar"]


def _meta_pair(arch: str, filter_size: int = 4) -> tuple[torch.nn.Module, torch.nn.Module]:
    with torch.device("meta"):  # names and shapes only: no memory, no init time
        return get_model(arch, filter_size=None), get_model(arch, filter_size=filter_size)


def _reference_keys(arch: str) -> dict[str, tuple[int, ...]]:
    path = REFERENCE / f"{arch}_lpf4.json"
    data = json.loads(path.read_text())
    return {name: tuple(shape) for name, shape, _ in data["keys"] if not name.endswith(".filt")}


# --------------------------------------------------------------------------- facts of the layouts


@pytest.mark.parametrize(
    ("key", "arch", "expected"),
    [
        ("layer2.0.conv2.weight", "resnet18", "layer2.0.conv2.1.weight"),
        ("layer2.1.conv2.weight", "resnet18", "layer2.1.conv2.weight"),  # stride 1: unchanged
        ("layer1.0.conv2.weight", "resnet18", "layer1.0.conv2.weight"),
        ("layer4.0.downsample.0.weight", "resnet34", "layer4.0.downsample.1.weight"),
        ("layer3.0.downsample.1.running_mean", "resnet34", "layer3.0.downsample.2.running_mean"),
        ("layer3.0.conv3.weight", "resnet50", "layer3.0.conv3.1.weight"),
        ("layer3.0.conv2.weight", "resnet50", "layer3.0.conv2.weight"),
        ("layer1.0.downsample.0.weight", "resnet50", "layer1.0.downsample.0.weight"),  # stride-1 shortcut
        ("layer1.0.downsample.1.weight", "wide_resnet50_2", "layer1.0.downsample.1.weight"),
        ("layer2.0.downsample.1.bias", "resnext101_32x8d", "layer2.0.downsample.2.bias"),
        ("fc.weight", "resnet152", "fc.weight"),
        ("features.0.weight", "vgg16", "features.0.weight"),
        ("features.5.weight", "vgg16", "features.6.weight"),  # after one pool (torchvision index 4)
        ("features.28.bias", "vgg16", "features.32.bias"),  # after four pools
        ("features.7.weight", "vgg16_bn", "features.8.weight"),
        ("features.41.running_var", "vgg16_bn", "features.45.running_var"),
        ("classifier.6.weight", "vgg19_bn", "classifier.6.weight"),
        ("features.3.weight", "alexnet", "features.5.weight"),
        ("features.10.bias", "alexnet", "features.13.bias"),
        ("classifier.4.weight", "alexnet", "classifier.4.weight"),
        ("features.transition2.conv.weight", "densenet169", "features.transition2.conv.weight"),
        (
            "features.denseblock1.denselayer3.norm.1.weight",
            "densenet121",
            "features.denseblock1.denselayer3.norm1.weight",
        ),
        (
            "features.denseblock4.denselayer2.conv.2.weight",
            "densenet201",
            "features.denseblock4.denselayer2.conv2.weight",
        ),
        ("features.14.conv.2.weight", "mobilenet_v2", "features.14.conv.3.weight"),
        ("features.7.conv.3.running_mean", "mobilenet_v2", "features.7.conv.4.running_mean"),
        ("features.3.conv.2.weight", "mobilenet_v2", "features.3.conv.2.weight"),  # stride 1
        ("features.1.conv.2.weight", "mobilenet_v2", "features.1.conv.2.weight"),
        ("classifier.1.weight", "mobilenet_v2", "classifier.0.weight"),
        ("layer3.0.conv2.weight", "resnet20_cifar", "layer3.0.conv2.1.weight"),
    ],
)
def test_rename_rules(key: str, arch: str, expected: str) -> None:
    assert rename_baseline_key(key, arch) == expected


# --------------------------------------------------------------------------- every architecture


@pytest.mark.parametrize("arch", ARCHS)
def test_baseline_maps_onto_the_reference_layout(arch: str) -> None:
    """Every baseline key, renamed, is a reference key of the same shape, and every reference
    parameter/buffer (the ``.filt`` filters aside) receives exactly one baseline tensor."""
    reference = _reference_keys(arch)
    baseline, model = _meta_pair(arch)
    state = baseline.state_dict()
    mapping = baseline_key_map(state)  # layout recognised from names alone
    assert mapping == baseline_key_map(state, arch)
    assert sorted(mapping.values()) == sorted(reference)
    for old, new in mapping.items():
        assert tuple(state[old].shape) == reference[new], (old, new)
    report = transfer_baseline(state, model)  # strict: raises unless complete
    assert report.complete and len(report.loaded) == len(reference)
    renamed = sum(a != b for a, b in mapping.items())
    assert len(report.renamed) == renamed and (renamed > 0) == (not arch.startswith("densenet"))


@pytest.mark.parametrize("arch", CIFAR)
def test_cifar_models_transfer_completely(arch: str) -> None:
    baseline, model = _meta_pair(arch)
    report = transfer_baseline(baseline.state_dict(), model, arch=arch)
    assert report.complete and len(report.loaded) == len(model.state_dict())


def test_torchvision_key_facts() -> None:
    """A few published torchvision names, so the layout tests do not rest on our builders alone."""
    keys = {
        "resnet18": (122, "layer2.0.downsample.1.running_var"),
        "resnet50": (320, "layer4.0.downsample.0.weight"),
        "vgg16_bn": (97, "features.41.running_var"),
        "mobilenet_v2": (314, "classifier.1.weight"),
        "alexnet": (16, "features.10.weight"),
    }
    for arch, (count, key) in keys.items():
        state = _meta_pair(arch)[0].state_dict()
        assert len(state) == count and key in state, arch


def test_legacy_densenet_names_transfer() -> None:
    baseline, model = _meta_pair("densenet121")
    legacy = {
        re.sub(r"(denselayer\d+\.)(norm|relu|conv)([12])\.", r"\1\2.\3.", k): v
        for k, v in baseline.state_dict().items()
    }
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    assert transfer_baseline(legacy, model).complete


# --------------------------------------------------------------------------- equal computation


def _randomise_(model: torch.nn.Module) -> None:
    """Non-trivial BN statistics and biases, so that a mis-routed 1-D tensor shows in the outputs."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point() or t.ndim != 1:
                continue
            noise = torch.rand(t.shape, generator=g)
            if name.endswith("running_var"):
                t.copy_(0.5 + noise)
            elif name.endswith("weight"):
                t.copy_(0.9 + 0.2 * noise)
            else:
                t.copy_(0.1 * (noise - 0.5))


def _transferred(arch: str, filter_size: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    baseline = get_model(arch, filter_size=None).eval()
    _randomise_(baseline)
    model = get_model(arch, filter_size=filter_size).eval()
    report = transfer_baseline(baseline.state_dict(), model, arch=arch)
    assert report.complete
    return baseline, model


def _resnet_body(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    for name in ("layer1", "layer2", "layer3", "layer4"):
        x = getattr(net, name)(x)
    return net.fc(torch.flatten(net.avgpool(x), 1))


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_resnet_with_identity_filter_computes_the_baseline(arch: str) -> None:
    """With filter size 1 the BlurPool is plain subsampling, so conv(s1) -> bn -> relu -> subsample
    equals conv(s2) -> bn -> relu, and subsample -> 1x1 conv equals the strided shortcut. The stem
    differs by design (the reference's MaxPool(2, s1) + blur vs MaxPool(3, s2, pad 1)), so the
    comparison starts after it."""
    baseline, model = _transferred(arch, 1)
    x = torch.randn(1, 64, 8, 8)
    with torch.no_grad():
        expected, actual = _resnet_body(baseline, x), _resnet_body(model, x)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)
    if arch != "resnet18":
        return
    with torch.no_grad():  # and the stem really differs: the full networks do not agree
        image = torch.randn(1, 3, 32, 32)
        assert not torch.allclose(model(image), baseline(image), atol=1e-3)


def test_mobilenet_v2_with_identity_filter_computes_the_baseline() -> None:
    baseline, model = _transferred("mobilenet_v2", 1)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), baseline(x), rtol=1e-4, atol=1e-4)


def test_densenet_with_rect2_transitions_computes_the_baseline() -> None:
    """Rect-2 blur + subsampling of an even-sized map is the 2x2 average pool of the transitions."""
    baseline, model = _transferred("densenet121", 2)

    def after_stem(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        names = [n for n, _ in net.features.named_children()]
        for name in names[names.index("denseblock1"):]:
            x = getattr(net.features, name)(x)
        return x

    x = torch.randn(1, 64, 8, 8)  # even sizes at every transition: 8, 4, 2
    with torch.no_grad():
        torch.testing.assert_close(after_stem(model, x), after_stem(baseline, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ["vgg13_bn_cifar", "resnet20_cifar"])
def test_cifar_with_identity_filter_computes_the_baseline(arch: str) -> None:
    baseline, model = _transferred(arch, 1)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), baseline(x), rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- partial and bad input


def test_strict_refuses_unmatched_and_loads_nothing() -> None:
    baseline = get_model("resnet18", filter_size=None)
    model = get_model("resnet18", filter_size=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = dict(baseline.state_dict())
    state["extra.weight"] = torch.zeros(3)
    del state["layer3.0.bn1.running_mean"]
    with pytest.raises(
        ValueError, match=r"nothing was loaded(.|\n)*unmatched  extra.weight(.|\n)*missing    layer3.0.bn1.running_mean"
    ):
        transfer_baseline(state, model)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    report = transfer_baseline(state, model, strict=False)
    assert report.unmatched == ["extra.weight"] and report.missing == ["layer3.0.bn1.running_mean"]
    assert torch.equal(model.layer2[0].conv2[1].weight, baseline.layer2[0].conv2.weight)
    assert torch.equal(model.layer3[0].bn1.running_mean, before["layer3.0.bn1.running_mean"])


def test_new_classifier_is_reported_as_mismatched() -> None:
    baseline = get_model("resnet18", filter_size=None)
    model = get_model("resnet18", filter_size=4, num_classes=10)
    with pytest.raises(ValueError, match=r"mismatched fc.weight -> fc.weight: \(1000, 512\) vs \(10, 512\)"):
        transfer_baseline(baseline.state_dict(), model)
    report = transfer_baseline(baseline.state_dict(), model, strict=False)
    assert [m[0] for m in report.mismatched] == ["fc.weight", "fc.bias"]
    assert report.missing == ["fc.weight", "fc.bias"] and not report.unmatched
    assert torch.equal(model.layer4[0].downsample[1].weight, baseline.layer4[0].downsample[0].weight)
    text = str(report)
    assert text.startswith(
        "TransferReport (resnet_basic): 120 loaded (21 renamed), 0 unmatched, 2 missing, 2 mismatched"
    )
    assert "  renamed    layer2.0.conv2.weight -> layer2.0.conv2.1.weight" in text


def test_report_type() -> None:
    report = TransferReport("identity", loaded=[("a", "a"), ("b", "c")])
    assert report.renamed == [("b", "c")] and report.complete


def test_bad_input() -> None:
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"could not recognise the layout .* pass `arch=`"):
        transfer_baseline(model.state_dict(), model)
    with pytest.raises(
        ValueError,
        match=r"`arch` must be an architecture with known transfer rules, got 'resnet5'\. Did you mean 'resnet50'",
    ):
        transfer_baseline(model.state_dict(), model, arch="resnet5")
    with pytest.raises(TypeError, match=r"must map names to tensors, got non-tensor entries \['epoch'\]"):
        transfer_baseline({"weight": torch.zeros(2, 2), "epoch": 3}, model, arch="resnet18")
    with pytest.raises(TypeError, match=r"`model` must be an nn\.Module, got dict"):
        transfer_baseline(model.state_dict(), {})
    with pytest.raises(TypeError, match="`baseline_state_dict` must be a mapping"):
        transfer_baseline([torch.zeros(1)], model)
