"""Compilers and exporters (issue 2 item 6): torch.compile, torch.export, ONNX, torch.fx, torch.jit.trace.

Under any of them the library leaves its eager fast path for plain ATen ops (pad + depthwise conv,
stride-1 max-pool); these tests check that the switch happens by itself and gives eager's numbers.
Shapes are tiny: the cost is in compiling, not in running.

TorchScript: ``torch.jit.trace`` is supported (tested below). ``torch.jit.script`` is NOT: the
layers use Python features TorchScript's compiler does not parse (``tuple[Tensor, ...]``
annotations, properties, keyword-only arguments, dynamic error messages); use ``torch.jit.trace``,
``torch.export`` or ``torch.compile`` instead.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

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

MODES = ("reflect", "replicate", "zeros", "circular")


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _net() -> nn.Sequential:
    """Every layer kind and every padding mode in one small network: (2, 3, 16, 16) -> (2, 4, 4, 3)."""
    torch.manual_seed(0)
    return nn.Sequential(
        ConvBlurPool2d(3, 4, 3, stride=2, padding=1, norm_layer=nn.BatchNorm2d, filter_size="tri4"),  # 8x8
        MaxBlurPool2d(2, stride=1, channels=4, filter_size=3, padding_mode="replicate"),  # 7x7
        BlurPool2d(4, ("rect2", 5), (1, 2), padding_mode="zeros"),  # 7x4
        MaxBlurPool2d(3, 2, 1, ceil_mode=True, filter_size="bin5", padding_mode="reflect"),  # 4x3 (ceil_mode)
        BlurConv2d(4, 4, 1, stride=1, filter_size=2, padding_mode="circular"),
        BlurPool2d(4, 3, 1, padding_mode="circular"),
    ).eval()


# =========================================================================== torch.compile


@pytest.mark.parametrize(
    "make",
    [
        lambda: BlurPool2d(3, "tri4", 2, "reflect"),
        lambda: MaxBlurPool2d(2, channels=3, filter_size="bin5", padding_mode="circular"),
    ],
    ids=["BlurPool2d", "MaxBlurPool2d"],
)
def test_compile_fullgraph_equals_eager(make):
    """The default (inductor) backend, forward; inductor's backward compile is too slow for CI."""
    torch._dynamo.reset()
    module = make()
    compiled = torch.compile(module, fullgraph=True)
    x = rand(2, 3, 9, 10)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), module(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_compile_fullgraph_gradients_with_ties(mode):
    """Gradients through the compiled graph (aot_eager: the same traced forward and backward graphs
    inductor would get, without code generation). Ties after a ReLU go to the same element as eager."""
    torch._dynamo.reset()
    module = nn.Sequential(
        nn.ReLU(), MaxBlurPool2d(3, 2, 1, filter_size=4, padding_mode=mode), BlurPool2d(2, "tri3", 2, mode)
    )
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    x = rand(1, 2, 12, 11).round().requires_grad_()
    out, eager = compiled(x), module(x)
    torch.testing.assert_close(out, eager, rtol=1e-6, atol=1e-6)
    g = rand(*eager.shape, seed=1)
    torch.testing.assert_close(
        torch.autograd.grad(out, x, g)[0], torch.autograd.grad(eager, x, g)[0], rtol=1e-6, atol=1e-6
    )


# =========================================================================== torch.export


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: BlurPool1d(3, 5, 3, "reflect"), (2, 3, 11)),
        (lambda: MaxBlurPool1d(3, 2, 1, ceil_mode=True, padding_mode="circular"), (2, 3, 11)),
        (lambda: BlurPool3d(3, (2, 3, 4), (1, 2, 3), "replicate"), (1, 3, 5, 6, 7)),
        (lambda: MaxBlurPool3d(2, filter_size=3, padding_mode="zeros"), (1, 3, 6, 6, 7)),
        (_net, (2, 3, 16, 16)),
    ],
    ids=["BlurPool1d", "MaxBlurPool1d", "BlurPool3d", "MaxBlurPool3d", "net2d"],
)
def test_torch_export_matches_eager(make, shape):
    module = make().eval()
    x = rand(*shape)
    program = torch.export.export(module, (x,))
    torch.testing.assert_close(program.module()(x), module(x), rtol=1e-6, atol=1e-6)
    x2 = rand(*shape, seed=5)
    torch.testing.assert_close(program.module()(x2), module(x2), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_torch_export_dynamic_batch_and_size(mode):
    module = nn.Sequential(BlurPool2d(3, 4, 2, mode), MaxBlurPool2d(2, channels=3, padding_mode=mode)).eval()
    batch = torch.export.Dim("batch", max=64)
    half = torch.export.Dim("half", min=4, max=64)
    program = torch.export.export(module, (rand(2, 3, 16, 20),), dynamic_shapes=({0: batch, 2: 2 * half},))
    for shape in [(2, 3, 16, 20), (5, 3, 24, 20), (1, 3, 10, 20)]:
        x = rand(*shape, seed=sum(shape))
        torch.testing.assert_close(program.module()(x), module(x), rtol=1e-6, atol=1e-6)


# =========================================================================== ONNX


def test_onnx_export_runs_in_onnxruntime():
    """torch.onnx.export(dynamo=True) at the exporter's default opset; onnxruntime == eager to 1e-5."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    module = _net()
    x = rand(2, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (x,), dynamo=True, verbose=False)
    session = ort.InferenceSession(program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(out, module(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    x2 = rand(2, 3, 16, 16, seed=3)
    (out2,) = session.run(None, {session.get_inputs()[0].name: x2.numpy()})
    np.testing.assert_allclose(out2, module(x2).detach().numpy(), rtol=1e-5, atol=1e-5)


# =========================================================================== torch.fx


def test_fx_symbolic_trace_records_layers_as_calls():
    module = _net()
    traced = torch.fx.symbolic_trace(module)
    x = rand(2, 3, 16, 16)
    torch.testing.assert_close(traced(x), module(x), rtol=0, atol=0)
    targets = [
        getattr(node.target, "__name__", str(node.target)) for node in traced.graph.nodes if node.op == "call_function"
    ]
    # One leaf call per layer (their shape checks would not trace): 4 blur pools (two of them
    # inside ConvBlurPool2d and BlurConv2d) and 2 max-blur pools.
    assert targets.count("_max_blur_pool_forward") == 2
    assert targets.count("_blur_pool_forward") == 4
    # The filter buffers stay buffers of the traced module (so .to() still moves them).
    assert {name for name, _ in traced.named_buffers()} >= {"2.filter_h", "2.filter_w"}
    traced64 = traced.double()
    torch.testing.assert_close(traced64(x.double()), module.double()(x.double()), rtol=1e-12, atol=1e-12)


# =========================================================================== TorchScript


def test_jit_trace_matches_eager():
    """``torch.jit.trace`` works. ``torch.jit.script`` is not supported (see the module docstring)."""
    module = _net()
    x = rand(2, 3, 16, 16)
    with warnings.catch_warnings():
        # jit.trace is deprecated in favour of compile/export, and it warns about the layers'
        # Python-side shape checks, which it evaluates once at trace time (fixed input shape).
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, (x,))
    torch.testing.assert_close(traced(x), module(x), rtol=1e-6, atol=1e-6)
    x2 = rand(2, 3, 16, 16, seed=7)
    torch.testing.assert_close(traced(x2), module(x2), rtol=1e-6, atol=1e-6)
