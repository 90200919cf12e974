"""antialias.functional: blur_pool*, blur*, max_blur_pool* (issue 2 items 3, 5, 6 and 9).

Every value check compares against an independent formulation from conftest.py (explicit index
padding + one depthwise convolution with the full outer-product kernel), against a plain PyTorch
op with the same meaning (avg_pool2d, max_pool2d, slicing), or against the paper's hand-checked
1-D toy example.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from antialias import functional as AF

MODES = ("reflect", "replicate", "zeros", "circular")
BLUR_POOL = {1: AF.blur_pool1d, 2: AF.blur_pool2d, 3: AF.blur_pool3d}
BLUR = {1: AF.blur1d, 2: AF.blur2d, 3: AF.blur3d}
MAX_BLUR_POOL = {1: AF.max_blur_pool1d, 2: AF.max_blur_pool2d, 3: AF.max_blur_pool3d}
MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
SPATIAL = {1: (9,), 2: (7, 8), 3: (5, 6, 7)}


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def call(nd, kind, x, **kw):
    """One entry point for the nine ops (kind: 'blur_pool', 'blur', 'max_blur_pool')."""
    if kind == "blur_pool":
        return BLUR_POOL[nd](x, **kw)
    if kind == "blur":
        return BLUR[nd](x, **kw)
    return MAX_BLUR_POOL[nd](x, kw.pop("kernel_size", 2), **kw)


def ref_dense_max(x, kernel_size, padding=0, dilation=1, circular=False):
    """Dense (stride-1) max with ATen's max-pool; circular wraps the input first."""
    nd = x.ndim - 2
    if circular:
        span = dilation * (kernel_size - 1)
        idx = [torch.arange(0, n + span) % n for n in x.shape[2:]]
        for axis, i in enumerate(idx):
            x = x.index_select(2 + axis, i)
        padding = 0
    return MAX_POOL[nd](x, kernel_size, 1, padding, dilation)


OPS = [(nd, kind) for kind in ("blur_pool", "blur", "max_blur_pool") for nd in (1, 2, 3)]
OP_IDS = [f"{kind}{nd}d" for nd, kind in OPS]


# =========================================================================== smoke and cardinality


@pytest.mark.parametrize(("nd", "kind"), OPS, ids=OP_IDS)
def test_smoke_dtype_device(nd, kind):
    for batch in (1, 3):
        x = rand(batch, 2, *SPATIAL[nd])
        out = call(nd, kind, x)
        assert out.dtype == x.dtype and out.device == x.device
        assert out.shape[:2] == (batch, 2)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("filter_size", [1, 2, "tri3", 4, "bin5", 7])
def test_cardinality_blur_pool(nd, filter_size):
    spatial = SPATIAL[nd]
    for stride in (1, 2, 3):
        out = BLUR_POOL[nd](rand(2, 3, *spatial), filter_size=filter_size, stride=stride)
        assert out.shape == (2, 3, *(math.ceil(n / stride) for n in spatial))


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_cardinality_blur_is_size_preserving(nd, mode):
    x = rand(1, 2, *SPATIAL[nd])
    for filter_size in (1, 2, 5):
        out = BLUR[nd](x, filter_size=filter_size, padding_mode=mode)
        assert out.shape == x.shape
        torch.testing.assert_close(out, BLUR_POOL[nd](x, filter_size, 1, mode), rtol=0, atol=0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", range(1, 8))
def test_output_size_ceil_all_sizes(mode, k):
    """Output is ceil(H/s) for k in 1..7, H in 1..40, s in 1..3; reflect on tiny maps warns."""
    for size in range(1, 41):
        x = rand(1, 1, size, size + 1, seed=size)
        too_small = max(k // 2, (k - 1) // 2) >= size  # reflect needs pad < length, on H at least
        for stride in (1, 2, 3):
            if mode == "reflect" and too_small:
                with pytest.warns(UserWarning, match=r"reflect padding .* padded with 'replicate' instead"):
                    out = AF.blur_pool2d(x, k, stride, mode)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    out = AF.blur_pool2d(x, k, stride, mode)
            assert out.shape == (1, 1, math.ceil(size / stride), math.ceil((size + 1) / stride)), (size, stride)
            out1 = AF.blur_pool1d(x[:, :, :, 0], k, stride, "replicate" if mode == "reflect" else mode)
            assert out1.shape == (1, 1, math.ceil(size / stride))


# =========================================================================== parity with the reference


@pytest.fixture(params=["fast", "traceable"])
def path(request, monkeypatch):
    """Run a test on the eager fast path and on the traceable path (the one compile/export/ONNX use)."""
    if request.param == "traceable":
        from antialias import _kernels

        monkeypatch.setattr(_kernels, "use_fast_path", lambda x: False)
    return request.param


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_reference_is_the_conv_formulation(reference, nd, mode):
    """Self-check of conftest's reference: its tap sum equals pad + depthwise conv (float32)."""
    x = rand(2, 3, *SPATIAL[nd])
    for k, stride in ((1, 1), (2, 2), (4, 3), (5, 2)):
        torch.testing.assert_close(
            reference.blur_pool(x, (k,) * nd, stride, mode), reference.conv(x, (k,) * nd, stride, mode),
            rtol=1e-6, atol=1e-6,
        )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", range(1, 8))
def test_blur_pool2d_matches_reference(reference, path, mode, k):
    """Reference formulation to 1e-6 in float32: k = 1..7, strides 1..3, odd and even sizes."""
    for stride in (1, 2, 3):
        for size in ((8, 10), (9, 7), (5, 4)):
            x = rand(2, 3, *size, seed=k * 10 + stride)
            out = AF.blur_pool2d(x, k, stride, mode)
            ref = reference.blur_pool(x.double(), (k, k), stride, mode).float()
            assert out.shape == ref.shape
            torch.testing.assert_close(
                out, ref, rtol=0, atol=1e-6, msg=lambda m, stride=stride, size=size: f"stride={stride} size={size}: {m}"
            )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_blur_pool1d_3d_match_reference(reference, path, mode, k):
    for stride in (1, 2, 3):
        # 600 > the fast path's longest banded axis: that length goes through the other kernel.
        for length in (11, 600):
            x1 = rand(2, 3, length, seed=k)
            torch.testing.assert_close(
                AF.blur_pool1d(x1, k, stride, mode), reference.blur_pool(x1.double(), (k,), stride, mode).float(),
                rtol=0, atol=1e-6,
            )
        x3 = rand(1, 2, 5, 6, 7, seed=k)
        torch.testing.assert_close(
            AF.blur_pool3d(x3, k, stride, mode), reference.blur_pool(x3.double(), (k, k, k), stride, mode).float(),
            rtol=0, atol=1e-6,
        )


@given(
    mode=st.sampled_from(MODES),
    kh=st.integers(1, 7),
    kw=st.integers(1, 7),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    h=st.integers(4, 13),
    w=st.integers(4, 13),
    seed=st.integers(0, 2**16),
)
def test_blur_pool2d_anisotropic_matches_reference(reference, mode, kh, kw, sh, sw, h, w, seed):
    x = rand(1, 2, h, w, seed=seed)
    out = AF.blur_pool2d(x, (kh, kw), (sh, sw), mode)
    ref = reference.blur_pool(x.double(), (kh, kw), (sh, sw), mode).float()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_blur_pool3d_anisotropic_matches_reference(reference, mode):
    x = rand(1, 2, 6, 7, 8)
    out = AF.blur_pool3d(x, (2, "tri3", 5), (1, 2, 3), mode)
    ref = reference.blur_pool(x.double(), (2, 3, 5), (1, 2, 3), mode).float()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("taps", [[1.0, 2.0, 3.0], [1.0, -0.25, 1.0, 0.5], [2.0]])
def test_custom_filter_matches_reference(reference, mode, taps):
    x = rand(2, 3, 9, 8)
    out = AF.blur_pool2d(x, torch.tensor(taps), 2, mode)
    ref = reference.blur_pool(x.double(), (taps, taps), 2, mode).float()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("k", [1, 3, 4, 6])
def test_precomputed_filter_argument(reference, k):
    """``filter=`` rows (what modules pass) override ``filter_size``."""
    x = rand(2, 3, 9, 8)
    row_h = reference.row(k).float()
    row_w = reference.row(2).float()
    out = AF.blur_pool2d(x, filter_size=5, stride=2, filter=(row_h, row_w))
    torch.testing.assert_close(out, reference.blur_pool(x.double(), (k, 2), 2).float(), rtol=0, atol=1e-6)
    out = AF.max_blur_pool2d(x, 2, filter_size=5, filter=(row_h, row_w))
    ref = reference.blur_pool(ref_dense_max(x.double(), 2), (k, 2), 2).float()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("k", [4, 5, 6, 7])
def test_reflect_on_tiny_map_falls_back_to_replicate(reference, path, k):
    """An axis too short to reflect is replicate-padded (documented), with a warning; others reflect."""
    x = rand(2, 3, 2, 9)  # reflect needs max(pad) < 2 on H: k >= 4 is too large; W=9 reflects
    with pytest.warns(UserWarning, match=r"needs an axis longer than \d+, got 2"):
        out = AF.blur_pool2d(x, k, 2, "reflect")
    ref = reference.blur_pool(x.double(), (k, k), 2, modes=("replicate", "reflect")).float()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [1, 2])
@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_tiny_maps_cifar_style_do_not_raise(reference, size, k):
    """1x1 and 2x2 maps (end of CIFAR nets): reflect warns and equals replicate; circular wraps."""
    x = rand(2, 3, size, size)
    before, after = (k - 1) // 2, k // 2
    if max(before, after) >= size:
        with pytest.warns(UserWarning, match="reflect padding"):
            out = AF.blur_pool2d(x, k, 2, "reflect")
    else:
        out = AF.blur_pool2d(x, k, 2, "reflect")
    torch.testing.assert_close(out, AF.blur_pool2d(x, k, 2, "replicate" if max(before, after) >= size else "reflect"))
    circ = AF.blur_pool2d(x, k, 2, "circular")
    torch.testing.assert_close(circ, reference.blur_pool(x.double(), (k, k), 2, "circular").float(), rtol=0, atol=1e-6)
    with (
        pytest.warns(UserWarning, match="reflect padding") if max(before, after) >= size else warnings.catch_warnings()
    ):
        mb = AF.max_blur_pool2d(x, 1, 2, filter_size=k)
    assert mb.shape == F.max_pool2d(x, 1, 2).shape


# =========================================================================== properties


@given(
    mode=st.sampled_from(MODES),
    nd=st.sampled_from([1, 2, 3]),
    k=st.integers(1, 7),
    stride=st.integers(1, 3),
    size=st.integers(1, 9),
    value=st.floats(-100, 100, allow_nan=False, allow_subnormal=False),
)
def test_constant_in_constant_out(mode, nd, k, stride, size, value):
    x = torch.full((1, 2, *(size + a for a in range(nd))), value, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # reflect fallback on tiny maps
        out = BLUR_POOL[nd](x, k, stride, mode)
        mb = MAX_BLUR_POOL[nd](x, 1, stride, filter_size=k, padding_mode=mode)
    if mode == "zeros":
        # Zero padding darkens the border; positions whose window lies inside the map keep the value.
        before = (k - 1) // 2
        inner = [slice(-(-before // stride), (n - k + before) // stride + 1) for n in x.shape[2:]]
        out = out[(Ellipsis, *inner)]
        mb = mb[(Ellipsis, *inner)]
    torch.testing.assert_close(out, torch.full_like(out, value), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mb, torch.full_like(mb, value), rtol=1e-12, atol=1e-12)


@given(
    mode=st.sampled_from(MODES),
    h=st.integers(1, 12).map(lambda n: 2 * n),
    w=st.integers(1, 12).map(lambda n: 2 * n),
    seed=st.integers(0, 2**16),
)
def test_rect2_equals_avg_pool2d_on_even_sizes(mode, h, w, seed):
    x = rand(2, 3, h, w, seed=seed)
    torch.testing.assert_close(AF.blur_pool2d(x, "rect2", 2, mode), F.avg_pool2d(x, 2), rtol=0, atol=1e-6)


@given(
    nd=st.sampled_from([1, 2, 3]),
    mode=st.sampled_from(MODES),
    stride=st.integers(1, 4),
    size=st.integers(1, 11),
    seed=st.integers(0, 2**16),
)
def test_filter_size_one_is_plain_subsampling(nd, mode, stride, size, seed):
    x = rand(1, 2, *(size + a for a in range(nd)), seed=seed)
    out = BLUR_POOL[nd](x, 1, stride, mode)
    expected = x[(Ellipsis, *[slice(None, None, stride)] * nd)]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


@given(
    k=st.integers(1, 7),
    stride=st.integers(1, 3),
    a=st.integers(1, 5),
    b=st.integers(1, 5),
    mh=st.integers(-6, 6),
    mw=st.integers(-6, 6),
    seed=st.integers(0, 2**16),
)
def test_circular_shift_blur_pool2d(k, stride, a, b, mh, mw, seed):
    """Shifting the input by s*m (circularly) shifts the output by exactly m."""
    x = rand(2, 3, stride * a, stride * b, seed=seed, dtype=torch.float64)
    out = AF.blur_pool2d(x, k, stride, "circular")
    shifted = AF.blur_pool2d(torch.roll(x, (stride * mh, stride * mw), (2, 3)), k, stride, "circular")
    torch.testing.assert_close(shifted, torch.roll(out, (mh, mw), (2, 3)), rtol=1e-12, atol=1e-12)


@given(
    k=st.integers(1, 6),
    kernel_size=st.integers(1, 3),
    dilation=st.integers(1, 2),
    stride=st.integers(1, 3),
    a=st.integers(1, 5),
    b=st.integers(1, 5),
    mh=st.integers(-6, 6),
    mw=st.integers(-6, 6),
    seed=st.integers(0, 2**16),
)
def test_circular_shift_max_blur_pool2d(k, kernel_size, dilation, stride, a, b, mh, mw, seed):
    x = rand(2, 3, stride * a, stride * b, seed=seed, dtype=torch.float64)
    kw = {
        "kernel_size": kernel_size,
        "stride": stride,
        "dilation": dilation,
        "filter_size": k,
        "padding_mode": "circular",
    }
    out = AF.max_blur_pool2d(x, **kw)
    shifted = AF.max_blur_pool2d(torch.roll(x, (stride * mh, stride * mw), (2, 3)), **kw)
    assert out.shape == (2, 3, a, b)
    torch.testing.assert_close(shifted, torch.roll(out, (mh, mw), (2, 3)), rtol=1e-12, atol=1e-12)


@given(
    k=st.integers(1, 6),
    kernel_size=st.integers(1, 3),
    dilation=st.integers(1, 2),
    stride=st.integers(1, 3),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    seed=st.integers(0, 2**16),
)
def test_circular_max_blur_pool2d_matches_reference(reference, k, kernel_size, dilation, stride, h, w, seed):
    """Circular: the dense max wraps too, then a circular blur; output ceil(H/s)."""
    x = rand(1, 2, h, w, seed=seed, dtype=torch.float64)
    out = AF.max_blur_pool2d(x, kernel_size, stride, dilation=dilation, filter_size=k, padding_mode="circular")
    dense = ref_dense_max(x, kernel_size, dilation=dilation, circular=True)
    ref = reference.blur_pool(dense, (k, k), stride, "circular")
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


@given(
    mode=st.sampled_from(MODES),
    k=st.integers(1, 7),
    stride=st.integers(1, 3),
    h=st.integers(4, 10),
    w=st.integers(4, 10),
    alpha=st.floats(-3, 3, allow_nan=False),
    beta=st.floats(-3, 3, allow_nan=False),
    seed=st.integers(0, 2**16),
)
def test_blur_pool_is_linear(mode, k, stride, h, w, alpha, beta, seed):
    x = rand(2, 2, h, w, seed=seed, dtype=torch.float64)
    y = rand(2, 2, h, w, seed=seed + 1, dtype=torch.float64)
    lhs = AF.blur_pool2d(alpha * x + beta * y, k, stride, mode)
    rhs = alpha * AF.blur_pool2d(x, k, stride, mode) + beta * AF.blur_pool2d(y, k, stride, mode)
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)


# =========================================================================== max_blur_pool


pool_args = st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3)).flatmap(
    lambda kd: st.tuples(
        st.just(kd[0]),  # kernel_size
        st.sampled_from([None, kd[1]]),  # stride (None: = kernel_size)
        st.integers(0, kd[0] // 2),  # padding
        st.just(kd[2]),  # dilation
        st.booleans(),  # ceil_mode
    )
)


def _fits(size, k, p, d):
    return size + 2 * p - d * (k - 1) >= 1


@pytest.mark.filterwarnings("ignore:antialias. reflect padding:UserWarning")
@given(
    args=pool_args,
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    filter_size=st.integers(1, 5),
    mode=st.sampled_from(("reflect", "replicate", "zeros")),
)
def test_max_blur_pool2d_shape_equals_max_pool2d(args, h, w, filter_size, mode):
    kernel_size, stride, padding, dilation, ceil_mode = args
    assume(_fits(h, kernel_size, padding, dilation) and _fits(w, kernel_size, padding, dilation))
    x = rand(1, 2, h, w)
    expected = F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
    out = AF.max_blur_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, filter_size, mode)
    assert out.shape == expected.shape


@pytest.mark.filterwarnings("ignore:antialias. reflect padding:UserWarning")
@given(args=pool_args, size=st.integers(1, 12), nd=st.sampled_from([1, 3]))
def test_max_blur_pool1d_3d_shape_equals_max_pool(args, size, nd):
    kernel_size, stride, padding, dilation, ceil_mode = args
    assume(_fits(size, kernel_size, padding, dilation))
    x = rand(1, 2, *([size] * nd))
    expected = MAX_POOL[nd](x, kernel_size, stride, padding, dilation, ceil_mode)
    out = MAX_BLUR_POOL[nd](x, kernel_size, stride, padding, dilation, ceil_mode, filter_size=3)
    assert out.shape == expected.shape


@given(
    args=pool_args,
    h=st.integers(4, 16),
    w=st.integers(4, 16),
    filter_size=st.integers(1, 5),
    mode=st.sampled_from(("reflect", "replicate", "zeros")),
    seed=st.integers(0, 2**16),
)
def test_max_blur_pool2d_matches_reference(reference, args, h, w, filter_size, mode, seed):
    """Non-ceil mode: == F.max_pool2d(x, k, 1, padding, dilation) then the reference blur at stride s."""
    kernel_size, stride, padding, dilation, _ = args
    stride = kernel_size if stride is None else stride
    span = dilation * (kernel_size - 1)
    # The dense map is (h + 2p, w + 2p) >= 4: long enough for the reference's reflect pad.
    x = rand(2, 3, h + span, w + span, seed=seed, dtype=torch.float64)
    out = AF.max_blur_pool2d(x, kernel_size, stride, padding, dilation, False, filter_size, mode)
    dense = F.max_pool2d(x, kernel_size, 1, padding, dilation)
    ref = reference.blur_pool(dense, (filter_size, filter_size), stride, mode)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


@given(
    args=pool_args,
    h=st.integers(4, 16),
    w=st.integers(4, 16),
    filter_size=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_max_blur_pool2d_ceil_mode_values(reference, args, h, w, filter_size, seed):
    """ceil_mode: the extra outputs come from windows clipped at the end (as max_pool2d's)."""
    kernel_size, stride, padding, dilation, _ = args
    stride = kernel_size if stride is None else stride
    span = dilation * (kernel_size - 1)
    x = rand(1, 2, h + span, w + span, seed=seed, dtype=torch.float64)
    target = F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode=True).shape[2:]
    dense_len = [n + 2 * padding for n in (h, w)]
    extra = [max(0, stride * (o - 1) + 1 - d) for o, d in zip(target, dense_len, strict=True)]
    xp = F.pad(x, (0, extra[1], 0, extra[0]), value=float("-inf"))
    dense = F.max_pool2d(xp, kernel_size, 1, padding, dilation)
    ref = reference.blur_pool(dense, (filter_size, filter_size), stride, "replicate")
    out = AF.max_blur_pool2d(x, kernel_size, stride, padding, dilation, True, filter_size, "replicate")
    assert out.shape[2:] == target
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ("reflect", "replicate", "zeros"))
def test_max_blur_pool1d_3d_match_reference(reference, path, mode):
    for kernel_size in (1, 2, 3):
        for stride in (1, 2, 3):
            x1 = rand(2, 3, 12, dtype=torch.float64)
            ref1 = reference.blur_pool(ref_dense_max(x1, kernel_size), (4,), stride, mode)
            torch.testing.assert_close(AF.max_blur_pool1d(x1, kernel_size, stride, padding_mode=mode), ref1)
            x3 = rand(1, 2, 7, 8, 9, dtype=torch.float64)
            ref3 = reference.blur_pool(ref_dense_max(x3, kernel_size), (3, 3, 3), stride, mode)
            out3 = AF.max_blur_pool3d(x3, kernel_size, stride, filter_size=3, padding_mode=mode)
            torch.testing.assert_close(out3, ref3)


def test_max_blur_pool2d_anisotropic(reference, path):
    x = rand(2, 3, 11, 10, dtype=torch.float64)
    out = AF.max_blur_pool2d(x, (2, 3), (1, 2), (1, 0), (2, 1), filter_size=(2, "bin5"), padding_mode="replicate")
    dense = F.max_pool2d(x, (2, 3), 1, (1, 0), (2, 1))
    ref = reference.blur_pool(dense, (2, 5), (1, 2), "replicate")
    assert out.shape == F.max_pool2d(x, (2, 3), (1, 2), (1, 0), (2, 1)).shape
    torch.testing.assert_close(out, ref)


# =========================================================================== degenerate shapes


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("stride", [1, 3])
def test_1d_2d_3d_agree_on_degenerate_shapes(mode, k, stride):
    x1 = rand(2, 3, 10, dtype=torch.float64)
    y1 = AF.blur_pool1d(x1, k, stride, mode)
    y2 = AF.blur_pool2d(x1[:, :, None, :], (1, k), (1, stride), mode)
    y3 = AF.blur_pool3d(x1[:, :, None, None, :], (1, 1, k), (1, 1, stride), mode)
    torch.testing.assert_close(y2[:, :, 0], y1)
    torch.testing.assert_close(y3[:, :, 0, 0], y1)
    # 2-D with a (1, k) filter blurs each row on its own: the same as 1-D over rows as channels.
    x2 = rand(2, 3, 4, 10, dtype=torch.float64)
    rows = AF.blur_pool1d(x2.reshape(2, 12, 10), k, stride, mode).reshape(2, 3, 4, -1)
    torch.testing.assert_close(AF.blur_pool2d(x2, (1, k), (1, stride), mode), rows)
    # 3-D with D=1 and a (1, k, k) filter is 2-D.
    x3 = rand(1, 2, 1, 7, 8, dtype=torch.float64)
    torch.testing.assert_close(
        AF.blur_pool3d(x3, (1, k, k), (1, stride, stride), mode)[:, :, 0],
        AF.blur_pool2d(x3[:, :, 0], k, stride, mode),
    )
    torch.testing.assert_close(AF.blur3d(x3, (1, k, k), mode)[:, :, 0], AF.blur2d(x3[:, :, 0], k, mode))
    torch.testing.assert_close(AF.blur2d(x1[:, :, None], (1, k), mode)[:, :, 0], AF.blur1d(x1, k, mode))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel_size", [1, 2, 3])
def test_max_blur_pool_1d_2d_3d_agree_on_degenerate_shapes(mode, kernel_size):
    for stride in (1, 2):
        x1 = rand(2, 3, 10, dtype=torch.float64)
        y1 = AF.max_blur_pool1d(x1, kernel_size, stride, filter_size=3, padding_mode=mode)
        y2 = AF.max_blur_pool2d(x1[:, :, None], (1, kernel_size), (1, stride), filter_size=(1, 3), padding_mode=mode)
        y3 = AF.max_blur_pool3d(
            x1[:, :, None, None], (1, 1, kernel_size), (1, 1, stride), filter_size=(1, 1, 3), padding_mode=mode
        )
        torch.testing.assert_close(y2[:, :, 0], y1)
        torch.testing.assert_close(y3[:, :, 0, 0], y1)


# =========================================================================== the paper's toy example


TOY = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize(
    ("filter_size", "expected", "expected_shifted"),
    [
        ("rect2", [0.5, 1.0, 0.5, 1.0], [0.5, 1.0, 0.5, 1.0]),
        ("tri3", [0.5, 1.0, 0.5, 1.0], [0.75, 0.75, 0.75, 0.75]),
        ("bin5", [0.625, 0.875, 0.625, 0.875], [0.75, 0.75, 0.75, 0.75]),
    ],
)
def test_paper_toy_example(filter_size, expected, expected_shifted):
    """paper_results.md (the paper's Figure 4): x and its 1-px circular shift."""
    x = TOY[None, None]
    shifted = torch.roll(x, 1, -1)
    # Plain max-pool is not shift-invariant: [0,1,0,1] vs [1,1,1,1].
    assert F.max_pool1d(x, 2).flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    assert F.max_pool1d(shifted, 2).flatten().tolist() == [1.0, 1.0, 1.0, 1.0]
    out = AF.max_blur_pool1d(x, 2, filter_size=filter_size, padding_mode="circular")
    out_shifted = AF.max_blur_pool1d(shifted, 2, filter_size=filter_size, padding_mode="circular")
    torch.testing.assert_close(out.flatten(), torch.tensor(expected), rtol=0, atol=1e-7)
    torch.testing.assert_close(out_shifted.flatten(), torch.tensor(expected_shifted), rtol=0, atol=1e-7)
    # The same through the 2-D op on a 1-row map.
    out2 = AF.max_blur_pool2d(x[:, :, None], (1, 2), filter_size=(1, filter_size), padding_mode="circular")
    torch.testing.assert_close(out2.flatten(), torch.tensor(expected), rtol=0, atol=1e-7)


# =========================================================================== gradients


GRAD_MODES = ("reflect", "circular", "zeros")


@pytest.mark.parametrize(("nd", "kind"), OPS, ids=OP_IDS)
@pytest.mark.parametrize("mode", GRAD_MODES)
def test_gradcheck(nd, kind, mode):
    spatial = {1: (6,), 2: (5, 4), 3: (3, 3, 2)}[nd]
    x = rand(1, 2, *spatial, dtype=torch.float64).requires_grad_()
    kw = {"padding_mode": mode, "filter_size": 3}
    if kind == "max_blur_pool":
        kw["padding"] = 0 if mode == "circular" else 1

    def fn(t):
        return call(nd, kind, t, **kw)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_gradcheck_anisotropic_stride():
    x = rand(1, 2, 7, 6, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: AF.blur_pool2d(t, (2, "bin5"), (3, 2), "replicate"), (x,))
    assert torch.autograd.gradcheck(lambda t: AF.max_blur_pool2d(t, 3, (1, 2), 1, ceil_mode=True), (x,))


@pytest.mark.parametrize(
    ("kernel_size", "stride", "padding", "dilation"), [(2, 2, 0, 1), (3, 2, 1, 1), (2, 1, 1, 2), (3, 3, 0, 1)]
)
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_max_blur_pool2d_gradient_on_ties_matches_reference(
    reference, path, kernel_size, stride, padding, dilation, memory_format
):
    """Ties (common after a ReLU) route each window's gradient like F.max_pool2d, the reference's max."""
    x = torch.randint(0, 3, (2, 3, 9, 8), generator=torch.Generator().manual_seed(1)).double()
    x = x.contiguous(memory_format=memory_format).requires_grad_()
    out = AF.max_blur_pool2d(x, kernel_size, stride, padding, dilation, filter_size=3, padding_mode="replicate")
    ref = reference.blur_pool(F.max_pool2d(x, kernel_size, 1, padding, dilation), (3, 3), stride, "replicate")
    torch.testing.assert_close(out, ref)
    g = rand(*out.shape, seed=2, dtype=torch.float64)
    (grad,) = torch.autograd.grad(out, x, g)
    (grad_ref,) = torch.autograd.grad(ref, x, g)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_blur_pool2d_gradient_matches_reference(reference, path, mode):
    x = rand(2, 3, 9, 6, dtype=torch.float64).requires_grad_()
    out = AF.blur_pool2d(x, (4, "bin5"), (2, 3), mode)
    ref = reference.blur_pool(x, (4, 5), (2, 3), mode)
    g = rand(*out.shape, seed=3, dtype=torch.float64)
    torch.testing.assert_close(torch.autograd.grad(out, x, g)[0], torch.autograd.grad(ref, x, g)[0])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_values_stay_local(reference, path, mode, value):
    """A non-finite input cell spoils only the outputs whose window covers it, as in the reference."""
    x = rand(1, 2, 9, 8, dtype=torch.float64)
    x[0, 1, 4, 3] = value
    out = AF.blur_pool2d(x, 3, 2, mode)
    ref = reference.blur_pool(x, (3, 3), 2, mode)
    torch.testing.assert_close(out, ref, equal_nan=True)
    assert torch.isfinite(out[0, 0]).all() and not torch.isfinite(out[0, 1]).all()
    assert torch.isfinite(out[0, 1]).sum() >= out[0, 1].numel() - 4
    mb = AF.max_blur_pool2d(x, 2, padding_mode=mode)
    torch.testing.assert_close(
        mb, reference.blur_pool(ref_dense_max(x, 2, circular=mode == "circular"), (4, 4), 2, mode), equal_nan=True
    )


# =========================================================================== layouts and dtypes


@pytest.mark.parametrize(("nd", "kind"), OPS, ids=OP_IDS)
def test_noncontiguous_input(nd, kind):
    base = rand(2, 6, *(2 * n + 1 for n in SPATIAL[nd]))
    x = base[:, 1::2, ..., ::2]  # an offset, a channel step and a spatial step
    if nd > 1:
        x = x.transpose(-1, -2)  # and permuted spatial strides
    assert x.shape[:2] == (2, 3) and not x.is_contiguous()
    torch.testing.assert_close(call(nd, kind, x), call(nd, kind, x.contiguous()), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("nd", "kind"), [op for op in OPS if op[0] > 1], ids=[i for op, i in zip(OPS, OP_IDS, strict=True) if op[0] > 1]
)
@pytest.mark.parametrize("mode", MODES)
def test_channels_last_in_channels_last_out(path, nd, kind, mode):
    fmt = torch.channels_last if nd == 2 else torch.channels_last_3d
    x = rand(2, 5, *SPATIAL[nd])
    xc = x.contiguous(memory_format=fmt)
    for filter_size in (1, 4, (2, 5, 3)[:nd]):
        out = call(nd, kind, xc, padding_mode=mode, filter_size=filter_size)
        assert out.is_contiguous(memory_format=fmt), filter_size
        expected = call(nd, kind, x, padding_mode=mode, filter_size=filter_size)
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("nd", "kind"), OPS, ids=OP_IDS)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float16, 2e-3), (torch.bfloat16, 2e-2)])
def test_half_precision_close_to_float32(nd, kind, dtype, tol):
    xh = rand(2, 3, *SPATIAL[nd]).clamp(-2, 2).to(dtype)
    for mode in MODES:
        out = call(nd, kind, xh, padding_mode=mode)
        assert out.dtype == dtype
        expected = call(nd, kind, xh.float(), padding_mode=mode)
        torch.testing.assert_close(out.float(), expected, rtol=tol, atol=tol * 2)


@pytest.mark.parametrize(("nd", "kind"), OPS, ids=OP_IDS)
def test_unbatched_input(nd, kind):
    x = rand(3, 4, *SPATIAL[nd])
    for mode in MODES:
        out = call(nd, kind, x[1], padding_mode=mode)
        torch.testing.assert_close(out, call(nd, kind, x, padding_mode=mode)[1], rtol=0, atol=1e-6)
        assert out.ndim == nd + 1


@pytest.mark.parametrize(("nd", "kind"), OPS, ids=OP_IDS)
def test_float64_kept(nd, kind):
    assert call(nd, kind, rand(1, 2, *SPATIAL[nd], dtype=torch.float64)).dtype == torch.float64


# =========================================================================== bad input (item 9)


@pytest.mark.parametrize(("nd", "kind"), OPS, ids=OP_IDS)
@pytest.mark.parametrize("extra", [-2, 1])
def test_wrong_ndim_rejected(nd, kind, extra):
    name = f"{kind}{nd}d"
    x = rand(*([2] * (nd + 2 + extra)))
    with pytest.raises(
        ValueError, match=rf"^`{name}`: `input` must have {nd + 2} dims .* or {nd + 1} without the batch, got shape \("
    ):
        call(nd, kind, x)


@pytest.mark.parametrize(("nd", "kind"), OPS, ids=OP_IDS)
@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_integer_dtype_rejected(nd, kind, dtype):
    x = torch.ones(1, 2, *SPATIAL[nd], dtype=dtype)
    with pytest.raises(
        TypeError, match=rf"`input` must be a floating-point tensor, got dtype {dtype}\. Convert it first"
    ):
        call(nd, kind, x)


@pytest.mark.parametrize(("nd", "kind"), OPS, ids=OP_IDS)
def test_non_tensor_rejected(nd, kind):
    with pytest.raises(TypeError, match=r"`input` must be a torch\.Tensor, got list"):
        call(nd, kind, [[1.0, 2.0]])


@pytest.mark.parametrize(("nd", "kind"), OPS, ids=OP_IDS)
@pytest.mark.parametrize("filter_size", [0, -2])
def test_filter_size_below_one_rejected(nd, kind, filter_size):
    with pytest.raises(ValueError, match=rf"^`{kind}{nd}d`: `filter_size` must be >= 1, got {filter_size}"):
        call(nd, kind, rand(1, 2, *SPATIAL[nd]), filter_size=filter_size)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("stride", [0, -1])
def test_stride_below_one_rejected(nd, stride):
    x = rand(1, 2, *SPATIAL[nd])
    with pytest.raises(ValueError, match=rf"^`blur_pool{nd}d`: `stride` must be >= 1, got {stride}\."):
        BLUR_POOL[nd](x, stride=stride)
    with pytest.raises(ValueError, match=rf"^`max_blur_pool{nd}d`: `stride` must be >= 1, got {stride}\."):
        MAX_BLUR_POOL[nd](x, 2, stride)
    with pytest.raises(ValueError, match=r"`stride` must be >= 1, got \("):
        BLUR_POOL[nd](x, stride=(1,) * (nd - 1) + (stride,))


@pytest.mark.parametrize("stride", [(2,), (2, 2, 2), 2.0, "2", True])
def test_stride_bad_type_rejected(stride):
    with pytest.raises(TypeError, match=r"^`blur_pool2d`: `stride` must be an int or a tuple of 2 ints, got"):
        AF.blur_pool2d(rand(1, 2, 6, 6), stride=stride)


@pytest.mark.parametrize(("nd", "kind"), OPS, ids=OP_IDS)
def test_unknown_filter_name_rejected(nd, kind):
    with pytest.raises(
        ValueError,
        match=rf"^`{kind}{nd}d`: `filter_size` must be an int or one of .* got 'tri5'\. Did you mean 'tri4'\?",
    ):
        call(nd, kind, rand(1, 2, *SPATIAL[nd]), filter_size="tri5")


@pytest.mark.parametrize(("nd", "kind"), OPS, ids=OP_IDS)
@pytest.mark.parametrize(("mode", "hint"), [("reflection", "reflect"), ("zero", "zeros"), ("Circular", "circular")])
def test_unknown_padding_mode_rejected_with_suggestion(nd, kind, mode, hint):
    with pytest.raises(
        ValueError,
        match=rf"`padding_mode` must be one of \('reflect', 'replicate', 'zeros', 'circular'\), "
        rf"got '{mode}'\. Did you mean '{hint}'\?",
    ):
        call(nd, kind, rand(1, 2, *SPATIAL[nd]), padding_mode=mode)


def test_unknown_padding_mode_without_close_match():
    with pytest.raises(ValueError, match=r"got 'constant'\.$"):
        AF.blur_pool2d(rand(1, 2, 6, 6), padding_mode="constant")


@pytest.mark.parametrize(
    ("taps", "message"),
    [
        ([1.0, float("nan")], "must be finite"),
        ([1.0, -1.0], "must have a non-zero sum"),
        ([0.0, 0.0], "must have a non-zero sum"),
    ],
)
@pytest.mark.parametrize(("nd", "kind"), OPS, ids=OP_IDS)
def test_bad_custom_filter_rejected(taps, message, nd, kind):
    with pytest.raises(ValueError, match=rf"^`{kind}{nd}d`: a custom filter {message}"):
        call(nd, kind, rand(1, 2, *SPATIAL[nd]), filter_size=torch.tensor(taps))


def test_filter_argument_wrong_type():
    with pytest.raises(TypeError, match=r"`filter` must be a tuple of 2 1-D tensors"):
        AF.blur_pool2d(rand(1, 2, 6, 6), filter=torch.ones(3))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_blur_pool_bad_arguments(nd):
    x = rand(1, 2, *SPATIAL[nd])
    name = f"max_blur_pool{nd}d"
    with pytest.raises(
        ValueError, match=rf"^`{name}`: `padding` must be at most half of `kernel_size`, got padding=2, kernel_size=3"
    ):
        MAX_BLUR_POOL[nd](x, 3, padding=2)
    with pytest.raises(ValueError, match=rf"^`{name}`: `kernel_size` must be >= 1, got 0"):
        MAX_BLUR_POOL[nd](x, 0)
    with pytest.raises(ValueError, match=rf"^`{name}`: `dilation` must be >= 1, got 0"):
        MAX_BLUR_POOL[nd](x, 2, dilation=0)
    with pytest.raises(ValueError, match=rf"^`{name}`: `padding` must be >= 0, got -1"):
        MAX_BLUR_POOL[nd](x, 2, padding=-1)
    with pytest.raises(
        ValueError,
        match=rf"^`{name}`: `input` must be at least as large as the pooling window on spatial axis 0 .*, "
        r"got size \d+\.",
    ):
        MAX_BLUR_POOL[nd](x, 4, dilation=4)


@pytest.mark.parametrize(
    "op",
    [
        lambda x: AF.blur2d(x, 1),
        lambda x: AF.blur_pool2d(x, 1, 1),
        lambda x: AF.max_blur_pool2d(x, 1, 1, filter_size=1),
    ],
)
def test_identity_settings_return_a_new_tensor(op):
    x = torch.randn(1, 2, 5, 5)
    out = op(x)
    torch.testing.assert_close(out, x)
    out.add_(1.0)  # writing into the result must not change the input
    assert not torch.equal(out, x)
