"""The defining property of APS and LPS (Chaman & Dokmanic 2021; Rojas-Gomez et al. 2022): with circular
padding throughout, a network converted with ``method="aps"``/``"lps"`` (eval mode) gives the same logits,
bit for bit, for every circular shift of its input; plain subsampling and BlurPool do not.

Exact by construction: circular convs, BatchNorm, ReLU and max-pools commute with circular shifts bit for
bit (every output is the same arithmetic on the same values), a polyphase sampler copies values, and each
network ends on a 1x1 map (or a global max), so no reduction order depends on the shift. The reference
logits are computed on a batch of the same size (copies of the unshifted input): CPU conv kernels are
chosen by batch size, and two kernels may round differently.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from antialias import convert
from antialias.models import get_model


def _circular(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.padding_mode = "circular"
    return model


def _same(net: nn.Module, x: Tensor, shifted: Tensor, chunk: int) -> bool:
    """Whether every shifted input gives exactly the logits of ``x`` (compared at equal batch sizes)."""
    with torch.no_grad():
        for part in shifted.split(chunk):
            if not torch.equal(net(part), net(x.expand_as(part).contiguous())):
                return False
    return True


def _all_shifts(x: Tensor, step: int = 1) -> Tensor:
    """(1, C, H, W) -> (H*W/step**2, C, H, W): every circular shift (on a ``step`` grid)."""
    h, w = x.shape[-2:]
    return torch.cat([torch.roll(x, (dy, dx), (2, 3)) for dy in range(0, h, step) for dx in range(0, w, step)])


class _Block(nn.Module):
    """torchvision's BasicBlock order: main branch first, then the strided 1x1 shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, 2, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.downsample(x))


def plain_net() -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2)]  # 32 -> 16
    for cin, cout in ((8, 8), (8, 12), (12, 12), (12, 16)):  # 16 -> 8 -> 4 -> 2 -> 1
        layers += [nn.Conv2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(16, 5))


def residual_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(),
        _Block(8, 8), _Block(8, 12), _Block(12, 12), _Block(12, 16), _Block(16, 16),  # 32 -> 1
        nn.Flatten(), nn.Linear(16, 5),
    )


def global_max_net() -> nn.Module:
    """Ends on a 4x4 map reduced by a global max (order-free), with an avg-pool and a strided max-pool."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.AvgPool2d(2),  # 32 -> 16
        nn.Conv2d(8, 8, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(3, 2, 1),  # 16 -> 8
        nn.Conv2d(8, 12, 3, 2, 1), nn.ReLU(),  # 8 -> 4
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(12, 5),
    )


def _randomise_bn(model: nn.Module) -> None:
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)


def _converted(build, method: str) -> nn.Module:
    torch.manual_seed(0)
    model = _circular(build())
    new, report = convert(model, method=method, padding_mode="circular", filter_size=1, input_size=(1, 3, 32, 32))
    assert report.sites and not report.skipped, str(report)
    _randomise_bn(new)
    return new.eval()


@pytest.mark.parametrize("method", ["aps", "lps"])
@pytest.mark.parametrize("build", [plain_net, residual_net, global_max_net], ids=["plain", "residual", "globalmax"])
def test_every_circular_shift_gives_identical_logits(build, method):
    net = _converted(build, method)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    shifted = _all_shifts(x)
    assert shifted.shape[0] == 1024
    assert _same(net, x, shifted, 256)


def test_aps_with_circular_pre_blur_is_invariant_to_round_off():
    """The pre-blur (the library's banded-GEMM blur) sums in another order at the wrapped border, so the
    logits agree to float round-off, and the predictions exactly."""
    torch.manual_seed(0)
    model = _circular(residual_net())
    new, _ = convert(model, method="aps", padding_mode="circular", filter_size=3, input_size=(1, 3, 32, 32))
    _randomise_bn(new)
    new.eval()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = torch.cat([new(part) for part in _all_shifts(x).split(256)])
        ref = new(x)
    assert torch.allclose(out, ref.expand_as(out), atol=1e-5)
    assert torch.equal(out.argmax(1), ref.argmax(1).expand(out.shape[0]))


@pytest.mark.parametrize("method", ["aps", "lps"])
def test_zoo_resnet18_every_circular_shift(method):
    """The zoo's ResNet-18 (its blocks run the shortcut first) at 32x32 ends on a 1x1 map; all shifts on a
    grid of 2 plus every odd offset along the diagonal (each parity class of every sampler is reached)."""
    torch.manual_seed(0)
    model = _circular(get_model("resnet18", filter_size=None, num_classes=5))
    new, report = convert(model, method=method, padding_mode="circular", filter_size=1, input_size=(1, 3, 32, 32))
    assert sum("residual pair" in s.note for s in report.sites) == 6  # 3 shortcuts and their main branches
    _randomise_bn(new)
    new.eval()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    shifts = torch.cat([_all_shifts(x, 4), torch.cat([torch.roll(x, (d, d + 1), (2, 3)) for d in range(1, 32, 2)])])
    assert _same(new, x, shifts, 40)


@pytest.mark.parametrize("method", ["blurpool", None])
def test_baselines_are_not_invariant(method):
    """The property is not vacuous: plain subsampling and BlurPool change the logits under some shift."""
    torch.manual_seed(0)
    model = _circular(residual_net())
    if method is not None:
        model, _ = convert(model, method=method, padding_mode="circular")
    _randomise_bn(model)
    model.eval()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert not _same(model, x, _all_shifts(x, 3), 256)


def test_unpaired_shortcut_breaks_invariance():
    """The residual pairing matters: an APS shortcut choosing its own phase is not invariant."""
    net = _converted(residual_net, "aps")
    from antialias.downsample import APS2d, PhaseFollow2d

    for m in list(net.modules()):
        for name, child in list(m.named_children()):
            if isinstance(child, PhaseFollow2d):
                setattr(m, name, APS2d(stride=child.stride, padding_mode="circular"))
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert not _same(net, x, _all_shifts(x), 256)
