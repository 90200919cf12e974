"""antialias.layers: BlurPool*, MaxBlurPool*, ConvBlurPool2d, BlurConv2d (issue 2 items 4, 5 and 9)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import antialias
from antialias import functional as AF
from antialias.layers import (
    BlurConv2d,
    BlurPool1d,
    BlurPool2d,
    BlurPool3d,
    ConvBlurPool2d,
    MaxBlurPool1d,
    MaxBlurPool2d,
    MaxBlurPool3d,
)

BLUR_POOL = {1: (BlurPool1d, AF.blur_pool1d), 2: (BlurPool2d, AF.blur_pool2d), 3: (BlurPool3d, AF.blur_pool3d)}
MAX_BLUR_POOL = {
    1: (MaxBlurPool1d, AF.max_blur_pool1d),
    2: (MaxBlurPool2d, AF.max_blur_pool2d),
    3: (MaxBlurPool3d, AF.max_blur_pool3d),
}
MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
SPATIAL = {1: (10,), 2: (9, 8), 3: (5, 6, 7)}
AXES = {1: ("l",), 2: ("h", "w"), 3: ("d", "h", "w")}


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def pascal(n):
    row = torch.tensor([math.comb(n - 1, i) for i in range(n)], dtype=torch.float64)
    return row / row.sum()


def test_public_exports():
    for name in (
        "BlurPool1d",
        "BlurPool2d",
        "BlurPool3d",
        "MaxBlurPool1d",
        "MaxBlurPool2d",
        "MaxBlurPool3d",
        "ConvBlurPool2d",
        "BlurConv2d",
    ):
        assert getattr(antialias, name) is getattr(antialias.layers, name)


# =========================================================================== module == function


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("mode", ["reflect", "replicate", "zeros", "circular"])
@pytest.mark.parametrize(("filter_size", "stride"), [(4, 2), ("bin5", 3), (1, 2), (2, 1)])
def test_blur_pool_module_equals_function(nd, mode, filter_size, stride):
    module_cls, fn = BLUR_POOL[nd]
    x = rand(2, 3, *SPATIAL[nd])
    module = module_cls(3, filter_size, stride, mode)
    torch.testing.assert_close(module(x), fn(x, filter_size, stride, mode), rtol=0, atol=0)
    torch.testing.assert_close(module(x[0]), fn(x[0], filter_size, stride, mode), rtol=0, atol=0)


def test_blur_pool2d_anisotropic_module_equals_function():
    x = rand(2, 3, 9, 8)
    module = BlurPool2d(None, (2, torch.tensor([1.0, 3.0, 1.0])), (1, 3), "replicate")
    expected = AF.blur_pool2d(x, (2, torch.tensor([1.0, 3.0, 1.0])), (1, 3), "replicate")
    torch.testing.assert_close(module(x), expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize(
    ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    [(2, None, 0, 1, False), (3, 2, 1, 1, True), (2, 1, 1, 2, False), (3, 3, 0, 1, True)],
)
@pytest.mark.parametrize("mode", ["reflect", "circular"])
def test_max_blur_pool_module_equals_function(nd, kernel_size, stride, padding, dilation, ceil_mode, mode):
    module_cls, fn = MAX_BLUR_POOL[nd]
    x = rand(2, 3, *SPATIAL[nd])
    module = module_cls(
        kernel_size, stride, padding, dilation, ceil_mode, channels=3, filter_size="tri3", padding_mode=mode
    )
    expected = fn(x, kernel_size, stride, padding, dilation, ceil_mode, "tri3", mode)
    torch.testing.assert_close(module(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("norm", [None, nn.BatchNorm2d])
@pytest.mark.parametrize("act", [None, nn.ReLU])
@pytest.mark.parametrize(
    ("stride", "filter_size", "mode"), [(2, 4, "reflect"), (3, "bin5", "zeros"), ((1, 2), (3, 2), "circular")]
)
def test_conv_blur_pool2d_equals_composition(norm, act, stride, filter_size, mode):
    """ConvBlurPool2d == conv at stride 1 -> norm -> act -> blur_pool2d (the paper's placement)."""
    layer = ConvBlurPool2d(
        3, 5, 3, stride, 1, norm_layer=norm, act_layer=act, filter_size=filter_size, padding_mode=mode
    )
    layer.eval()
    x = rand(2, 3, 11, 10)
    y = F.conv2d(x, layer.conv.weight, layer.conv.bias, stride=1, padding=1)
    if norm is not None:
        y = F.batch_norm(y, layer.norm.running_mean, layer.norm.running_var, layer.norm.weight, layer.norm.bias)
        assert isinstance(layer.norm, nn.BatchNorm2d)
    if act is not None:
        y = torch.relu(y)
        assert isinstance(layer.act, nn.ReLU)
    expected = AF.blur_pool2d(y, filter_size, stride, mode)
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("kernel_size", "stride", "padding"), [(3, 2, 1), (1, 2, 0), (5, 3, 2)])
@pytest.mark.parametrize("filter_size", [3, "tri4"])
def test_blur_conv2d_equals_composition(kernel_size, stride, padding, filter_size):
    """BlurConv2d == blur2d at stride 1, then the strided conv (the documented deviation)."""
    layer = BlurConv2d(4, 6, kernel_size, stride, padding, filter_size=filter_size)
    x = rand(2, 4, 12, 11)
    expected = F.conv2d(AF.blur2d(x, filter_size), layer.conv.weight, layer.conv.bias, stride, padding)
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)
    assert layer(x).shape == nn.Conv2d(4, 6, kernel_size, stride, padding)(x).shape


@pytest.mark.parametrize("stride", [2, 3])
def test_blur_conv2d_1x1_equals_blur_pool_then_conv(stride):
    """Docstring claim: for a 1x1 conv, blur-first equals BlurPool then the conv at stride 1."""
    layer = BlurConv2d(4, 6, 1, stride, filter_size=4)
    x = rand(2, 4, 12, 11)
    expected = F.conv2d(AF.blur_pool2d(x, 4, stride), layer.conv.weight, layer.conv.bias)
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)


def test_blur_pool_replaces_avg_pool():
    x = rand(2, 3, 8, 10)
    torch.testing.assert_close(BlurPool2d(3, "rect2")(x), nn.AvgPool2d(2)(x), rtol=0, atol=1e-6)


# =========================================================================== buffers and state_dict


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_filter_buffers_non_persistent(nd):
    module_cls, _ = BLUR_POOL[nd]
    module = module_cls(4, filter_size=(2, 3, 5)[:nd])
    assert module.state_dict() == {}
    assert MAX_BLUR_POOL[nd][0](2).state_dict() == {}
    names = {name for name, _ in module.named_buffers()}
    assert names == {f"filter_{a}" for a in AXES[nd]}
    for axis, n, row in zip(AXES[nd], (2, 3, 5)[:nd], module.filter, strict=True):
        assert getattr(module, f"filter_{axis}") is row
        torch.testing.assert_close(row, pascal(n).float())
    assert list(module.parameters()) == []


def test_kernel_property_is_outer_product():
    module = BlurPool2d(filter_size=("tri3", 4))
    expected = pascal(3)[:, None] * pascal(4)[None, :]
    torch.testing.assert_close(module.kernel, expected.float())


def _baseline_net(pool):
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), pool, nn.Conv2d(8, 4, 1))


@pytest.mark.parametrize(
    "pool",
    [
        lambda: MaxBlurPool2d(2),
        lambda: BlurPool2d(8, "bin5"),
        lambda: MaxBlurPool2d(3, 2, 1, channels=8, filter_size=5),
    ],
)
def test_baseline_checkpoint_loads_strict(pool):
    """Swapping MaxPool2d/AvgPool2d for our layers keeps the state_dict keys: strict loading works."""
    baseline = _baseline_net(nn.MaxPool2d(2))
    model = _baseline_net(pool())
    assert model.state_dict().keys() == baseline.state_dict().keys()
    result = model.load_state_dict(baseline.state_dict(), strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    torch.testing.assert_close(model[0].weight, baseline[0].weight)


def test_conv_blur_pool2d_state_dict_keys():
    layer = ConvBlurPool2d(3, 8, 3, norm_layer=nn.BatchNorm2d)
    keys = set(layer.state_dict())
    assert keys == {
        "conv.weight",
        "conv.bias",
        "norm.weight",
        "norm.bias",
        "norm.running_mean",
        "norm.running_var",
        "norm.num_batches_tracked",
    }
    assert set(BlurConv2d(3, 8, 3).state_dict()) == {"conv.weight", "conv.bias"}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "make", [lambda: BlurPool2d(3), lambda: MaxBlurPool2d(2, channels=3), lambda: ConvBlurPool2d(3, 3, 3, padding=1)]
)
def test_buffers_follow_to_dtype(make, dtype):
    module = make().to(dtype)
    for name, buf in module.named_buffers():
        assert buf.dtype == dtype, name
    x = rand(2, 3, 8, 8)
    out = module(x.to(dtype))
    assert out.dtype == dtype
    expected = module.to(torch.float32)(x)
    tol = {torch.float64: 1e-6, torch.float16: 1e-2, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(out.float(), expected, rtol=tol, atol=tol)


def test_factory_kwargs():
    module = BlurPool2d(3, dtype=torch.float64, device="cpu")
    assert module.filter_h.dtype == torch.float64 and module.filter_h.device.type == "cpu"
    conv = ConvBlurPool2d(3, 4, 3, dtype=torch.float64, norm_layer=nn.BatchNorm2d)
    assert conv.conv.weight.dtype == torch.float64 and conv.blur.filter_w.dtype == torch.float64
    assert conv.norm.weight.dtype == torch.float64
    blur_conv = BlurConv2d(3, 4, 3, dtype=torch.float64)
    assert blur_conv.conv.weight.dtype == torch.float64 and blur_conv.blur.filter_h.dtype == torch.float64
    # The default dtype is followed when none is given.
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert BlurPool2d().filter_h.dtype == torch.float64
    finally:
        torch.set_default_dtype(prev)


# ------------------------------------------------------------------ reference-layout checkpoints


def _reference_filt(channels, k, nd=2):
    kernel = pascal(k)
    for _ in range(nd - 1):
        kernel = kernel[..., None] * pascal(k)
    return kernel.float().expand(channels, 1, *kernel.shape).clone()


@pytest.mark.parametrize("k", [2, 3, 4, 5])
@pytest.mark.parametrize("channels", [8, None])
def test_reference_layout_filt_loads_and_is_dropped(k, channels):
    """The reference stores BlurPool's kernel as a persistent ``<prefix>.filt`` of shape (C, 1, k, k)."""
    model = _baseline_net(BlurPool2d(channels, k))
    state = dict(_baseline_net(nn.MaxPool2d(2)).state_dict())
    state["3.filt"] = _reference_filt(8, k)
    result = model.load_state_dict(state, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert "3.filt" not in model.state_dict()
    torch.testing.assert_close(model[3].filter_h, pascal(k).float())
    # The same for the max-blur pool and for 1-D.
    max_model = _baseline_net(MaxBlurPool2d(2, channels=channels, filter_size=k))
    max_model.load_state_dict(state, strict=True)
    one_d = nn.Sequential(BlurPool1d(channels, k))
    one_d.load_state_dict({"0.filt": _reference_filt(8, k, nd=1)}, strict=True)


@pytest.mark.parametrize(
    ("stored", "match"),
    [
        (
            lambda: _reference_filt(8, 3),
            r"3\.filt: the checkpoint's blur filter \(shape \(8, 1, 3, 3\)\) is not this layer's filter_size=4",
        ),
        (lambda: torch.full((8, 1, 4, 4), 1 / 16), r"shape \(8, 1, 4, 4\)\) is not this layer's filter_size=4"),
        (lambda: _reference_filt(6, 4), r"channels=8"),
        (lambda: _reference_filt(8, 4, nd=1), r"shape \(8, 1, 4\)"),
    ],
)
def test_reference_layout_wrong_filter_names_the_fix(stored, match):
    model = _baseline_net(BlurPool2d(8, 4))
    state = dict(_baseline_net(nn.MaxPool2d(2)).state_dict())
    state["3.filt"] = stored()
    with pytest.raises(RuntimeError, match=match) as info:
        model.load_state_dict(state, strict=True)
    assert "Build the model with the checkpoint's filter size" in str(info.value)


# ------------------------------------------------------------------ meta device


CUSTOM = torch.tensor([1.0, 2.0, 1.0])  # made here: inside torch.device("meta") it would be a meta tensor


@pytest.mark.parametrize(
    ("make", "sizes"),
    [
        (lambda: BlurPool2d(3, ("tri3", 5)), (3, 5)),
        (lambda: MaxBlurPool3d(2, filter_size=4), (4, 4, 4)),
        (lambda: BlurPool1d(filter_size=CUSTOM), (3,)),
    ],
)
def test_reset_parameters_after_to_empty_from_meta(make, sizes):
    with torch.device("meta"):
        module = make()
    if sizes != (3,):  # a custom row is a CPU tensor already; only built-in rows follow the meta device
        assert all(b.is_meta for b in module.buffers())
    module.to_empty(device="cpu")
    module.reset_parameters()
    for row, n in zip(module.filter, sizes, strict=True):
        assert row.device.type == "cpu"
        torch.testing.assert_close(row, pascal(n).float())
    x = rand(1, 3, *(8,) * len(sizes))
    assert torch.equal(module(x), make()(x))


def test_reset_parameters_of_composite_after_to_empty():
    with torch.device("meta"):
        layer = ConvBlurPool2d(3, 4, 3, filter_size="bin5")
    layer.to_empty(device="cpu")
    for m in layer.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    torch.testing.assert_close(layer.blur.filter_h, pascal(5).float())
    torch.testing.assert_close(layer.blur.filter_w, pascal(5).float())


def test_deepcopy_keeps_filters():
    module = MaxBlurPool2d(2, channels=3, filter_size="tri3")
    clone = copy.deepcopy(module)
    x = rand(1, 3, 8, 8)
    assert torch.equal(clone(x), module(x))
    assert clone.filter_h is not module.filter_h


# =========================================================================== drop-in shapes


pool_args = st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3)).flatmap(
    lambda kd: st.tuples(
        st.just(kd[0]), st.sampled_from([None, kd[1]]), st.integers(0, kd[0] // 2), st.just(kd[2]), st.booleans()
    )
)


@pytest.mark.filterwarnings("ignore:antialias. reflect padding:UserWarning")
@given(args=pool_args, h=st.integers(0, 14), w=st.integers(0, 14), filter_size=st.integers(1, 5))
def test_max_blur_pool2d_is_drop_in_for_max_pool2d(args, h, w, filter_size):
    kernel_size, stride, padding, dilation, ceil_mode = args
    span = dilation * (kernel_size - 1)
    fit = max(1, span - 2 * padding + 1)  # smallest size with a non-empty max-pool output
    x = rand(1, 2, h + fit, w + fit)
    baseline = nn.MaxPool2d(kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)
    ours = MaxBlurPool2d(kernel_size, stride, padding, dilation, ceil_mode, filter_size=filter_size)
    assert ours(x).shape == baseline(x).shape


@pytest.mark.filterwarnings("ignore:antialias. reflect padding:UserWarning")
@given(args=pool_args, size=st.integers(0, 10), nd=st.sampled_from([1, 3]))
def test_max_blur_pool1d_3d_are_drop_in(args, size, nd):
    kernel_size, stride, padding, dilation, ceil_mode = args
    span = dilation * (kernel_size - 1)
    x = rand(1, 2, *(size + max(1, span - 2 * padding + 1),) * nd)
    baseline = MAX_POOL[nd](kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)
    ours = MAX_BLUR_POOL[nd][0](kernel_size, stride, padding, dilation, ceil_mode)
    assert ours(x).shape == baseline(x).shape


@given(
    kernel_size=st.integers(1, 5),
    stride=st.integers(1, 3),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
    h=st.integers(0, 12),
    w=st.integers(0, 12),
    filter_size=st.integers(1, 5),
)
def test_conv_blur_pool2d_shape_equals_strided_conv(kernel_size, stride, padding, dilation, h, w, filter_size):
    span = dilation * (kernel_size - 1)
    # Keep the stride-1 conv's output >= 3 so the default reflect pad of every filter up to 5 fits.
    x = rand(1, 2, h + span + 3, w + span + 3)
    ours = ConvBlurPool2d(2, 3, kernel_size, stride, padding, dilation, filter_size=filter_size)
    blur_first = BlurConv2d(2, 3, kernel_size, stride, padding, dilation, filter_size=filter_size)
    strided = nn.Conv2d(2, 3, kernel_size, stride, padding, dilation)
    assert ours(x).shape == strided(x).shape
    assert blur_first(x).shape == strided(x).shape


# =========================================================================== repr, layouts, grads


def test_extra_repr_shows_filter_stride_padding():
    r = repr(BlurPool2d(64, "tri4", 2))
    assert r == "BlurPool2d(64, filter_size='tri4', stride=(2, 2), padding_mode='reflect')"
    r = repr(BlurPool1d(None, 5, 3, "circular"))
    assert "filter_size=5" in r and "stride=(3,)" in r and "padding_mode='circular'" in r
    r = repr(MaxBlurPool2d(3, 2, 1, ceil_mode=True, filter_size="bin5", padding_mode="zeros"))
    for part in (
        "kernel_size=(3, 3)",
        "stride=(2, 2)",
        "padding=(1, 1)",
        "dilation=(1, 1)",
        "ceil_mode=True",
        "filter_size='bin5'",
        "padding_mode='zeros'",
    ):
        assert part in r, part
    r = repr(ConvBlurPool2d(3, 8, 3, 2, 1, filter_size=3))
    assert "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in r
    assert "BlurPool2d(8, filter_size=3, stride=(2, 2), padding_mode='reflect')" in r
    r = repr(BlurConv2d(3, 8, 3, 2, 1))
    assert "BlurPool2d(3, filter_size=4, stride=(1, 1)" in r and "stride=(2, 2)" in r


@pytest.mark.parametrize(
    "make",
    [
        lambda: BlurPool2d(5),
        lambda: MaxBlurPool2d(2, channels=5),
        lambda: ConvBlurPool2d(5, 6, 3, padding=1),
        lambda: BlurConv2d(5, 6, 3, padding=1),
    ],
)
def test_channels_last_module(make):
    module = make()
    x = rand(2, 5, 10, 9)
    out = module(x.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, module(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: BlurPool2d(2, 3),
        lambda: MaxBlurPool2d(2, channels=2, padding=1),
        lambda: BlurPool3d(2, 2),
        lambda: MaxBlurPool1d(3, 2),
    ],
)
def test_module_gradcheck(make):
    module = make().double()
    nd = module._nd
    x = rand(1, 2, *SPATIAL[nd][:nd] if nd != 3 else (3, 3, 4), dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(module, (x,))


def test_noncontiguous_module_input():
    module = MaxBlurPool2d(2, channels=3)
    x = rand(2, 3, 12, 14).transpose(2, 3)[..., ::2]
    assert not x.is_contiguous()
    torch.testing.assert_close(module(x), module(x.contiguous()), rtol=0, atol=1e-6)


# =========================================================================== bad input (item 9)


@pytest.mark.parametrize(
    "make",
    [
        lambda: BlurPool2d(4),
        lambda: MaxBlurPool2d(2, channels=4),
        lambda: BlurPool1d(4),
        lambda: MaxBlurPool3d(2, channels=4),
    ],
)
def test_wrong_channel_count(make):
    module = make()
    name = type(module).__name__
    nd = module._nd
    x = rand(2, 3, *(6,) * nd)
    shape = str(tuple(x.shape)).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(
        ValueError,
        match=rf"^`{name}`: `input` must have 4 channels, got shape {shape} \(3 channels\)\. "
        r"Build the layer with channels=3 or channels=None\.",
    ):
        module(x)
    with pytest.raises(ValueError, match=r"`input` must have 4 channels, .*\(3 channels\)"):
        module(x[0])  # unbatched (C, ...)
    assert module(rand(2, 4, *(6,) * nd)).shape[1] == 4


def test_conv_blur_pool_wrong_channels_raise():
    with pytest.raises(RuntimeError):
        ConvBlurPool2d(3, 4, 3)(rand(1, 5, 8, 8))


@pytest.mark.parametrize("channels", [0, -1, True, 2.0, "3"])
def test_bad_channels_argument(channels):
    with pytest.raises(
        ValueError, match=rf"^`BlurPool2d`: `channels` must be a positive int or None, got {channels!r}\."
    ):
        BlurPool2d(channels)


@pytest.mark.parametrize("make", [lambda: BlurPool2d(3), lambda: MaxBlurPool2d(2)])
@pytest.mark.parametrize("x", [rand(8, 8), rand(1, 1, 2, 8, 8)])
def test_module_wrong_ndim(make, x):
    module = make()
    with pytest.raises(
        ValueError,
        match=rf"^`{type(module).__name__}`: `input` must have 4 dims \(N, C, H, W\) or 3 without the batch, got shape",
    ):
        module(x)


@pytest.mark.parametrize("make", [lambda: BlurPool2d(3), lambda: MaxBlurPool2d(2, channels=3)])
def test_module_integer_input(make):
    with pytest.raises(
        TypeError, match=r"`input` must be a floating-point tensor, got dtype torch.int64\. Convert it first"
    ):
        make()(torch.ones(1, 3, 8, 8, dtype=torch.int64))


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: BlurPool2d(3, 0), ValueError, r"^`BlurPool2d`: `filter_size` must be >= 1, got 0"),
        (
            lambda: BlurPool2d(3, "tri-5"),
            ValueError,
            r"^`BlurPool2d`: `filter_size` must be an int or one of .*got 'tri-5'\. Did you mean 'tri4'\?",
        ),
        (lambda: BlurPool2d(3, 4, 0), ValueError, r"^`BlurPool2d`: `stride` must be >= 1, got 0\."),
        (lambda: BlurPool3d(3, 4, (2, 0, 2)), ValueError, r"^`BlurPool3d`: `stride` must be >= 1, got \(2, 0, 2\)\."),
        (
            lambda: BlurPool2d(3, 4, 2, "reflection"),
            ValueError,
            r"^`BlurPool2d`: `padding_mode` must be one of .*got 'reflection'\. Did you mean 'reflect'\?",
        ),
        (
            lambda: BlurPool2d(3, torch.tensor([1.0, float("nan")])),
            ValueError,
            r"^`BlurPool2d`: a custom filter must be finite",
        ),
        (
            lambda: BlurPool2d(3, torch.tensor([2.0, -2.0])),
            ValueError,
            r"^`BlurPool2d`: a custom filter must have a non-zero sum",
        ),
        (lambda: MaxBlurPool2d(2, stride=0), ValueError, r"^`MaxBlurPool2d`: `stride` must be >= 1, got 0\."),
        (lambda: MaxBlurPool2d(0), ValueError, r"^`MaxBlurPool2d`: `kernel_size` must be >= 1, got 0\."),
        (lambda: MaxBlurPool2d(2, filter_size=-1), ValueError, r"^`MaxBlurPool2d`: `filter_size` must be >= 1, got -1"),
        (
            lambda: MaxBlurPool2d(2, padding_mode="zero"),
            ValueError,
            r"^`MaxBlurPool2d`: `padding_mode` .*Did you mean 'zeros'\?",
        ),
        (
            lambda: MaxBlurPool2d(3, padding=2),
            ValueError,
            r"^`MaxBlurPool2d`: `padding` must be at most half of `kernel_size`",
        ),
        (
            lambda: MaxBlurPool1d(2, stride=(2, 2)),
            TypeError,
            r"^`MaxBlurPool1d`: `stride` must be an int or a tuple of 1 ints",
        ),
        (
            lambda: ConvBlurPool2d(3, 4, 3, filter_size="bin4"),
            ValueError,
            r"^`BlurPool2d`: `filter_size` .*Did you mean 'bin5'\?",
        ),
        (
            lambda: BlurConv2d(3, 4, 3, padding_mode="circle"),
            ValueError,
            r"^`BlurPool2d`: `padding_mode` .*Did you mean 'circular'\?",
        ),
    ],
)
def test_bad_constructor_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()
