"""convert(): placements checked against hand-built anti-aliased equivalents with the same weights.

The expected outputs are written out here from the paper's recipe (conv at stride 1, norm,
activation, then the reference blur-pool of conftest.py, which shares no code with antialias), so
a wrong placement, a lost weight or a wrong stride makes them fail.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from antialias import BlurPool2d, MaxBlurPool1d, MaxBlurPool2d, MaxBlurPool3d, models
from antialias.convert import AvgBlurPool2d, ConvertReport, PreBlurConv2d, convert


@pytest.fixture(autouse=True)
def _float64():
    """Exact comparisons (atol 1e-12) need float64 models and inputs."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _randomize_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics, so a skipped or misplaced norm shows up numerically."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
    return model.eval()


def _same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# --------------------------------------------------------------------------- small networks


class ConvBnRelu(nn.Module):
    """Strided conv -> bn -> relu called directly from the root's forward."""

    def __init__(self, act: nn.Module | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.act = nn.ReLU() if act is None else act

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class FunctionalAct(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(6)

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        return y + 0.5 * y  # two users of the activation: both must see the blurred output


class Block(nn.Module):
    """A torchvision-style BasicBlock: ``self.relu`` is shared by two call sites."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ConvThenAdd(nn.Module):
    """A strided conv whose output goes straight into an add: no activation to blur after."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.skip = nn.AvgPool2d(2)

    def forward(self, x):
        return self.conv(x) + self.skip(x)


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace the root."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.down = nn.Conv2d(8, 8, 3, 2, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        x = self.features(x)
        if x.sum() > 0:
            x = self.down(x)
        else:
            x = -self.down(x)
        return self.pool(x)


def _conv_bn_relu_ref(conv: nn.Conv2d, bn: nn.BatchNorm2d, x, reference, act=F.relu):
    """The paper's placement written out: conv at stride 1, bn, activation, reference blur-pool."""
    y = F.conv2d(x, conv.weight, conv.bias, 1, conv.padding)
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    return reference.blur_pool(act(y), [4, 4], conv.stride)


# --------------------------------------------------------------------------- placements


def test_paper_placement_module_activation(reference):
    net = _randomize_bn(ConvBnRelu())
    new, report = convert(net)
    x = torch.randn(2, 3, 15, 16)
    torch.testing.assert_close(new(x), _conv_bn_relu_ref(net.conv, net.bn, x, reference), rtol=0, atol=1e-12)
    assert report.placements() == {"conv": "after-activation"}
    assert new.conv.stride == (1, 1) and net.conv.stride == (2, 2)  # the original is untouched
    # blur after the nonlinearity: the activation module is now (act, BlurPool)
    assert isinstance(new.act, nn.Sequential) and isinstance(new.act[0], nn.ReLU) and isinstance(new.act[1], BlurPool2d)
    _same_state(net, new)


def test_paper_placement_is_not_blur_before_activation(reference):
    """Blurring before the ReLU (Composer's surgery) gives a different network: make sure we don't."""
    net = _randomize_bn(ConvBnRelu())
    new, _ = convert(net)
    x = torch.randn(1, 3, 16, 16)
    y = F.batch_norm(F.conv2d(x, net.conv.weight, None, 1, 1), net.bn.running_mean, net.bn.running_var,
                     net.bn.weight, net.bn.bias, False, 0.0, net.bn.eps)
    before_act = F.relu(reference.blur_pool(y, [4, 4], 2))
    assert (new(x) - before_act).abs().max() > 1e-3


def test_parametric_activation_keeps_its_keys(reference):
    net = _randomize_bn(ConvBnRelu(act=nn.PReLU(6, init=0.2)))
    new, report = convert(net)
    x = torch.randn(2, 3, 16, 16)
    expected = _conv_bn_relu_ref(net.conv, net.bn, x, reference, act=lambda t: F.prelu(t, net.act.weight))
    torch.testing.assert_close(new(x), expected, rtol=0, atol=1e-12)
    _same_state(net, new)  # `act.weight` did not become `act.0.weight`
    assert report.sites[0].placement == "after-activation"


def test_functional_activation_with_two_users(reference):
    net = _randomize_bn(FunctionalAct())
    new, report = convert(net)
    x = torch.randn(2, 3, 17, 14)
    y = _conv_bn_relu_ref(net.conv, net.bn, x, reference)
    torch.testing.assert_close(new(x), y + 0.5 * y, rtol=0, atol=1e-12)
    assert isinstance(new, torch.fx.GraphModule) and report.rewritten
    _same_state(net, new)


def test_shared_relu_block_graph_order_and_values(reference):
    net = _randomize_bn(Block(4, 8, 2))
    new, report = convert(net)
    x = torch.randn(2, 4, 13, 12)
    # Hand-built: downsample = blur-pool then 1x1 at stride 1; main path = paper placement.
    ds_conv, ds_bn = net.downsample
    identity = F.conv2d(reference.blur_pool(x, [4, 4], 2), ds_conv.weight)
    identity = F.batch_norm(
        identity, ds_bn.running_mean, ds_bn.running_var, ds_bn.weight, ds_bn.bias, False, 0.0, ds_bn.eps
    )
    out = _conv_bn_relu_ref(net.conv1, net.bn1, x, reference)
    out = F.batch_norm(F.conv2d(out, net.conv2.weight, None, 1, 1), net.bn2.running_mean, net.bn2.running_var,
                       net.bn2.weight, net.bn2.bias, False, 0.0, net.bn2.eps)
    torch.testing.assert_close(new(x), F.relu(out + identity), rtol=0, atol=1e-12)
    # Graph order: the blur comes right after the first relu call, and only that one.
    order = [n.target for n in new.graph.nodes if n.op == "call_module"]
    i = order.index("relu")
    assert order[i - 2 : i + 3] == ["conv1", "bn1", "relu", "relu_blur", "conv2"]
    assert order.count("relu_blur") == 1 and order[-1] == "relu"
    assert report.placements() == {"downsample.0": "blurpool-then-1x1", "conv1": "after-activation"}
    _same_state(net, new)


def test_shortcut_blur_first_equals_blur_after(reference):
    """A 1x1 conv commutes with the blur: BlurPool then conv(s=1) == conv(s=1) then BlurPool."""
    net = nn.Sequential(nn.Conv2d(5, 7, 1, stride=2, bias=False))
    new, report = convert(net)
    x = torch.randn(2, 5, 11, 10)
    after = reference.blur_pool(F.conv2d(x, net[0].weight), [4, 4], 2)
    torch.testing.assert_close(new(x), after, rtol=0, atol=1e-12)
    assert isinstance(new[0], PreBlurConv2d) and new[0].stride == (1, 1)
    assert report.sites[0].placement == "blurpool-then-1x1"
    _same_state(net, new)


def test_conv_followed_by_add_is_blur_first(reference):
    net = ConvThenAdd().eval()
    new, report = convert(net, input_size=(1, 4, 12, 12))
    x = torch.randn(2, 4, 12, 12)
    main = F.conv2d(reference.blur_pool(x, [4, 4], 1), net.conv.weight, net.conv.bias, 2, 1)
    torch.testing.assert_close(new(x), main + reference.blur_pool(x, [4, 4], 2), rtol=0, atol=1e-12)
    assert report.placements() == {"conv": "before-conv", "skip": "drop-in"}
    _same_state(net, new)


class MyConv(nn.Conv2d):
    """A user's conv subclass: it cannot become a PreBlurConv2d, so the blur goes into the graph."""


def test_custom_conv_class_gets_the_blur_in_its_callers_graph(reference):
    net = nn.Sequential(MyConv(3, 4, 3, 2, 1), nn.Tanh(), MyConv(4, 4, 3, 2, 1))
    new, report = convert(net)
    assert report.placements() == {"0": "after-activation", "2": "before-conv"}
    conv2 = new.get_submodule("2")  # a GraphModule keeps the children's names (not Sequential's indexing)
    assert isinstance(new, torch.fx.GraphModule) and type(conv2) is MyConv and conv2.stride == (2, 2)
    x = torch.randn(1, 3, 16, 16)
    y = reference.blur_pool(torch.tanh(F.conv2d(x, net[0].weight, net[0].bias, 1, 1)), [4, 4], 2)
    y = F.conv2d(reference.blur_pool(y, [4, 4], 1), net[2].weight, net[2].bias, 2, 1)
    torch.testing.assert_close(new(x), y, rtol=0, atol=1e-12)
    _same_state(net, new)
    _, report2 = convert(new)
    assert report2.sites == [] and "already anti-aliased" in report2.skipped[0].note


def test_maxpool_drop_in(reference):
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(3, 2, 1, ceil_mode=True))
    new, report = convert(net)
    assert isinstance(new[1], MaxBlurPool2d)
    assert (new[1].kernel_size, new[1].stride, new[1].padding, new[1].ceil_mode) == ((3, 3), (2, 2), (1, 1), True)
    x = torch.randn(2, 3, 9, 11)  # odd sizes: ceil_mode adds no window here
    y = net[0](x)
    expected = reference.blur_pool(F.max_pool2d(y, 3, 1, 1), [4, 4], 2)
    torch.testing.assert_close(new(x), expected, rtol=0, atol=1e-12)
    for size in (7, 8, 9, 16, 17):  # the max-pool's output size, odd sizes and ceil_mode included
        z = torch.randn(1, 3, size, size + 1)
        assert new(z).shape == net(z).shape
    assert report.sites[0].placement == "drop-in"


def test_functional_pool_in_forward(reference):
    class Net(nn.Module):
        def forward(self, x):
            return F.max_pool2d(x, 2) + 1

    new, report = convert(Net())
    x = torch.randn(1, 2, 8, 8)
    torch.testing.assert_close(new(x), reference.blur_pool(F.max_pool2d(x, 2, 1), [4, 4], 2) + 1, rtol=0, atol=1e-12)
    assert [s.kind for s in report.sites] == ["maxpool"]


def test_avgpool_shape_rule(reference):
    fits = nn.Sequential(nn.AvgPool2d(2, ceil_mode=True))  # ceil(L/2) for every L
    new, report = convert(fits)
    assert isinstance(new[0], BlurPool2d) and not report.sites[0].note
    x = torch.randn(1, 2, 7, 9)
    torch.testing.assert_close(new(x), reference.blur_pool(x, [4, 4], 2), rtol=0, atol=1e-12)
    assert new(x).shape == fits(x).shape

    floor = nn.Sequential(nn.AvgPool2d(2))  # floor(L/2): differs from ceil(L/2) on odd sizes
    for size in (None, (1, 2, 8, 8), (1, 2, 9, 9)):  # with or without an example: the exact-size drop-in
        dropin, report = convert(floor, input_size=size)
        assert isinstance(dropin[0], AvgBlurPool2d) and report.placements() == {"0": "drop-in"}
        assert not report.skipped
        x = torch.randn(1, 2, 8, 10)  # even: the reference BlurPool exactly
        torch.testing.assert_close(dropin(x), reference.blur_pool(x, [4, 4], 2), rtol=0, atol=1e-12)
        x = torch.randn(1, 2, 9, 7)  # odd: avg-pool's floor size, BlurPool's windows
        assert dropin(x).shape == floor(x).shape == (1, 2, 4, 3)
        torch.testing.assert_close(dropin(x), reference.blur_pool(x, [4, 4], 2)[..., :4, :3], rtol=0, atol=1e-12)


def test_circular_maxpool_skipped_where_sizes_differ():
    net = nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(3, 2, 1))
    new, report = convert(net, padding_mode="circular")
    assert isinstance(new[0], nn.MaxPool2d) and isinstance(new[1], MaxBlurPool2d)
    assert [s.name for s in report.skipped] == ["0"]


def test_anisotropic_stride_blurs_only_the_subsampled_axis():
    net = nn.Sequential(nn.Conv2d(2, 3, 3, stride=(2, 1), padding=1), nn.ReLU())
    new, _ = convert(net)
    blur = new[1][1]
    assert blur.stride == (2, 1) and blur.filter_w.tolist() == [1.0] and len(blur.filter_h) == 4
    x = torch.randn(1, 2, 9, 7)
    assert new(x).shape == net(x).shape


# --------------------------------------------------------------------------- properties


NETS = {
    "conv_bn_relu": lambda: ConvBnRelu(),
    "functional": lambda: FunctionalAct(),
    "block": lambda: Block(3, 6, 2),
    "add": lambda: nn.Sequential(nn.Conv2d(3, 4, 1), ConvThenAdd()),
    "branchy": lambda: Branchy(),
}


@pytest.mark.parametrize("name", NETS)
def test_shapes_keys_and_idempotence(name):
    net = _randomize_bn(NETS[name]())
    new, report = convert(net, input_size=(1, 3, 16, 16))
    assert report.sites
    sizes = [(1, 3, 16, 16), (2, 3, 14, 18)] + ([] if name == "add" else [(2, 3, 15, 17), (1, 3, 19, 21)])
    for size in sizes:  # ("add" adds a floor-sized avg-pool to a ceil-sized conv: even sizes only)
        x = torch.randn(size)
        assert new(x).shape == net(x).shape
    _same_state(net, new)
    x = torch.randn(sizes[-1])
    again, report2 = convert(new, input_size=(1, 3, 16, 16))
    assert report2.sites == [] and not report2.rewritten
    _same_state(new, again)
    torch.testing.assert_close(again(x), new(x), rtol=0, atol=0)
    assert report2.flops_before == report2.flops_after == report.flops_after


def test_untraceable_model_falls_back_and_reports(reference):
    net = _randomize_bn(Branchy())
    new, report = convert(net)
    assert report.fallbacks and "Branchy" in report.fallbacks[0] and "torch.fx could not trace" in str(report)
    # The child Sequential is still traced: conv -> bn -> relu gets the paper's placement.
    places = report.placements()
    assert places == {"features.0": "after-activation", "down": "before-conv", "pool": "drop-in"}
    assert "module-level fallback" in next(s.note for s in report.sites if s.name == "down")
    x = torch.randn(1, 3, 16, 16)
    feats = _conv_bn_relu_ref(net.features[0], net.features[1], x, reference)
    down = F.conv2d(reference.blur_pool(feats, [4, 4], 1), net.down.weight, net.down.bias, 2, 1)
    down = down if feats.sum() > 0 else -down
    torch.testing.assert_close(new(x), reference.blur_pool(F.max_pool2d(down, 2, 1), [4, 4], 2), rtol=0, atol=1e-12)
    _same_state(net, new)


class Flip(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


def test_fallback_in_sequential_uses_its_order(reference):
    # An untraceable child makes the whole Sequential untraceable: its conv is found by module order.
    net = _randomize_bn(nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), Flip()))
    new, report = convert(net)
    assert report.placements() == {"0": "after-activation"}
    assert len(report.fallbacks) == 2 and "order taken from the nn.Sequential" in report.sites[0].note
    assert isinstance(new[2], nn.Sequential) and isinstance(new[2][1], BlurPool2d)
    x = torch.randn(1, 3, 10, 10)
    y = _conv_bn_relu_ref(net[0], net[1], x, reference)
    torch.testing.assert_close(new(x), y if y.sum() > 0 else -y, rtol=0, atol=1e-12)


def test_min_channels_and_exclude_skip_sites():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
    ).eval()
    new, report = convert(net, min_channels=4)
    assert new[0].stride == (2, 2) and new[3].stride == (1, 1)
    assert [(s.name, s.placement) for s in report.skipped] == [("0", "skipped")]
    assert "min_channels=4" in report.skipped[0].note and "min_channels=4" in str(report)
    new, report = convert(net, exclude=("6",))
    assert isinstance(new[6], nn.MaxPool2d) and [s.name for s in report.skipped] == ["6"]
    new, report = convert(net, exclude="[03]")
    assert new[0].stride == new[3].stride == (2, 2) and isinstance(new[6], MaxBlurPool2d)
    new, report = convert(net, replace=("conv",))
    assert isinstance(new[6], nn.MaxPool2d) and new[3].stride == (1, 1) and len(report.sites) == 2
    new, report = convert(net, replace="maxpool")
    assert new[0].stride == (2, 2) and isinstance(new[6], MaxBlurPool2d) and len(report.sites) == 1


def test_1d_and_3d_networks(reference):
    net1 = _randomize_bn(
        nn.Sequential(
            nn.Conv1d(2, 4, 5, 2, 2, bias=False),
            nn.BatchNorm1d(4),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.AvgPool1d(2, ceil_mode=True),
        )
    )
    new1, report1 = convert(net1)
    assert isinstance(new1[3], MaxBlurPool1d) and len(report1.sites) == 3
    x = torch.randn(2, 2, 37)
    c, bn = net1[0], net1[1]
    y = F.relu(
        F.batch_norm(
            F.conv1d(x, c.weight, None, 1, 2), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps
        )
    )
    y = reference.blur_pool(F.max_pool1d(reference.blur_pool(y, [4], 2), 2, 1), [4], 2)
    torch.testing.assert_close(new1(x), reference.blur_pool(y, [4], 2), rtol=0, atol=1e-12)

    net3 = nn.Sequential(nn.Conv3d(2, 3, 3, 2, 1), nn.SiLU(), nn.MaxPool3d(2), nn.Conv3d(3, 3, 1, 2)).eval()
    new3, report3 = convert(net3, filter_size=3)
    assert isinstance(new3[2], MaxBlurPool3d)
    assert [s.placement for s in report3.sites] == ["after-activation", "drop-in", "blurpool-then-1x1"]
    x = torch.randn(1, 2, 12, 11, 10)
    assert new3(x).shape == net3(x).shape
    y = reference.blur_pool(F.silu(F.conv3d(x, net3[0].weight, net3[0].bias, 1, 1)), [3, 3, 3], 2)
    torch.testing.assert_close(new3[:2](x), y, rtol=0, atol=1e-12)
    _same_state(net3, new3)


def test_report_prints_sites_flops_and_params():
    net = _randomize_bn(Block(4, 8, 2))
    new, report = convert(net, input_size=(1, 4, 16, 16))
    assert isinstance(report, ConvertReport)
    text = str(report)
    for needle in (
        "conv1",
        "after-activation",
        "downsample.0",
        "blurpool-then-1x1",
        "FLOPs",
        "params",
        "(1, 4, 16, 16)",
    ):
        assert needle in text
    # FLOPs against an independent count on the original and on the converted model.
    x = torch.randn(1, 4, 16, 16)
    for model, counted in ((net, report.flops_before), (new, report.flops_after)):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        assert counted == counter.get_total_flops()
    # conv1 now runs at stride 1: its MACs are 4x, so the total grows.
    assert report.flops_after > report.flops_before
    n_params = sum(p.numel() for p in net.parameters())
    assert report.params_before == report.params_after == n_params and f"{n_params:,}" in text


def test_inplace_modifies_the_given_model():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.MaxPool2d(2))
    conv = net[0]
    new, _ = convert(net, inplace=True)
    assert new is net and conv.stride == (1, 1) and isinstance(net[2], MaxBlurPool2d)


def test_blur_buffers_follow_the_model_dtype():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU()).to(torch.float32)
    new, _ = convert(net)
    assert new[1][1].filter_h.dtype == torch.float32
    assert new(torch.randn(1, 3, 8, 8, dtype=torch.float32)).dtype == torch.float32


# --------------------------------------------------------------------------- bad input


def test_bad_input_messages():
    net = nn.Sequential(nn.MaxPool2d(2))
    with pytest.raises(TypeError, match=r"`model` must be a torch\.nn\.Module, got list"):
        convert([net])
    with pytest.raises(ValueError, match=r"`replace` must name kinds .* got 'maxpol'\. Did you mean 'maxpool'"):
        convert(net, replace=("maxpol",))
    with pytest.raises(ValueError, match="`convert`: `filter_size`"):
        convert(net, filter_size="tri7x")
    with pytest.raises(ValueError, match="`convert`: `filter_size` must be >= 1"):
        convert(net, filter_size=0)
    with pytest.raises(ValueError, match=r"`padding_mode` must be one of .* Did you mean 'reflect'"):
        convert(net, padding_mode="reflct")
    with pytest.raises(ValueError, match="`min_channels` must be >= 1, got 0"):
        convert(net, min_channels=0)
    with pytest.raises(TypeError, match="`min_channels` must be an int"):
        convert(net, min_channels=2.0)
    with pytest.raises(ValueError, match="not both"):
        convert(net, example_input=torch.randn(1, 1, 4, 4), input_size=(1, 1, 4, 4))
    with pytest.raises(ValueError, match="`input_size` must be a tuple of positive ints"):
        convert(net, input_size=(1, 0, 4))
    with pytest.raises(ValueError, match="the model failed on the example input"):
        convert(nn.Sequential(nn.Conv2d(3, 4, 3)), input_size=(1, 5, 8, 8))
    with pytest.raises(TypeError, match="`inplace` must be a bool"):
        convert(net, inplace=1)


# --------------------------------------------------------------------------- the model zoo

ZOO_SKIPPED_STEM = {
    "resnet18": ["conv1"],
    "resnet50": ["conv1"],
    "vgg16_bn": [],  # its first conv has stride 1
    "densenet121": ["features.conv0"],
    "mobilenet_v2": ["features.0.0"],
}


def _copy_by_position(source: nn.Module, target: nn.Module) -> None:
    """Copy every state_dict tensor in order. Blurs add no entries (their buffers are non-persistent),
    so the two lists align one to one; names and shapes are checked on the way."""
    src, dst = source.state_dict(), target.state_dict()
    assert len(src) == len(dst)
    with torch.no_grad():
        for (ks, vs), (kd, vd) in zip(src.items(), dst.items(), strict=True):
            assert vs.shape == vd.shape and ks.rsplit(".", 1)[-1] == kd.rsplit(".", 1)[-1], (ks, kd)
            vd.copy_(vs)


@pytest.mark.parametrize("arch", list(ZOO_SKIPPED_STEM))
def test_convert_reproduces_the_zoo_antialiased_builder(arch, monkeypatch):
    """convert(baseline, min_channels=4) computes what get_model(arch, filter_size=4) computes.

    ``min_channels=4`` keeps the RGB stem conv strided, as the reference does. The one placement
    that differs by design is ResNet's stem max-pool: convert keeps MaxPool(3, s2, p1)'s window as
    MaxBlurPool2d(3, 2, 1), the reference uses MaxPool(2, s1) then BlurPool. DenseNet's stem
    MaxPool(3, s2, p1) -> MaxBlurPool2d(3, 2, 1) is exactly the reference's MaxPool(3, s1, p1) +
    BlurPool, and its transitions' AvgPool(2) -> BlurPool is the reference's too (on even sizes:
    AvgPool floors odd sizes, BlurPool rounds up, so convert checks the size on the example input).
    """
    torch.set_default_dtype(torch.float32)  # big nets: float32 is enough (the fixture restores)
    if arch.startswith("vgg"):
        # VGG's classifier holds 123M of its 138M parameters and convert() does not touch it:
        # zero-initialise it (a memset instead of random draws) and compare the features instead.
        monkeypatch.setattr(
            nn.Linear, "reset_parameters", lambda self: (nn.init.zeros_(self.weight), nn.init.zeros_(self.bias))
        )
    baseline = _randomize_bn(models.get_model(arch, filter_size=None))
    reference = models.get_model(arch, filter_size=4).eval()
    _copy_by_position(baseline, reference)
    keys = list(baseline.state_dict())
    x = torch.randn(1, 3, 64, 64)
    # DenseNet needs the example input for its AvgPool(2) transitions; the others skip the extra runs.
    example = x if arch.startswith("densenet") else None
    converted, report = convert(baseline, min_channels=4, example_input=example, inplace=True)
    assert list(converted.state_dict()) == keys
    assert [s.name for s in report.skipped] == ZOO_SKIPPED_STEM[arch]
    assert {s.placement for s in report.sites} <= {"drop-in", "after-activation", "blurpool-then-1x1"}
    if arch.startswith("vgg"):
        converted, reference = converted.features, reference.features
    with torch.no_grad():
        expected = reference(x)
        scale = expected.abs().max()
        if arch.startswith("resnet"):
            assert isinstance(converted.maxpool, MaxBlurPool2d) and converted.maxpool.kernel_size == (3, 3)
            assert (converted(x) - expected).abs().max() > 1e-3 * scale  # the stem differs by design
            converted.maxpool = reference.maxpool  # with the reference's stem, the rest agrees
            places = report.placements()
            assert places["layer2.0.downsample.0"] == "blurpool-then-1x1"
            assert places["layer2.0.conv1" if arch == "resnet18" else "layer2.0.conv2"] == "after-activation"
        torch.testing.assert_close(converted(x), expected, rtol=0, atol=1e-5 * float(scale))
