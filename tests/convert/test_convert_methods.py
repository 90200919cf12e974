"""``convert(model, method=...)``: every method on the zoo's ResNet-18 and MobileNetV2 and on user networks,
the keys each adds, residual phase pairing, the zoo builders' ``method=``, and the errors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from antialias import convert
from antialias.convert import METHODS, PLACEMENTS
from antialias.downsample import APS2d, LPS2d, PhaseFollow2d
from antialias.models import get_model, resnet18

#: The keys a method adds to ``state_dict`` (a suffix pattern), None: no new keys.
NEW_KEYS = {"blurpool": None, "aps": None, "ideal": None, "lps": ".score.", "adaptive": ".predictor."}


class UserNet(nn.Module):
    """A user network: a strided conv whose activation is a function, a pool, a strided conv feeding an add."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 2, 1)
        self.pool = nn.MaxPool2d(2)
        self.a = nn.Conv2d(8, 8, 3, 2, 1)
        self.b = nn.Conv2d(8, 8, 1, 2)
        self.head = nn.Linear(8, 4)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(torch.relu(self.stem(x)))
        x = self.a(x) + self.b(x)  # no activation after `a`: converted conv-then-sampler
        return self.head(x.mean((2, 3)))


def _models():
    return {
        "resnet18": lambda: get_model("resnet18", filter_size=None, num_classes=10),
        "mobilenet_v2": lambda: get_model("mobilenet_v2", filter_size=None, num_classes=10),
        "user": UserNet,
    }


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2", "user"])
def test_every_method_converts_zoo_and_user_networks(arch, method):
    torch.manual_seed(0)
    model = _models()[arch]().eval()
    x = torch.randn(2, 3, 64, 64)
    new, report = convert(model, method=method, input_size=(2, 3, 64, 64))
    assert report.method == method and report.sites
    assert set(report.placements().values()) <= set(PLACEMENTS)
    assert all(s.name and s.placement for s in report.sites)
    new.eval()
    assert new(x).shape == model(x).shape
    old, got = model.state_dict(), new.state_dict()
    assert all(torch.equal(old[k], got[k]) for k in old)  # every weight kept, under its key
    added = set(got) - set(old)
    if NEW_KEYS[method] is None:
        assert not added
    else:
        assert added and all(NEW_KEYS[method] in k for k in added)
    if method != "blurpool":
        assert f"method={method!r}" in str(report)


def test_default_method_is_blurpool_unchanged():
    model = _models()["user"]()
    a, ra = convert(model, input_size=(1, 3, 32, 32))
    b, rb = convert(model, method="blurpool", input_size=(1, 3, 32, 32))
    assert ra.placements() == rb.placements() and ra.method == "blurpool"
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(a(x), b(x))


def test_user_net_placements():
    _, report = convert(UserNet(), method="aps", input_size=(1, 3, 32, 32))
    assert report.placements() == {"stem": "after-activation", "pool": "drop-in", "a": "after-conv",
                                   "b": "sampler-then-1x1"}


@pytest.mark.parametrize("method", ["aps", "lps"])
def test_resnet_shortcuts_pair_with_their_main_branch(method):
    new, report = convert(_models()["resnet18"](), method=method)
    notes = {s.name: s.note for s in report.sites}
    for layer in ("layer2", "layer3", "layer4"):
        # the zoo's blocks compute the shortcut first: it chooses, the main branch follows
        assert f"takes the phase chosen by `{layer}.0.downsample.0`" in notes[f"{layer}.0.conv1"]
    followers = [m for m in new.modules() if isinstance(m, PhaseFollow2d)]
    samplers = [m for m in new.modules() if isinstance(m, (APS2d, LPS2d))]
    assert len(followers) == 3 and len(samplers) == 5  # stem, max-pool, 3 shortcuts
    leaders = {id(m.link) for m in samplers}
    assert all(id(f.link) in leaders for f in followers)


def test_resnet20_cifar_option_a_shortcut_pairs_and_is_invariant():
    """Strided slicing (option A) becomes a paired sampler; the network ends in a global average, so
    logits agree to float round-off (the order of the average's sum changes with the shift)."""
    torch.manual_seed(0)
    model = get_model("resnet20_cifar", filter_size=None, num_classes=10)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.padding_mode = "circular"
    new, report = convert(model, method="aps", padding_mode="circular", filter_size=None)
    assert [s.kind for s in report.sites].count("subsample") == 2
    new.eval()
    x = torch.randn(1, 3, 32, 32)
    shifts = [(dy, dx) for dy in range(0, 32, 5) for dx in range(0, 32, 3)]
    with torch.no_grad():
        batch = torch.cat([torch.roll(x, s, (2, 3)) for s in shifts])
        out, ref = new(batch), new(x.expand_as(batch).contiguous())
    assert torch.allclose(out, ref, atol=1e-5)
    with torch.no_grad():
        plain = model.eval()(batch)
    assert not torch.allclose(plain, plain[:1].expand_as(plain), atol=1e-3)  # the baseline is not invariant


def test_idempotent_and_one_dimensional_sites_skipped():
    new, report = convert(UserNet(), method="lps", input_size=(1, 3, 32, 32))
    _, report2 = convert(new, method="lps", input_size=(1, 3, 32, 32))
    assert report2.sites == []
    net1d = nn.Sequential(nn.Conv1d(2, 4, 3, 2, 1), nn.ReLU())
    _, report = convert(net1d, method="aps")
    assert report.sites == [] and "2-D sites only" in report.skipped[0].note


def test_module_level_fallback_uses_the_method():
    class Untraceable(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU())

        def forward(self, x: Tensor) -> Tensor:
            if x.sum() > 0:  # data-dependent: torch.fx cannot trace it
                return self.body(x)
            return self.body(-x)

    new, report = convert(Untraceable(), method="ideal", input_size=(1, 3, 16, 16))
    assert report.fallbacks and report.placements() == {"body.0": "after-activation"}
    assert new(torch.randn(1, 3, 16, 16)).shape == (1, 4, 8, 8)


def test_zoo_builders_accept_method():
    base = resnet18(filter_size=None, num_classes=10)
    for method in ("aps", "ideal"):
        net = get_model("resnet18", method=method, num_classes=10)
        assert list(net.state_dict()) == list(base.state_dict())  # the baseline's keys
    lps = resnet18(method="lps", num_classes=10, method_options={"hidden_channels": 4})
    extra = set(lps.state_dict()) - set(base.state_dict())
    assert extra and all(".score." in k for k in extra)
    assert any(isinstance(m, LPS2d) and m.score[0].out_channels == 4 for m in lps.modules())
    blurred = resnet18(filter_size=3, method="aps")  # filter_size: APS's pre-blur
    assert all(m.filter_size == 3 for m in blurred.modules() if isinstance(m, APS2d))
    mobile = get_model("mobilenet_v2", method="adaptive", num_classes=10).eval()
    assert mobile(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_zoo_builder_method_errors():
    with pytest.raises(ValueError, match=r"`resnet18`: `weights` must be baseline weights"):
        resnet18(method="aps", weights="resnet18.imagenet1k_tri4_ft")
    with pytest.raises(ValueError, match=r"`resnet18`: `method` must be one of .* Did you mean 'aps'"):
        resnet18(method="apss")


def test_errors():
    with pytest.raises(ValueError, match=r"`convert`: `method` must be one of .* Did you mean 'ideal'"):
        convert(UserNet(), method="idael")
    with pytest.raises(ValueError, match=r"`convert`: `method_options` for method 'aps' may set \('norm',\)"):
        convert(UserNet(), method="aps", method_options={"tau": 1.0})
    with pytest.raises(TypeError, match=r"`convert`: `upsample` must be a bool"):
        convert(UserNet(), upsample="yes")
