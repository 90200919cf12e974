"""The ``antialias::*`` C++ custom operators (issue 9): parity with the pure-PyTorch path, gradients
(ties, NaN/inf, double backward), layouts and dtypes, thread-count determinism, their place in
compiled and exported graphs, and the build/fallback machinery (``antialias._ext``).

The pure path is forced in-process by patching :func:`antialias._kernels.use_custom_op` (the same
switch ``ANTIALIAS_PURE=1`` flips for a whole process, tested in a subprocess below).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from antialias import BlurPool1d, BlurPool2d, MaxBlurPool1d, MaxBlurPool2d, _ext, _ops
from antialias import _kernels as K
from antialias import functional as AF
from antialias.filters import filter_row

MODES = ("reflect", "replicate", "zeros", "circular")
SRC = Path(__file__).resolve().parents[1] / "src"


def _no_compiler() -> bool:
    return shutil.which(os.environ.get("CXX", "c++")) is None or shutil.which("ninja") is None


if os.environ.get(_ext.ENV_PURE, "") not in ("", "0"):
    pytestmark = pytest.mark.skip(reason=f"{_ext.ENV_PURE} is set: the C++ ops are off")
elif _no_compiler():
    pytestmark = pytest.mark.skip(reason="no C++ compiler or ninja: the C++ ops cannot be built")


@pytest.fixture(scope="module", autouse=True)
def _built():
    backend = _ops.backend()  # loads the library and registers the fake kernels and autograd
    assert backend.compiled, f"the C++ kernels did not build: {backend.detail}"


@contextlib.contextmanager
def pure():
    """Force the pure-PyTorch path (the fallback) in this process."""
    original = K.use_custom_op
    K.use_custom_op = lambda x, nd: False
    try:
        yield
    finally:
        K.use_custom_op = original


def fwd_bwd(fn, x, grad=None):
    x = x.detach().clone().requires_grad_()
    y = fn(x)
    grad = torch.randn(y.shape, dtype=y.dtype) if grad is None else grad
    y.backward(grad)
    return y.detach(), x.grad, grad


def both(fn, x):
    """(ours, pure): outputs and input gradients for one fixed output gradient."""
    y, gx, g = fwd_bwd(fn, x)
    with pure():
        y_ref, gx_ref, _ = fwd_bwd(fn, x, g)
    return (y, gx), (y_ref, gx_ref)


def layout(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if kind == "noncontiguous":  # a strided view (every other column of a wider tensor)
        wide = torch.repeat_interleave(x, 2, dim=-1)
        return wide[..., ::2]
    if kind == "expanded":  # stride-0 batch
        return x[:1].expand(x.shape[0], *x.shape[1:])
    return x


def assert_parity(ours, ref, dtype):
    tol = {torch.float64: 1e-12, torch.float32: 1e-6}[dtype]
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=0, atol=tol, equal_nan=True)


def quiet(fn):
    """Call ``fn`` with the reflect->replicate substitution warning silenced (tiny maps)."""

    def wrapped(t):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return fn(t)

    return wrapped


# =========================================================================== parity (hypothesis)

sizes = st.integers(1, 9)


@given(
    k=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    stride=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    mode=st.sampled_from(MODES),
    hw=st.tuples(sizes, sizes),
    kind=st.sampled_from(["contiguous", "channels_last", "noncontiguous", "expanded"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_blur_pool2d_equals_pure_path(k, stride, mode, hw, kind, dtype):
    x = layout(torch.randn(2, 3, *hw, dtype=dtype), kind)
    ours, ref = both(quiet(lambda t: AF.blur_pool2d(t, k, stride, mode)), x)
    assert_parity(ours, ref, dtype)


@given(
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    pad=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    ceil_mode=st.booleans(),
    filt=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    mode=st.sampled_from(MODES),
    hw=st.tuples(st.integers(1, 10), st.integers(1, 10)),
    kind=st.sampled_from(["contiguous", "channels_last", "noncontiguous"]),
    ties=st.booleans(),
)
def test_max_blur_pool2d_equals_pure_path(kernel, stride, dilation, pad, ceil_mode, filt, mode, hw, kind, ties):
    """float64: values to 1e-12 and the gradient routed to exactly the same elements (ties after a
    ReLU included: the first maximum in raster order, as F.max_pool2d)."""
    pad = tuple(min(p, k // 2) for p, k in zip(pad, kernel, strict=True))
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    if ties:
        x = torch.relu(x).round()
    x = layout(x, kind)
    fn = quiet(lambda t: AF.max_blur_pool2d(t, kernel, stride, pad, dilation, ceil_mode, filt, mode))
    try:
        with pure():
            fn(x)
    except ValueError:  # window larger than the map: both paths refuse it
        with pytest.raises(ValueError):
            fn(x)
        return
    (y, gx), (y_ref, gx_ref) = both(fn, x)
    assert_parity((y, gx), (y_ref, gx_ref), torch.float64)
    assert torch.equal(gx != 0, gx_ref != 0)  # bitwise the same routing


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["contiguous", "channels_last"])
def test_float32_parity_all_filter_sizes(mode, kind):
    x = layout(torch.randn(2, 5, 13, 10), kind)
    for k in range(1, 8):
        ours, ref = both(lambda t, k=k: AF.blur_pool2d(t, k, (2, 3), mode), x)
        assert_parity(ours, ref, torch.float32)
        fmt = torch.channels_last if kind == "channels_last" else torch.contiguous_format
        assert ours[0].is_contiguous(memory_format=fmt)
    for args in [(2,), (3, 2, 1), (3, 2, 1, 2, True), ((2, 3), (1, 2))]:
        ours, ref = both(lambda t, args=args: AF.max_blur_pool2d(t, *args, padding_mode=mode), x)
        assert_parity(ours, ref, torch.float32)


@pytest.mark.parametrize("hw", [(1, 1), (2, 2), (1, 5), (2, 7)])
@pytest.mark.parametrize("mode", MODES)
def test_tiny_maps(hw, mode):
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    for fn in (
        lambda t: AF.blur_pool2d(t, 5, 2, mode),
        lambda t: AF.max_blur_pool2d(t, 1, 2, filter_size=4, padding_mode=mode),
    ):
        ours, ref = both(quiet(fn), x)
        assert_parity(ours, ref, torch.float64)
    if min(hw) >= 2:
        ours, ref = both(quiet(lambda t: AF.max_blur_pool2d(t, 2, padding_mode=mode)), x)
        assert_parity(ours, ref, torch.float64)


@pytest.mark.parametrize("mode", MODES)
def test_1d_runs_through_the_2d_op(mode):
    x = torch.randn(2, 3, 11, dtype=torch.float64)
    for fn in (
        lambda t: AF.blur_pool1d(t, 5, 3, mode),
        lambda t: AF.max_blur_pool1d(t, 3, 2, 1, ceil_mode=True, padding_mode=mode),
        lambda t: BlurPool1d(3, "tri3", 2, mode).double()(t),
        lambda t: MaxBlurPool1d(2, padding_mode=mode).double()(t),
    ):
        ours, ref = both(fn, x)
        assert_parity(ours, ref, torch.float64)


def test_3d_uses_the_pure_path():
    x = torch.randn(1, 2, 5, 6, 7)
    assert not K.use_custom_op(x, 3)
    assert K.use_custom_op(x[:, :, 0], 2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", ["contiguous", "channels_last"])
def test_low_precision(dtype, kind):
    """The kernels accumulate in float32: within the dtype's precision of float32 maths on the
    same rounded input (rounding makes ties, which must resolve as on the rounded input)."""
    x = layout(torch.randn(2, 4, 11, 10).to(dtype), kind)
    for fn in (
        lambda t: AF.blur_pool2d(t, 5),
        lambda t: AF.max_blur_pool2d(t, 3, 2, 1),
        lambda t: AF.max_blur_pool2d(t, 2),
    ):
        y, gx, g = fwd_bwd(fn, x)
        assert y.dtype == dtype and gx.dtype == dtype
        with pure():
            y32, gx32, _ = fwd_bwd(fn, x.float(), g.float())
        torch.testing.assert_close(y.float(), y32, rtol=0, atol=2e-2)
        torch.testing.assert_close(gx.float(), gx32, rtol=0, atol=2e-2)


# =========================================================================== special values and shapes


@pytest.mark.parametrize("kind", ["contiguous", "channels_last"])
def test_nan_and_inf_match_the_reference_formulation(kind):
    """Non-finite values stay local as in pad + F.max_pool2d + conv (the traceable path), the
    max's gradient included: a NaN takes over a window, the last NaN of a window in raster order
    gets its gradient (F.max_pool2d's rule). The pure eager path agrees on values but routes
    gradients around NaN by its own rule (``torch.ge`` masks), so the reference here is the
    traceable path."""
    x = torch.randn(1, 3, 9, 9, dtype=torch.float64)
    x[0, 0, 4, 4] = float("inf")
    x[0, 1, 2, 6] = float("nan")
    x[0, 2, 0, 0] = float("-inf")
    x[0, 2, 5, 5:7] = float("nan")  # two NaNs in one window
    x = layout(x, kind)
    ours, ref = both(lambda t: AF.blur_pool2d(t, 5), x)
    assert_parity(ours, ref, torch.float64)
    rows = [filter_row(4).double()] * 2
    cases = [(lambda t: AF.max_blur_pool2d(t, 2), (2, 0)), (lambda t: AF.max_blur_pool2d(t, 3, 2, 1), (3, 1))]
    for fn, (kernel, pad) in cases:
        y, gx, g = fwd_bwd(fn, x)
        args = ([kernel] * 2, [1, 1], [pad] * 2, [pad] * 2, rows, [2, 2], [1, 1], [2, 2], "reflect")
        y_ref, gx_ref, _ = fwd_bwd(lambda t, args=args: K.max_blur_pool_reference(t, *args), x, g)
        assert_parity((y, gx), (y_ref, gx_ref), torch.float64)
        with pure():
            torch.testing.assert_close(fn(x), y, rtol=0, atol=1e-12, equal_nan=True)
    g = torch.randn(1, 3, 5, 5, dtype=torch.float64)
    g[0, 0, 1, 1] = float("inf")
    xf = torch.randn(1, 3, 9, 9, dtype=torch.float64)
    for fn in (lambda t: AF.blur_pool2d(t, 4), lambda t: AF.max_blur_pool2d(t, 3, 2, 1)):
        _, gx, _ = fwd_bwd(fn, xf, g)
        with pure():
            _, gx_ref, _ = fwd_bwd(fn, xf, g)
        torch.testing.assert_close(gx, gx_ref, rtol=0, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("shape", [(0, 3, 8, 8), (2, 0, 8, 8)])
def test_empty_batch_or_channels(shape):
    x = torch.randn(shape, requires_grad=True)
    for fn, out in [(lambda t: AF.blur_pool2d(t, 4), (4, 4)), (lambda t: AF.max_blur_pool2d(t, 2), (4, 4))]:
        y = fn(x)
        assert y.shape == (*shape[:2], *out)
        (g,) = torch.autograd.grad(y.sum(), x)
        assert g.shape == x.shape


def test_gradcheck_and_gradgradcheck_float64():
    x = torch.randn(1, 2, 7, 6, dtype=torch.float64, requires_grad=True)
    x_cl = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    fns = [
        lambda t: AF.blur_pool2d(t, (3, 4), padding_mode="zeros"),
        lambda t: AF.blur_pool2d(t, 5, stride=(1, 3), padding_mode="circular"),
        lambda t: AF.max_blur_pool2d(t, 2, filter_size=5),
        lambda t: AF.max_blur_pool2d(t, 3, 2, 1, ceil_mode=True, padding_mode="replicate"),
    ]
    for fn in fns:
        for inp in (x, x_cl):
            assert torch.autograd.gradcheck(fn, (inp,))
            assert torch.autograd.gradgradcheck(fn, (inp,))


@pytest.mark.parametrize("kind", ["contiguous", "channels_last"])
def test_bitwise_equal_at_one_and_two_threads(kind):
    x = layout(torch.relu(torch.randn(4, 16, 23, 21)), kind)
    fns = [lambda t: AF.blur_pool2d(t, 5), lambda t: AF.max_blur_pool2d(t, 3, 2, 1), lambda t: AF.max_blur_pool2d(t, 2)]
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append([fwd_bwd(fn, x, torch.ones(fn(x).shape))[:2] for fn in fns])
    finally:
        torch.set_num_threads(previous)
    for (y1, g1), (y2, g2) in zip(*results, strict=True):
        assert torch.equal(y1, y2) and torch.equal(g1, g2)


def test_saves_only_the_input():
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    for fn, allowed in [(lambda t: AF.blur_pool2d(t, 5), 0), (lambda t: AF.max_blur_pool2d(t, 3, 2, 1), 1)]:
        saved: list[torch.Tensor] = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t, saved=saved: saved.append(t) or t, lambda t: t):
            fn(x)
        assert len(saved) == allowed
        assert all(t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() for t in saved)


def test_opcheck():
    """torch.library's own consistency checks: schema, fake kernel, autograd registration."""
    rows = [filter_row(4), filter_row(3)]
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64, requires_grad=True)
    ops = torch.ops.antialias
    torch.library.opcheck(ops.blur_pool.default, (x, rows, [2, 1], [1, 1], [2, 1], "reflect"))
    args = ([3, 2], [1, 1], [1, 0], [2, 0], rows, [2, 2], [1, 1], [2, 1], "zeros")
    torch.library.opcheck(ops.max_blur_pool.default, (x, *args))
    x_cl = x.detach().contiguous(memory_format=torch.channels_last)
    torch.library.opcheck(ops.max_blur_pool.default, (x_cl, *args), test_utils=("test_schema", "test_faketensor"))


# =========================================================================== compile and export


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        BlurPool2d(3, "bin5"),
        MaxBlurPool2d(3, 2, 1, filter_size="tri4"),
        torch.nn.Conv2d(3, 3, 1),
        MaxBlurPool2d(2, padding_mode="circular"),
    )


def test_compiled_graphs_keep_the_custom_ops():
    """torch.compile(fullgraph=True): forward and backward graphs hold our ops, undecomposed."""
    from functorch.compile import make_boxed_func
    from torch._functorch.aot_autograd import aot_module_simplified

    graphs = {"fw": [], "bw": []}

    def backend(gm, example_inputs):
        def record(kind):
            def compiler(g, _):
                graphs[kind].append(g)
                return make_boxed_func(g.forward)

            return compiler

        return aot_module_simplified(gm, example_inputs, fw_compiler=record("fw"), bw_compiler=record("bw"))

    torch._dynamo.reset()
    net = _net()
    x = torch.randn(2, 3, 12, 12, requires_grad=True)
    compiled = torch.compile(net, fullgraph=True, backend=backend)
    y = compiled(x)
    g = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, x, g)
    y_ref = net(x)
    (gx_ref,) = torch.autograd.grad(y_ref, x, g)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(gx, gx_ref, rtol=0, atol=1e-6)

    def targets(kind):
        return [str(n.target) for gm in graphs[kind] for n in gm.graph.nodes if n.op == "call_function"]

    fw, bw = targets("fw"), targets("bw")
    assert fw.count("antialias.blur_pool.default") == 1 and fw.count("antialias.max_blur_pool.default") == 2
    assert bw.count("antialias.blur_pool_backward.default") == 1
    assert bw.count("antialias.max_blur_pool_backward.default") == 2
    plain_conv = "aten.convolution.default"
    assert not any("max_pool" in t or ("convolution" in t and "antialias" not in t and t != plain_conv) for t in fw)


def test_torch_export_shows_the_ops_as_nodes():
    net = _net().eval()
    x = torch.randn(2, 3, 12, 12)
    program = torch.export.export(net, (x,))
    targets = [n.target for n in program.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.ops.antialias.blur_pool.default) == 1
    assert targets.count(torch.ops.antialias.max_blur_pool.default) == 2
    torch.testing.assert_close(program.module()(x), net(x), rtol=0, atol=1e-6)


def test_jit_trace_takes_the_traceable_path():
    net = _net().eval()
    x = torch.randn(2, 3, 12, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, (x,))
    assert "antialias::" not in str(traced.inlined_graph)
    torch.testing.assert_close(traced(x), net(x), rtol=0, atol=1e-6)


# =========================================================================== band-matrix cache (pure path)


def test_band_matrix_cache_is_keyed_by_device():
    row = torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64)
    args = (8, 1, 1, "reflect", 2, torch.float32, 8)
    cpu = K._band_matrix_cached(row, *args, device=torch.device("cpu"))
    assert K._band_matrix_cached(row, *args, device=torch.device("cpu")) is cpu  # memoised
    meta = K._band_matrix_cached(row, *args, device=torch.device("meta"))
    assert meta.device.type == "meta" and meta is not cpu
    assert K._band_matrix_cached(row, *args, device=torch.device("meta")) is meta  # one per device
    # A filter living on another device is keyed by identity and version: no values read (which
    # would synchronise a GPU), and an in-place edit invalidates the entry.
    dev_row = row.to("meta")
    first = K._band_matrix_cached(dev_row, *args, device=torch.device("meta"))
    assert K._band_matrix_cached(dev_row, *args, device=torch.device("meta")) is first
    dev_row.mul_(1.0)
    assert K._band_matrix_cached(dev_row, *args, device=torch.device("meta")) is not first


# =========================================================================== build, cache and fallback


def _run(code: str, env: dict) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", **env}
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=300)


_PROBE = """
import warnings, torch
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import antialias.functional as AF
    from antialias import _ext
    x = torch.randn(1, 2, 8, 8, requires_grad=True)
    AF.max_blur_pool2d(x, 2).sum().backward()
    AF.blur_pool2d(x, 4).sum().backward()
print(_ext.backend().name, sum("could not be built" in str(w.message) for w in caught))
"""


@pytest.mark.xdist_group("subprocesses")
def test_missing_compiler_falls_back_with_one_warning(tmp_path):
    result = _run(_PROBE, {"CXX": str(tmp_path / "no-such-compiler"), _ext.ENV_CACHE: str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["pure", "1"], result.stdout + result.stderr


@pytest.mark.xdist_group("subprocesses")
def test_env_var_forces_the_pure_path_silently(tmp_path):
    result = _run(_PROBE, {_ext.ENV_PURE: "1", _ext.ENV_CACHE: str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["pure", "0"], result.stdout + result.stderr
    assert not any(tmp_path.iterdir())  # nothing built


def test_cache_key_and_directory(monkeypatch, tmp_path):
    key = _ext.cache_key()
    assert key.startswith("torch") and key == _ext.cache_key()
    monkeypatch.setenv(_ext.ENV_CACHE, str(tmp_path))
    assert _ext.cache_dir() == tmp_path / "ext"
    monkeypatch.delenv(_ext.ENV_CACHE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _ext.cache_dir() == tmp_path / "antialias" / "ext"


def test_the_built_library_is_reused_from_the_cache():
    """This process loaded the library from the per-machine cache, where the build left it."""
    backend = _ext.backend()
    assert Path(backend.detail, "antialias_ext.so").is_file()
    assert Path(backend.detail).name == _ext.cache_key()
    assert "C++" in _ext.description()


def test_concurrent_builds_compile_once_and_the_waiter_loads_the_published_build(monkeypatch, tmp_path):
    """Two racing builders: one compiles into a temporary folder published into place under the
    lock; the other waits on the lock and loads the published library. No temporary folder is left."""
    import threading
    import time

    from torch.utils import cpp_extension

    compiled, loaded = [], []

    def fake_load(*, name, build_directory, **kwargs):
        compiled.append(build_directory)
        time.sleep(0.5)  # hold the lock long enough for the other thread to queue on it
        Path(build_directory, f"{name}.so").write_bytes(b"library")

    monkeypatch.setattr(cpp_extension, "load", fake_load)
    monkeypatch.setattr(torch.ops, "load_library", loaded.append)
    final = tmp_path / "key"
    threads = [threading.Thread(target=_ext._build_and_load, args=(final,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(compiled) == 1 and Path(compiled[0]).parent == tmp_path
    assert loaded == [str(final / "antialias_ext.so")]  # the waiter, from the published folder
    assert (final / "antialias_ext.so").read_bytes() == b"library"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key", "key.lock"]


def test_a_failed_build_leaves_no_folder(monkeypatch, tmp_path):
    from torch.utils import cpp_extension

    def broken(**kwargs):
        Path(kwargs["build_directory"], "half.o").write_bytes(b"")
        raise RuntimeError("Error building extension")

    monkeypatch.setattr(cpp_extension, "load", broken)
    with pytest.raises(RuntimeError, match="Error building extension"):
        _ext._build_and_load(tmp_path / "key")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.lock"]
