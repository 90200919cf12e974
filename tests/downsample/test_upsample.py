"""Anti-aliased upsampling: constants stay constant, a shift by 1 before is a shift by s after (exactly),
and a U-Net of APS/LPS samplers and polyphase upsamplers is circularly shift-equivariant."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from torch.autograd import gradcheck

from antialias import convert
from antialias.downsample import (
    APS2d,
    BlurConvTranspose2d,
    BlurUpsample2d,
    PolyphaseUpsample2d,
    blur_upsample2d,
    polyphase_upsample2d,
    upsample_filter,
)


@pytest.mark.parametrize("stride", [2, (2, 4), 3])
@pytest.mark.parametrize("filter_size", [None, 2, 3, "bin5"])
def test_constant_stays_constant(stride, filter_size):
    x = torch.full((1, 2, 5, 4), 1.5)
    out = blur_upsample2d(x, stride, filter_size=filter_size)
    s = (stride, stride) if isinstance(stride, int) else stride
    assert out.shape == (1, 2, 5 * s[0], 4 * s[1])
    if all(v in (1, 2, 4) for v in s):  # dyadic taps: exact
        assert torch.equal(out, torch.full_like(out, 1.5))
    else:
        assert torch.allclose(out, torch.full_like(out, 1.5), atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(dy=st.integers(-6, 6), dx=st.integers(-6, 6), sh=st.integers(1, 3), sw=st.integers(1, 3),
       filter_size=st.sampled_from([None, 3, 4]), seed=st.integers(0, 2**16))
def test_shift_by_one_before_is_shift_by_s_after_exactly(dy, dx, sh, sw, filter_size, seed):
    x = torch.randn(2, 3, 6, 5, generator=torch.Generator().manual_seed(seed))
    up = BlurUpsample2d((sh, sw), filter_size)
    assert torch.equal(up(torch.roll(x, (dy, dx), (2, 3))), torch.roll(up(x), (dy * sh, dx * sw), (2, 3)))


def test_filter_polyphase_classes_sum_to_one_over_s():
    for s in (2, 3, 4):
        for fs in (None, 2, 3, 5):
            row = upsample_filter(s, fs)
            assert torch.allclose(row.sum(), torch.tensor(1.0, dtype=torch.float64))
            classes = torch.stack([row[p::s].sum() for p in range(s)])
            assert torch.allclose(classes, torch.full((s,), 1.0 / s, dtype=torch.float64))


def test_upsample_of_a_low_band_signal_interpolates_linearly():
    """The default filter (rect * rect) is linear interpolation between the kept samples."""
    x = torch.tensor([[[[0.0, 4.0, 8.0, 4.0]]]])
    assert torch.equal(blur_upsample2d(x, (1, 2)), torch.tensor([[[[0.0, 2.0, 4.0, 6.0, 8.0, 6.0, 4.0, 2.0]]]]))


def test_polyphase_upsample_places_at_the_chosen_phase():
    x = torch.randn(2, 3, 7, 6)
    down = APS2d(stride=2)
    up = PolyphaseUpsample2d(down.link, filter_size=1)
    y = up(down(x))
    assert y.shape == x.shape
    for n in range(2):
        a, b = divmod(int(down.link.index[n]), 2)
        kept = torch.zeros(7, 6, dtype=torch.bool)
        kept[a::2, b::2] = True
        assert torch.equal(y[n][:, kept], x[n][:, kept]) and not y[n][:, ~kept].any()
    assert torch.equal(y, polyphase_upsample2d(down(x), down.link.index, 2, size=(7, 6), filter_size=1))


def test_polyphase_upsample_errors_and_unlinked():
    down = APS2d(stride=2)
    up = PolyphaseUpsample2d(down.link)
    with pytest.raises(RuntimeError, match="must run before"):
        up(torch.randn(1, 1, 4, 4))
    down(torch.randn(1, 1, 8, 8))
    with pytest.raises(RuntimeError, match="linked to the wrong downsampler"):
        up(torch.randn(1, 1, 3, 4))
    free = PolyphaseUpsample2d(None, stride=2)
    x = torch.randn(1, 2, 3, 3)
    assert torch.equal(free(x), blur_upsample2d(x, 2))
    with pytest.raises(ValueError, match="pass `stride`"):
        PolyphaseUpsample2d(None)


def test_blur_conv_transpose_keeps_keys_and_constants():
    torch.manual_seed(0)
    plain = nn.ConvTranspose2d(2, 2, 2, stride=2)
    new = BlurConvTranspose2d(2, 2, 2, stride=2)
    new.load_state_dict(plain.state_dict())
    assert list(new.state_dict()) == list(plain.state_dict())
    with torch.no_grad():  # a constant map out of the transposed conv stays that constant after the blur
        new.weight.fill_(0.5)  # 2 input channels x 0.5 = 1 at every output position
        new.bias.zero_()
    assert torch.equal(new(torch.ones(1, 2, 4, 4)), torch.ones(1, 2, 8, 8))


def test_gradcheck():
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: blur_upsample2d(t, (2, 3), filter_size=3, padding_mode="reflect"), (x,))
    assert gradcheck(lambda t: polyphase_upsample2d(t, torch.tensor([3]), 2, size=(5, 8)), (x,))


class UNet(nn.Module):
    """A small U-Net: two strided convs down, two nearest upsamplings back, skip connections."""

    def __init__(self) -> None:
        super().__init__()
        conv = lambda i, o, s=1: nn.Conv2d(i, o, 3, s, 1, padding_mode="circular")  # noqa: E731
        self.enc0 = nn.Sequential(conv(3, 8), nn.ReLU())
        self.down1 = nn.Sequential(conv(8, 8, 2), nn.BatchNorm2d(8), nn.ReLU())  # 16 -> 8
        self.down2 = nn.Sequential(conv(8, 8, 2), nn.BatchNorm2d(8), nn.ReLU())  # 8 -> 4
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")  # 4 -> 8
        self.dec2 = nn.Sequential(conv(16, 8), nn.ReLU())
        self.up1 = nn.Upsample(scale_factor=2, mode="nearest")  # 8 -> 16
        self.dec1 = conv(16, 2)

    def forward(self, x: Tensor) -> Tensor:
        e0 = self.enc0(x)
        e1 = self.down1(e0)
        e2 = self.down2(e1)
        d2 = self.dec2(torch.cat([self.up2(e2), e1], 1))
        return self.dec1(torch.cat([self.up1(d2), e0], 1))


@pytest.mark.parametrize("method", ["aps", "lps"])
def test_unet_is_circularly_shift_equivariant(method):
    torch.manual_seed(0)
    net, report = convert(UNet(), method=method, upsample=True, padding_mode="circular", filter_size=None)
    assert report.placements() == {"down1.0": "after-activation", "down2.0": "after-activation",
                                   "up2": "drop-in", "up1": "drop-in"}
    notes = {s.name: s.note for s in report.sites}
    assert "`down2.0`" in notes["up2"] and "`down1.0`" in notes["up1"]  # mirror order
    net.eval()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    shifts = [(dy, dx) for dy in range(16) for dx in range(16)]
    with torch.no_grad():
        batch = torch.cat([torch.roll(x, s, (2, 3)) for s in shifts])
        out = net(batch)
        ref = net(x.expand_as(batch).contiguous())
    for k, s in enumerate(shifts):
        assert torch.equal(out[k], torch.roll(ref[k], s, (1, 2))), s


def test_unet_with_plain_upsampling_is_not_equivariant():
    """The property needs the polyphase upsampler: phase-0 upsampling after APS breaks it."""
    torch.manual_seed(0)
    net, _ = convert(UNet(), method="aps", upsample=False, padding_mode="circular", filter_size=None)
    net.eval()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        shifted = net(torch.roll(x, (1, 1), (2, 3)))
        assert not torch.equal(shifted, torch.roll(net(x), (1, 1), (2, 3)))


def test_convert_upsample_blurpool_and_convtranspose():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.ConvTranspose2d(4, 4, 2, stride=2),
                          nn.Upsample(scale_factor=2))
    keys = list(model.state_dict())
    new, report = convert(model, upsample=True, input_size=(1, 3, 8, 8))
    assert report.placements() == {"0": "after-activation", "2": "after-upsample", "3": "drop-in"}
    assert isinstance(new[2], BlurConvTranspose2d) and isinstance(new[3], BlurUpsample2d)
    assert list(new.state_dict()) == keys
    assert new(torch.randn(1, 3, 8, 8)).shape == (1, 4, 16, 16)
    untouched, report = convert(model, input_size=(1, 3, 8, 8))  # upsample=False: as before
    assert isinstance(untouched[3], nn.Upsample) and "3" not in report.placements()
