"""The compute kernels: the eager fast path against independent references and against the
traceable path, gradients (ties included), non-finite values, and the automatic fallback under
torch.compile / torch.export / ONNX / torch.fx / torch.jit.trace.

Every test runs twice: with the C++ custom ops (``cpp``, where 1-D/2-D CPU calls go) and with
them switched off (``pure``: the pure-PyTorch fallback, as under ``ANTIALIAS_PURE=1`` or without a
compiler), so the fallback keeps its own parity tests. ``tests/test_ops.py`` tests the ops
themselves."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from antialias import BlurPool2d, MaxBlurPool2d, _ext
from antialias import _kernels as K
from antialias import functional as AF
from antialias.filters import filter_row, padding

MODES = ("reflect", "replicate", "zeros", "circular")


@pytest.fixture(params=["cpp", "pure"], autouse=True)
def backend(request, monkeypatch):
    if request.param == "pure":
        monkeypatch.setattr(K, "use_custom_op", lambda x, nd: False)
    elif not _ext.backend().compiled:
        pytest.skip(f"the C++ kernels are not available: {_ext.backend().detail}")
    return request.param


def ref_blur_pool2d(x, k, stride=2, mode="reflect"):
    """The reference formulation: pad, then depthwise conv2d with the full k x k kernel."""
    row = filter_row(k).to(torch.float64)
    kernel = torch.outer(row, row).to(x.dtype)
    before, after = padding(k)
    pad = [before, after, before, after]
    if mode == "circular":
        h, w = x.shape[-2:]
        x = x[..., torch.arange(-before, h + after) % h, :][..., torch.arange(-before, w + after) % w]
    else:
        x = F.pad(x, pad, mode="constant" if mode == "zeros" else mode)
    return F.conv2d(x, kernel.expand(x.shape[1], 1, k, k), stride=stride, groups=x.shape[1])


def _layout(x, channels_last):
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _fwd_bwd(fn, x, grad=None):
    x = x.detach().clone().requires_grad_()
    y = fn(x)
    grad = torch.randn_like(y) if grad is None else grad
    y.backward(grad)
    return y.detach(), x.grad, grad


# --------------------------------------------------------------------------- band matrix


@pytest.mark.parametrize("mode", MODES)
def test_band_matrix_equals_pad_and_correlate(mode):
    torch.manual_seed(0)
    for length in range(1, 9):
        for k in range(1, 6):
            before, after = padding(k)
            if mode == "reflect" and max(before, after) >= length:
                continue
            for stride in (1, 2, 3):
                row = torch.rand(k, dtype=torch.float64)
                v = torch.randn(length, dtype=torch.float64)
                padded = v[K.pad_index(length, before, after, mode).clamp(min=0)]
                if mode == "zeros":
                    padded = padded * (K.pad_index(length, before, after, mode) >= 0)
                want = F.conv1d(padded.view(1, 1, -1), row.view(1, 1, -1), stride=stride).flatten()
                got = K.band_matrix(row, length, before, after, mode, stride, torch.float64) @ v
                torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_pad_index_matches_f_pad():
    x = torch.arange(5.0).view(1, 1, 5)
    for mode in ("reflect", "replicate"):
        want = F.pad(x, [2, 3], mode=mode).flatten()
        assert torch.equal(x.flatten()[K.pad_index(5, 2, 3, mode)], want)
    assert K.pad_index(2, 3, 4, "circular").tolist() == [1, 0, 1, 0, 1, 0, 1, 0, 1]


# --------------------------------------------------------------------------- fast path == references


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_blur_pool2d_matches_reference(mode, channels_last):
    torch.manual_seed(1)
    x = _layout(torch.randn(2, 3, 11, 8), channels_last)
    for k in (1, 2, 3, 4, 5):
        y, gx, g = _fwd_bwd(lambda t, k=k: AF.blur_pool2d(t, k, padding_mode=mode), x)
        y_ref, gx_ref, _ = _fwd_bwd(lambda t, k=k: ref_blur_pool2d(t, k, mode=mode), x, g)
        torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-6)
        torch.testing.assert_close(gx, gx_ref, rtol=0, atol=1e-6)
        assert y.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@pytest.mark.parametrize("channels_last", [False, True])
def test_max_blur_pool2d_matches_reference(channels_last):
    torch.manual_seed(2)
    x = _layout(torch.randn(2, 4, 12, 9), channels_last)
    y, gx, g = _fwd_bwd(lambda t: AF.max_blur_pool2d(t, 2), x)
    y_ref, gx_ref, _ = _fwd_bwd(lambda t: ref_blur_pool2d(F.max_pool2d(t, 2, 1), 4), x, g)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(gx, gx_ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kernel_size,padding_,dilation", [(2, 0, 1), (3, 1, 1), (3, 1, 2), (4, 2, 1)])
def test_max_ties_go_to_first_maximum_like_max_pool2d(kernel_size, padding_, dilation):
    # After a ReLU most windows tie (all zeros); the gradient must go where F.max_pool2d sends it.
    torch.manual_seed(3)
    x = torch.relu(torch.randn(2, 3, 13, 12)).round()
    fn = lambda t: AF.max_blur_pool2d(t, kernel_size, 2, padding_, dilation)  # noqa: E731
    ref = lambda t: ref_blur_pool2d(F.max_pool2d(t, kernel_size, 1, padding_, dilation), 4)  # noqa: E731
    y, gx, g = _fwd_bwd(fn, x)
    y_ref, gx_ref, _ = _fwd_bwd(ref, x, g)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(gx, gx_ref, rtol=0, atol=1e-6)
    # torch.maximum's autograd splits ties instead: a different but equally valid subgradient.
    def split(t):
        m = torch.maximum(t[..., :-1], t[..., 1:])
        return ref_blur_pool2d(torch.maximum(m[..., :-1, :], m[..., 1:, :]), 4)

    if (kernel_size, padding_, dilation) == (2, 0, 1):
        _, gx_split, _ = _fwd_bwd(split, x, g)
        assert not torch.allclose(gx_split, gx)
        torch.testing.assert_close(gx_split.sum(), gx.sum(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_fast_path_equals_traceable_path(nd, mode):
    torch.manual_seed(4)
    x = torch.randn(2, 3, *[7, 6, 5][:nd], dtype=torch.float64)
    rows = tuple(filter_row(k) for k in (4, 3, 5)[:nd])
    strides = (2, 1, 3)[:nd]
    pads = [padding(r.numel()) for r in rows]
    modes = [mode] * nd
    for fast, slow in [
        (
            lambda t: K.blur_pool(t, rows, strides, pads, modes),
            lambda t: K.blur_pool_traceable(t, rows, strides, pads, modes),
        ),
        (
            lambda t: K.max_blur_pool(t, (2, 3, 2)[:nd], (1, 1, 2)[:nd], rows, strides, pads, modes),
            lambda t: K.blur_pool_traceable(
                K.dense_max_traceable(t, (2, 3, 2)[:nd], (1, 1, 2)[:nd]), rows, strides, pads, modes
            ),
        ),
    ]:
        y, gx, g = _fwd_bwd(fast, x)
        y_ref, gx_ref, _ = _fwd_bwd(slow, x, g)
        torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(gx, gx_ref, rtol=0, atol=1e-12)


def test_gradcheck_custom_functions():
    torch.manual_seed(5)
    x = torch.randn(1, 2, 7, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: AF.blur_pool2d(t, (3, 4), padding_mode="zeros"), (x,))
    assert torch.autograd.gradcheck(lambda t: AF.blur_pool2d(t, 5, stride=(1, 3)), (x,))
    assert torch.autograd.gradcheck(lambda t: AF.max_blur_pool2d(t, 2, filter_size=5), (x,))
    assert torch.autograd.gradcheck(lambda t: AF.max_blur_pool2d(t, 3, 2, 1, ceil_mode=True), (x,))


def test_non_finite_values_stay_local():
    x = torch.randn(1, 2, 9, 9)
    x[0, 0, 4, 4] = float("inf")
    x[0, 1, 2, 6] = float("nan")
    for fn, ref in [
        (lambda t: AF.blur_pool2d(t, 5), lambda t: ref_blur_pool2d(t, 5)),
        (lambda t: AF.max_blur_pool2d(t, 2), lambda t: ref_blur_pool2d(F.max_pool2d(t, 2, 1), 4)),
    ]:
        torch.testing.assert_close(fn(x), ref(x), rtol=0, atol=1e-6, equal_nan=True)
        xf = torch.randn(1, 2, 9, 9)
        _, gx, g = _fwd_bwd(fn, xf)
        g[0, 0, 1, 1] = float("inf")
        _, gx, _ = _fwd_bwd(fn, xf, g)
        _, gx_ref, _ = _fwd_bwd(ref, xf, g)
        torch.testing.assert_close(gx, gx_ref, rtol=0, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_fast_path(dtype):
    torch.manual_seed(6)
    x = torch.randn(2, 3, 10, 10)
    for fn, ref in [
        (lambda t: AF.blur_pool2d(t, 5), lambda t: ref_blur_pool2d(t, 5)),
        (lambda t: AF.max_blur_pool2d(t, 2), lambda t: ref_blur_pool2d(F.max_pool2d(t, 2, 1), 4)),
    ]:
        y, gx, g = _fwd_bwd(fn, x.to(dtype))
        assert y.dtype == dtype and gx.dtype == dtype
        # Float32 maths on the same low-precision values (rounding creates ties the max must
        # resolve the same way as on the rounded input).
        y32, gx32, _ = _fwd_bwd(ref, x.to(dtype).float(), g.float())
        torch.testing.assert_close(y.float(), y32, rtol=0, atol=3e-2)
        torch.testing.assert_close(gx.float(), gx32, rtol=0, atol=3e-2)


def test_saves_no_activations():
    # The blur saves nothing; max-blur saves only its input (the max is recomputed in backward).
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    for fn, allowed in [(lambda t: AF.blur_pool2d(t, 5), 0), (lambda t: AF.max_blur_pool2d(t, 2), 1)]:
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t, saved=saved: saved.append(t) or t, lambda t: t):
            fn(x)
        assert len(saved) <= allowed
        assert all(t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() for t in saved)


# --------------------------------------------------------------------------- dispatch and tracing


def test_use_fast_path_only_for_plain_eager_tensors():
    x = torch.randn(1, 1, 4, 4)
    assert K.use_fast_path(x)
    assert not K.use_fast_path(torch.nn.Parameter(x))
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        assert not K.use_fast_path(mode.from_tensor(x))


def _net():
    return torch.nn.Sequential(BlurPool2d(3, "bin5"), MaxBlurPool2d(2, filter_size="tri4")).eval()


def _no_custom_function(graph_code: str) -> bool:
    return "_MaxBlur" not in graph_code and "_BandedBlur" not in graph_code


def test_torch_compile_fullgraph():
    torch._dynamo.reset()
    net = _net()
    x = torch.randn(2, 3, 12, 12, requires_grad=True)
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    y = compiled(x)
    torch.testing.assert_close(y, net(x), rtol=0, atol=1e-6)
    (g,) = torch.autograd.grad(y.sum(), x)
    (g_ref,) = torch.autograd.grad(net(x).sum(), x)
    torch.testing.assert_close(g, g_ref, rtol=0, atol=1e-6)


def test_torch_export_has_no_autograd_functions(backend):
    # Export sees the traceable path (pure) or the registered custom ops (cpp), never our
    # autograd.Functions.
    net = _net()
    x = torch.randn(2, 3, 12, 12)
    exported = torch.export.export(net, (x,))
    assert _no_custom_function(str(exported.graph))
    assert ("antialias.max_blur_pool" in str(exported.graph)) == (backend == "cpp")
    torch.testing.assert_close(exported.module()(x), net(x), rtol=0, atol=1e-6)


def test_onnx_export_matches_eager(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    net = _net()
    x = torch.randn(2, 3, 12, 12)
    path = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), dynamo=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), net(x), rtol=0, atol=1e-5)


def test_fx_symbolic_trace_and_jit_trace():
    net = _net()
    x = torch.randn(2, 3, 12, 12)
    traced = torch.fx.symbolic_trace(net)
    torch.testing.assert_close(traced(x), net(x), rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace(net, (x,))
    assert _no_custom_function(str(scripted.inlined_graph))
    torch.testing.assert_close(scripted(x), net(x), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- flat dense max internals


@pytest.mark.parametrize("channels_last", [False, True])
def test_max_blur_overhang_cells_never_reach_output_or_gradient(channels_last):
    # The flat max computes "overhang" cells whose windows run into the next row/plane; they must
    # not leak: put extreme values at the first/last rows and columns (what those windows read).
    torch.manual_seed(7)
    x = torch.randn(2, 3, 9, 8)
    x[..., 0, :] = 1e30
    x[..., :, -1] = -1e30
    x[..., -1, 0] = 5e29
    x = _layout(x, channels_last)
    ref = lambda t: ref_blur_pool2d(F.max_pool2d(t, 2, 1), 4)  # noqa: E731
    y, gx, g = _fwd_bwd(lambda t: AF.max_blur_pool2d(t, 2), x)
    y_ref, gx_ref, _ = _fwd_bwd(ref, x, g)
    torch.testing.assert_close(y, y_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gx, gx_ref, rtol=0, atol=1e-6)
    # An infinite value inside a real window: the output is non-finite there, as in the reference.
    x2 = x.clone()
    x2[0, 0, 4, -1] = float("inf")
    torch.testing.assert_close(AF.max_blur_pool2d(x2, 2), ref(x2), rtol=1e-6, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("nd", [2, 3])
def test_max_ties_in_channels_last_and_mixed_kernels(nd):
    # Every window ties (integer values after a ReLU), channels-last memory order, and kernel
    # sizes mixing the 2-tap in-place routing with the general one: gradients as F.max_pool.
    torch.manual_seed(8)
    x = torch.relu(torch.randn(2, 3, *[9, 8, 7][:nd])).round()
    x = x.contiguous(memory_format=torch.channels_last if nd == 2 else torch.channels_last_3d)
    for kernels in ([2, 3, 2][:nd], [3, 2, 2][:nd], [2, 2, 3][:nd]):
        rows = tuple(filter_row(3) for _ in range(nd))
        pads = [padding(3)] * nd
        args = (kernels, [1] * nd, rows, [2] * nd, pads, ["reflect"] * nd)
        y, gx, g = _fwd_bwd(lambda t, args=args: K.max_blur_pool(t, *args), x)

        def slow(t, kernels=kernels, args=args):
            return K.blur_pool_traceable(K.dense_max_traceable(t, kernels, [1] * nd), *args[2:])

        y_ref, gx_ref, _ = _fwd_bwd(slow, x, g)
        torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-6)
        torch.testing.assert_close(gx, gx_ref, rtol=0, atol=1e-6)


def test_band_matrix_cache_follows_filter_values():
    # The banded matrices are memoised on the filter's values: editing the filter in place must
    # change the result (a cache keyed on identity would not).
    x = torch.randn(1, 2, 10, 10)
    row = filter_row(3).clone()
    first = AF.blur_pool2d(x, filter=(row, row))
    row.copy_(torch.tensor([0.0, 1.0, 0.0], dtype=row.dtype))
    second = AF.blur_pool2d(x, filter=(row, row))
    torch.testing.assert_close(second, x[..., ::2, ::2], rtol=0, atol=1e-6)
    assert not torch.allclose(first, second)
