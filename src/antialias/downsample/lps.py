"""Learnable polyphase sampling (LPS; Rojas-Gomez, Lim, Schwing, Do & Dokmanic, "Learnable polyphase
sampling for shift invariant and equivariant convolutional networks", NeurIPS 2022).

A small scoring network gives each polyphase component one logit; training samples the component with
a Gumbel-softmax at temperature ``tau`` (straight-through by default: the forward keeps exactly one
component, the gradient is the soft one's), evaluation keeps the argmax. Because the scores are computed
per component by a shift-equivariant network and pooled globally, the choice moves with a circular shift
of the input, as APS's does.

Scoring network here: ``1x1 conv (C -> hidden) -> ReLU -> 1x1 conv (hidden -> 1, no bias) -> spatial
mean``, shared by the components (the paper's LPD uses small convolutional layers; 1x1 keeps it cheap
and needs no padding). Odd sizes are padded at the end to a multiple of the stride with
``padding_mode``; an optional binomial pre-blur (``filter_size``) runs first.

The temperature is the trainer's: :func:`set_lps_temperature` sets it on every LPS layer of a model,
and :func:`lps_temperature` is the exponential schedule ``antialias train`` drives from
``lps_tau_start``/``lps_tau_end``.
"""

from __future__ import annotations

import math
from typing import Any

import torch  # noqa: F401  (the docstring examples use it)
import torch.nn.functional as F
from torch import Tensor, nn

from antialias.downsample import _common as _c
from antialias.downsample.aps import _blur_rows, _check_channels, _prepare
from antialias.filters import FilterSpec

__all__ = ["LPS2d", "lps_select2d", "lps_temperature", "set_lps_temperature"]


def _check_tau(tau: Any, where: str) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau <= 0:
        raise ValueError(f"{where}: `tau` must be a positive finite number, got {tau!r}.")
    return float(tau)


def lps_select2d(
    input: Tensor,
    logits: Tensor,
    stride: int | tuple[int, int] = 2,
    *,
    tau: float = 1.0,
    hard: bool = True,
    training: bool = False,
    padding_mode: str = "circular",
) -> tuple[Tensor, Tensor]:
    """Select polyphase components from per-component ``logits`` the LPS way.

    Training: Gumbel-softmax weights at temperature ``tau`` (``hard=True``: one-hot forward,
    soft gradient; ``hard=False``: a soft mixture); evaluation: the argmax component, exactly.

    Args:
        input: ``(N, C, H, W)``; odd sizes are padded at the end with ``padding_mode``.
        logits: ``(N, s_h * s_w)`` scores in flat phase order ``a * s_w + b``.
        stride: ``s`` or ``(s_h, s_w)``.
        tau: Gumbel-softmax temperature (> 0).
        hard: Straight-through (one-hot forward) when training.
        training: Sample (True) or take the argmax (False).
        padding_mode: Padding of odd sizes.

    Returns:
        ``(out, selection)``: ``out`` of shape ``(N, C, ceil(H / s_h), ceil(W / s_w))``; ``selection``
        the weights ``(N, P)`` when training, else the flat index ``(N,)``.

    Examples:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> lps_select2d(x, torch.tensor([[0.0, 5.0, 0.0, 0.0]]))[0]  # phase (0, 1) scores highest
        tensor([[[[ 1.,  3.],
                  [ 9., 11.]]]])
    """
    where = "`lps_select2d`"
    _c.check_input(input, where)
    s = _c.pair(stride, "stride", where)
    _c.check_padding_mode(padding_mode, where)
    tau = _check_tau(tau, where)
    if not isinstance(logits, Tensor) or logits.shape != (input.shape[0], s[0] * s[1]):
        raise ValueError(
            f"{where}: `logits` must have shape ({input.shape[0]}, {s[0] * s[1]}), got "
            f"{tuple(getattr(logits, 'shape', ()))!r}."
        )
    x = _c.pad_to_multiple(input, s, padding_mode)
    return _select(x, logits, s, tau, hard, training)


def _select(
    x: Tensor, logits: Tensor, s: tuple[int, int], tau: float, hard: bool, training: bool
) -> tuple[Tensor, Tensor]:
    if training:
        weights = F.gumbel_softmax(logits.float(), tau=tau, hard=hard, dim=1)  # (N, P)
        return _c.mix_phases(x, weights, s), weights
    index = logits.argmax(dim=1)  # (N,)
    return _c.gather_phase(x, index, s), index


class LPS2d(nn.Module):
    """Learnable polyphase sampling (Rojas-Gomez et al., NeurIPS 2022) as a layer.

    Args:
        channels: Input channels (None: inferred on the first forward by lazy 1x1 convs).
        stride: ``s`` or ``(s_h, s_w)``.
        filter_size: Optional binomial pre-blur; None or 1: none.
        hidden_channels: Width of the scoring network (default ``max(channels // 4, 8)``, or 8 when lazy).
        tau: Gumbel-softmax temperature while training (:func:`set_lps_temperature` changes it).
        hard: Straight-through Gumbel-softmax (one-hot forward) while training; False mixes softly.
        padding_mode: Padding of the blur and of odd sizes.

    Attributes:
        link: :class:`~antialias.downsample.PhaseLink` with the last forward's choice (index in eval,
            weights in training), for a shortcut's :class:`~antialias.downsample.PhaseFollow2d`.

    Shape:
        ``(N, C, H, W) -> (N, C, ceil(H / s_h), ceil(W / s_w))``.

    ``state_dict`` keys: ``score.0.weight``, ``score.0.bias``, ``score.2.weight``.

    Examples:
        >>> lps = LPS2d(16, stride=2).eval()
        >>> lps(torch.randn(2, 16, 9, 8)).shape
        torch.Size([2, 16, 5, 4])
    """

    def __init__(
        self,
        channels: int | None = None,
        stride: int | tuple[int, int] = 2,
        filter_size: FilterSpec | None = None,
        hidden_channels: int | None = None,
        tau: float = 1.0,
        hard: bool = True,
        padding_mode: str = "circular",
        *,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        where = "`LPS2d`"
        self.channels = channels
        self.stride = _c.pair(stride, "stride", where)
        _c.check_padding_mode(padding_mode, where)
        self.tau = _check_tau(tau, where)
        self.hard = bool(hard)
        self.filter_size = filter_size
        self.padding_mode = padding_mode
        factory = {"device": device, "dtype": dtype}
        hidden = hidden_channels if hidden_channels is not None else max((channels or 32) // 4, 8)
        first: nn.Module = (
            nn.Conv2d(channels, hidden, 1, **factory) if channels is not None else nn.LazyConv2d(hidden, 1, **factory)
        )
        self.score = nn.Sequential(first, nn.ReLU(), nn.Conv2d(hidden, 1, 1, bias=False, **factory))
        rows = _blur_rows(filter_size, where)
        self._blur = rows  # float64 rows on the CPU (no state_dict keys); moved to the input's device per call
        self.link = _c.PhaseLink(self.stride)

    def logits(self, x: Tensor) -> Tensor:
        """Per-component logits ``(N, s_h * s_w)`` of an input already blurred and padded to multiples."""
        n = x.shape[0]
        comps = _c.components(x, self.stride)  # (N, P, C, h, w)
        flat = comps.flatten(0, 1)  # (N * P, C, h, w)
        return self.score(flat).mean(dim=(1, 2, 3)).view(n, -1)  # (N, P)

    def forward(self, x: Tensor) -> Tensor:
        _check_channels(x, self.channels, "`LPS2d`")
        fmt = _c.memory_format(x)
        xp = _prepare(x, self.stride, self._blur, self.padding_mode)
        out, sel = _select(xp, self.logits(xp), self.stride, self.tau, self.hard, self.training)
        if self.training:
            self.link.record(tuple(x.shape[-2:]), None, sel)  # type: ignore[arg-type]
        else:
            self.link.record(tuple(x.shape[-2:]), sel, None)  # type: ignore[arg-type]
        return out.contiguous(memory_format=fmt)

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, stride={self.stride}, filter_size={self.filter_size!r}, tau={self.tau:g}, "
            f"hard={self.hard}, padding_mode={self.padding_mode!r}"
        )


def set_lps_temperature(model: nn.Module, tau: float) -> int:
    """Set the Gumbel-softmax temperature of every :class:`LPS2d` in ``model``; returns how many.

    Examples:
        >>> set_lps_temperature(nn.Sequential(LPS2d(4), LPS2d(4)), 0.5)
        2
    """
    tau = _check_tau(tau, "`set_lps_temperature`")
    count = 0
    for m in model.modules():
        if isinstance(m, LPS2d):
            m.tau = tau
            count += 1
    return count


def lps_temperature(epoch: int, epochs: int, start: float = 1.0, end: float = 0.1) -> float:
    """Exponential annealing from ``start`` (epoch 0) to ``end`` (the last epoch, ``epochs - 1``).

    ``tau(e) = start * (end / start) ** (e / (epochs - 1))``; one epoch keeps ``start``.

    Examples:
        >>> [round(lps_temperature(e, 3, 1.0, 0.25), 3) for e in range(3)]
        [1.0, 0.5, 0.25]
    """
    where = "`lps_temperature`"
    start, end = _check_tau(start, where), _check_tau(end, where)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"{where}: `epochs` must be a positive int, got {epochs!r}.")
    if epochs == 1:
        return start
    frac = min(max(epoch, 0), epochs - 1) / (epochs - 1)
    return start * (end / start) ** frac
