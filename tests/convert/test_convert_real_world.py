"""convert() on the layer patterns of real model zoos, emulated locally (the library never imports timm/torchvision).

- fused norm + activation layers as timm builds them (a norm subclass holding ``.act``), recognised by
  behaviour, and a user registry of activations;
- functional and gated activations (``F.silu``, ``x.relu()``, ``x * sigmoid(x)``, hard-swish);

Each expected output is the paper's recipe written out (conv at stride 1, norm, activation, then the
reference blur-pool of conftest.py), so a wrong placement, a lost weight or a wrong stride fails.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from antialias.convert import convert, register_activation, unregister_activation
from antialias.convert._activations import fused_activation


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _randomize_norms(model: nn.Module) -> nn.Module:
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
        if getattr(m, "weight", None) is not None and isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)):
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
    return model.eval()


def _same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# --------------------------------------------------------------------------- timm-style fused layers
# Written here from timm's documented behaviour (a norm subclass whose forward ends with ``self.act``);
# no timm code.


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm2d, then dropout, then its activation child ``act`` (as timm's layer of that name)."""

    def __init__(self, channels: int, act: nn.Module | None = None) -> None:
        super().__init__(channels)
        self.drop = nn.Identity()
        self.act = nn.ReLU(inplace=True) if act is None else act

    def forward(self, x):
        return self.act(self.drop(super().forward(x)))


class GroupNormAct(nn.GroupNorm):
    def __init__(self, groups: int, channels: int) -> None:
        super().__init__(groups, channels)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(super().forward(x))


class LayerNormAct2d(nn.LayerNorm):
    """LayerNorm over channels of an NCHW map (permute in, permute out), then ``act``."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.act = nn.GELU()

    def forward(self, x):
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return self.act(y.permute(0, 3, 1, 2))


class ActFirstNorm(nn.BatchNorm2d):
    """Holds ``act`` but applies it *before* the norm: not a norm followed by an activation."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.act = nn.ReLU()

    def forward(self, x):
        return super().forward(self.act(x))


class ConvNormAct(nn.Module):
    """timm's ConvNormAct shape: a conv and a fused norm + act, called in the module's own forward."""

    def __init__(self, cin: int, cout: int, norm: nn.Module, stride: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = norm

    def forward(self, x):
        return self.bn(self.conv(x))


class FusedNet(nn.Module):
    """Stem + block as timm's EfficientNet calls them: the stem's fused bn is called from the root."""

    def __init__(self, norm: type[nn.Module] = BatchNormAct2d) -> None:
        super().__init__()
        self.conv_stem = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
        self.bn1 = _norm(norm, 8)
        self.block = ConvNormAct(8, 16, _norm(norm, 16))
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.head(self.block(self.bn1(self.conv_stem(x))))


def _norm(cls: type[nn.Module], channels: int) -> nn.Module:
    return cls(4, channels) if cls is GroupNormAct else cls(channels)


def _fused_ref(conv: nn.Conv2d, norm: nn.Module, x, reference):
    """Paper placement: conv at stride 1, the whole fused norm + act, reference blur-pool at the conv's stride."""
    y = F.conv2d(x, conv.weight, conv.bias, 1, conv.padding)
    return reference.blur_pool(norm(y), [4, 4], conv.stride)


@pytest.mark.parametrize("norm", [BatchNormAct2d, GroupNormAct, LayerNormAct2d])
def test_fused_norm_act_gets_paper_placement(norm, reference):
    model = _randomize_norms(FusedNet(norm))
    x = torch.randn(2, 3, 17, 18)
    with torch.no_grad():
        h = _fused_ref(model.conv_stem, model.bn1, x, reference)
        h = _fused_ref(model.block.conv, model.block.bn, h, reference)
        expected = model.head(h)
    new, report = convert(model, input_size=(1, 3, 16, 16))
    assert report.placements() == {"conv_stem": "after-activation", "block.conv": "after-activation"}
    assert all("fused norm + activation" in s.note for s in report.sites)
    assert not report.rewritten  # the blur went inside the fused layer: no forward rewritten
    _same_state(model, new)
    with torch.no_grad():
        torch.testing.assert_close(new(x), expected, atol=1e-12, rtol=0)
    again, report2 = convert(new, input_size=(1, 3, 16, 16))
    assert not report2.sites  # idempotent
    with torch.no_grad():
        torch.testing.assert_close(again(x), expected, atol=1e-12, rtol=0)


def test_fused_detection_by_behaviour():
    assert fused_activation(BatchNormAct2d(4)) is not None
    assert fused_activation(BatchNormAct2d(4, act=nn.Identity())) is None  # no activation
    assert fused_activation(ActFirstNorm(4)) is None  # activation before the norm: not its last step
    assert fused_activation(nn.BatchNorm2d(4)) is None


def test_activation_before_norm_is_not_taken_for_a_fused_layer():
    model = FusedNet(ActFirstNorm).eval()
    _, report = convert(model, input_size=(1, 3, 16, 16))
    assert set(report.placements().values()) == {"before-conv"}


class Swishish(nn.Module):
    """A custom activation convert cannot recognise from its graph (``torch.where``)."""

    def forward(self, x):
        return torch.where(x > 0, x, 0.1 * x)


class CustomActNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, 2, 1)
        self.bn = nn.BatchNorm2d(6)
        self.act = Swishish()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


@pytest.mark.parametrize("entry", [Swishish, lambda m: type(m).__name__ == "Swishish"], ids=["class", "predicate"])
def test_register_activation(entry, reference):
    model = _randomize_norms(CustomActNet())
    _, before = convert(model)
    assert before.placements() == {"conv": "before-conv"}
    assert register_activation(entry) is entry
    try:
        new, report = convert(model, input_size=(1, 3, 16, 16))
    finally:
        unregister_activation(entry)
    assert report.placements() == {"conv": "after-activation"}
    x = torch.randn(2, 3, 15, 16)
    with torch.no_grad():
        y = model.act(model.bn(F.conv2d(x, model.conv.weight, model.conv.bias, 1, 1)))
        torch.testing.assert_close(new(x), reference.blur_pool(y, [4, 4], 2), atol=1e-12, rtol=0)
    _, after = convert(model)
    assert after.placements() == {"conv": "before-conv"}  # unregistered again


def test_register_activation_errors():
    with pytest.raises(TypeError, match=r"`antialias.convert.register_activation`: `entry` must be an nn.Module"):
        register_activation(int)
    with pytest.raises(TypeError, match=r"register_activation`: `entry` must be"):
        register_activation(3)
    with pytest.raises(ValueError, match=r"unregister_activation`: `entry` must be a registered"):
        unregister_activation(Swishish)


# --------------------------------------------------------------------------- functional and gated activations


def _hard_swish(y):
    return y * F.relu6(y + 3.0) / 6.0


ACTS = {
    "F.silu": F.silu,
    "torch.relu": torch.relu,
    "x.relu()": lambda y: y.relu(),
    "F.gelu": F.gelu,
    "F.hardswish": F.hardswish,
    "x.clamp(0, 6)": lambda y: y.clamp(0, 6),
    "x*sigmoid(x)": lambda y: y * torch.sigmoid(y),
    "hard-swish by hand": _hard_swish,
}


class FunctionalNet(nn.Module):
    def __init__(self, act) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, 2, 1)
        self.bn = nn.BatchNorm2d(6)
        self.act = act

    def forward(self, x):
        return self.act(self.bn(self.conv(x))) + 1.0


@pytest.mark.parametrize("name", list(ACTS))
def test_functional_activations_get_paper_placement(name, reference):
    act = ACTS[name]
    model = _randomize_norms(FunctionalNet(act))
    new, report = convert(model, input_size=(1, 3, 16, 16))
    assert report.placements() == {"conv": "after-activation"}
    x = torch.randn(2, 3, 15, 16)
    with torch.no_grad():
        y = act(model.bn(F.conv2d(x, model.conv.weight, model.conv.bias, 1, 1)))
        if name == "hard-swish by hand":  # the blur lands where the gated region closes (before the /6)
            y = y * 6.0
            expected = reference.blur_pool(y, [4, 4], 2) / 6.0 + 1.0
        else:
            expected = reference.blur_pool(y, [4, 4], 2) + 1.0
        torch.testing.assert_close(new(x), expected, atol=1e-12, rtol=0)


class ResidualNotAct(nn.Module):
    """``y + x_other`` after the norm: another tensor enters, so no activation follows the conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, 2, 1)
        self.bn = nn.BatchNorm2d(6)
        self.short = nn.Conv2d(3, 6, 1, 2)

    def forward(self, x):
        y = self.bn(self.conv(x))
        return torch.sigmoid(y + self.short(x))


def test_a_residual_add_is_not_a_gated_activation():
    _, report = convert(ResidualNotAct(), input_size=(1, 3, 16, 16))
    assert report.placements()["conv"] == "before-conv"


# --------------------------------------------------------------------------- fixed paddings (TF-"same" ports)


class TFSamePadNet(nn.Module):
    """EfficientNet-Lite port style: a fixed asymmetric pad computed for stride 2, then a padding-free conv."""

    def __init__(self, pads=(0, 1, 0, 1), functional: bool = False, stride=2) -> None:
        super().__init__()
        self.pads = pads
        self.functional = functional
        self.pad = nn.ZeroPad2d(pads)
        self.conv = nn.Conv2d(3, 8, 3, stride, 0, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU6()

    def forward(self, x):
        x = F.pad(x, self.pads) if self.functional else self.pad(x)
        return self.act(self.bn(self.conv(x)))


def _conv_output_sizes(model: nn.Module, x) -> list:
    sizes = []
    handle = model.conv.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[2:])))
    with torch.no_grad():
        model(x)
    handle.remove()
    return sizes


@pytest.mark.parametrize("functional", [False, True], ids=["ZeroPad2d", "F.pad"])
def test_tf_same_asymmetric_pad_is_recomputed_for_stride_one(functional, reference):
    model = _randomize_norms(TFSamePadNet(functional=functional))
    new, report = convert(model, input_size=(1, 3, 32, 32))
    assert report.placements() == {"conv": "after-activation"}
    note = report.sites[0].note
    assert "fixed padding" in note and "(1, 1, 1, 1)" in note and "inputs like the example" in note
    _same_state(model, new)
    x = torch.randn(2, 3, 24, 30)
    assert _conv_output_sizes(new, x) == [(24, 30)]  # the stride-1 map keeps the input size (not 23x29)
    with torch.no_grad():
        y = model.act(model.bn(F.conv2d(F.pad(x, (1, 1, 1, 1)), model.conv.weight, None, 1)))
        out = new(x)
        torch.testing.assert_close(out, reference.blur_pool(y, [4, 4], 2), atol=1e-12, rtol=0)
        assert out.shape == model(x).shape == (2, 8, 12, 15)
    again, report2 = convert(new, input_size=(1, 3, 32, 32))
    assert not report2.sites
    with torch.no_grad():
        torch.testing.assert_close(again(x), out, atol=0, rtol=0)


def test_tf_same_pad_without_example_keeps_the_stride_and_says_why():
    model = _randomize_norms(TFSamePadNet())
    new, report = convert(model)
    assert report.placements() == {"conv": "before-conv"}
    assert "pass input_size= or example_input=" in report.sites[0].note
    assert new.pad.padding == (0, 1, 0, 1)
    for size in (31, 32):  # every input size keeps the original output size
        x = torch.randn(1, 3, size, size)
        with torch.no_grad():
            assert new(x).shape == model(x).shape


def test_tf_same_pad_at_an_odd_example_size_is_refused_for_stride_one():
    _, report = convert(_randomize_norms(TFSamePadNet()), input_size=(1, 3, 33, 33))
    assert report.placements() == {"conv": "before-conv"}
    assert "would change the output size at the example input" in report.sites[0].note


def test_pad_with_the_right_total_is_rebalanced_without_an_example():
    model = _randomize_norms(TFSamePadNet(pads=(0, 2, 0, 2)))
    new, report = convert(model)
    assert report.placements() == {"conv": "after-activation"}
    assert new.pad.padding == (1, 1, 1, 1)
    for size in (31, 32):
        x = torch.randn(1, 3, size, size)
        with torch.no_grad():
            assert new(x).shape == model(x).shape


def test_pad_is_recomputed_only_on_the_subsampled_axis():
    model = _randomize_norms(TFSamePadNet(stride=(2, 1)))
    new, report = convert(model, input_size=(1, 3, 32, 32))
    assert report.placements() == {"conv": "after-activation"}
    assert new.pad.padding == (0, 1, 1, 1)  # W (first pair, stride 1) kept; H recomputed


# --------------------------------------------------------------------------- layers that already anti-alias


def _foreign(module: str, name: str, body: type[nn.Module]) -> type[nn.Module]:
    """A class named and placed like another package's layer (the package itself is never imported)."""
    return type(name, (body,), {"__module__": module})


class _StridedBlurBody(nn.Module):
    """Holds a strided depthwise conv child: convert would blur it if it traced inside."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.filt = nn.Conv2d(channels, channels, 3, 2, 1, groups=channels, bias=False)

    def forward(self, x):
        return self.filt(x)


class _MaxBlurBody(nn.Module):
    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x):
        return self.pool(x)


FOREIGN = [
    ("timm.layers.blur_pool", "BlurPool2d", _StridedBlurBody),
    ("antialiased_cnns.blurpool", "BlurPool", _StridedBlurBody),
    ("kornia.filters.blur_pool", "BlurPool2D", _StridedBlurBody),
    ("kornia.filters.blur_pool", "MaxBlurPool2D", _MaxBlurBody),
    ("my_project.layers", "MyBlurPool", _StridedBlurBody),
]


@pytest.mark.parametrize(("module", "name", "body"), FOREIGN, ids=[f"{m}.{n}" for m, n, _ in FOREIGN])
@pytest.mark.parametrize("traceable", [True, False], ids=["traced", "fallback"])
def test_foreign_antialiasing_layers_are_left_alone_and_listed(module, name, body, traceable):
    aa = _foreign(module, name, body)()

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, 1, 1)
            self.act = nn.ReLU()
            self.aa = aa
            self.down = nn.Conv2d(4, 4, 3, 2, 1)

        def forward(self, x):
            if not traceable and x.sum() > 1e9:  # data-dependent: torch.fx cannot trace the root
                return x
            return self.down(self.aa(self.act(self.conv(x))))

    model = Net().eval()
    new, report = convert(model, input_size=(1, 3, 16, 16))
    assert new.aa is aa or type(new.aa) is type(aa)
    assert type(new.aa.get_submodule(next(iter(dict(aa.named_children()))))) in (nn.Conv2d, nn.MaxPool2d)
    assert [s.name for s in report.sites] == ["down"]  # only the site outside the anti-aliasing layer
    assert report.antialiased == [f"aa ({name} from {module})"]
    assert f"aa ({name} from {module})" in str(report) and "already anti-aliased, left alone" in str(report)


def test_own_layers_are_listed_on_a_second_conversion():
    model = _randomize_norms(FusedNet())
    new, _ = convert(model)
    _, again = convert(new)
    assert not again.sites
    assert [item.split(" ")[0] for item in again.antialiased] == ["bn1.act.1", "block.bn.act.1"]
    assert all("BlurPool2d from antialias.layers" in item for item in again.antialiased)


# --------------------------------------------------------------------------- scripted, traced, exported, compiled


def _small():
    return nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU()).eval()


@pytest.mark.parametrize(
    ("make", "what", "fix"),
    [
        (lambda m, x: torch.jit.script(m), "TorchScript module", "torch.jit.script / torch.jit.trace"),
        (lambda m, x: torch.jit.trace(m, x), "TorchScript module", "torch.jit.script / torch.jit.trace"),
        (lambda m, x: torch.export.export(m, (x,)), "torch.export.ExportedProgram", "torch.export.export"),
        (lambda m, x: torch.export.export(m, (x,)).module(), "GraphModule of ATen operators", "torch.export.export"),
        (lambda m, x: torch.compile(m), "torch.compile wrapper", "torch.compile"),
    ],
    ids=["script", "trace", "export", "export-module", "compile"],
)
def test_non_eager_models_get_a_clear_error(make, what, fix):
    model = _small()
    wrapped = make(model, torch.randn(1, 3, 8, 8))
    with pytest.raises(TypeError, match=r"`convert`: `model` must be an eager nn.Module") as info:
        convert(wrapped)
    assert what in str(info.value) and fix in str(info.value) and "convert(model" in str(info.value)


def test_a_symbolic_trace_graph_module_still_converts():
    gm = torch.fx.symbolic_trace(_small())
    _, report = convert(gm)
    assert report.placements() == {"0": "after-activation"}


@pytest.mark.parametrize(
    ("kwargs", "error", "fix"),
    [
        ({"model": {"weight": torch.zeros(1)}}, TypeError, "convert(model)"),
        ({"exclude": 3}, TypeError, "Example: exclude="),
        ({"min_channels": 0}, ValueError, "RGB stem strided"),
        ({"filter_size": {1: 3}}, ValueError, "Example: filter_size="),
        ({"filter_size": "tri5"}, ValueError, "Did you mean"),
        ({"replace": ["conv", "maxpol"]}, ValueError, "Did you mean 'maxpool'"),
    ],
)
def test_every_error_names_convert_and_the_fix(kwargs, error, fix):
    kwargs = {"model": _small(), **kwargs}
    with pytest.raises(error, match=r"^`convert`: ") as info:
        convert(kwargs.pop("model"), **kwargs)
    assert fix in str(info.value)


def test_rewritten_modules_keep_their_class_name_through_a_second_convert():
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, 2, 1)

        def forward(self, x):
            return F.relu(self.conv(x))

    net = nn.Sequential(Block())
    new, report = convert(net)
    assert report.rewritten and type(new[0]).__name__ == "Block"
    again, _ = convert(new)
    assert type(again[0]).__name__ == "Block" and type(new[0]).__name__ == "Block"


@pytest.mark.parametrize("method", ["aps", "ideal"])
def test_tf_same_pad_is_recomputed_for_other_methods_after_conv(method):
    class PadConv(nn.Module):  # no activation follows: "after-conv" (conv at stride 1, then the method's layer)
        def __init__(self) -> None:
            super().__init__()
            self.pad = nn.ZeroPad2d((0, 1, 0, 1))
            self.conv = nn.Conv2d(3, 8, 3, 2, 0)

        def forward(self, x):
            return self.conv(self.pad(x))

    model = PadConv().eval()
    new, report = convert(model, method=method, input_size=(1, 3, 32, 32))
    assert report.placements() == {"conv": "after-conv"} and "recomputed for stride 1" in report.sites[0].note
    assert new.pad.padding == (1, 1, 1, 1)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert new(x).shape == model(x).shape
    _, refused = convert(model, method=method)  # without an example: left strided, with the reason
    assert not refused.sites and "pass input_size=" in refused.skipped[0].note
