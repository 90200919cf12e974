"""Adaptive polyphase sampling (APS; Chaman & Dokmanic, "Truly shift-invariant convolutional neural
networks", CVPR 2021): keep, per sample, the polyphase component of largest norm.

A stride-``s`` subsampling keeps one of the ``s_h * s_w`` polyphase components ``x[:, :, a::s_h, b::s_w]``;
plain subsampling always keeps ``(0, 0)``. A circular shift of the input permutes the components (and
shifts them by at most one sample), so choosing the one of largest norm makes the choice move with the
input: with circular padding everywhere, a network of such layers gives the same output for every
circular shift of its input.

Deviations from the paper's code: any stride per axis (not only 2), any map size (odd sizes are padded
at the end to a multiple of the stride with ``padding_mode`` so all components have the same size; the
output is ``ceil(H / s_h) x ceil(W / s_w)`` like BlurPool's), and an optional binomial pre-blur
(``filter_size``; None or 1 means none) applied at stride 1 with ``padding_mode`` (with a pre-blur,
circularly shifted inputs give outputs equal to float round-off rather than bit for bit). Ties between norms
go to the lowest flat index (``torch.argmax``); with random data they do not occur, except where a
pre-blur makes the components equal in exact arithmetic (e.g. a 4-tap blur on a 2-pixel circular axis
gives every component the mean): round-off then picks one, and exact invariance is lost there.

Residual networks: the shortcut must keep the **same** phase as the main branch. An :class:`APS2d`
records its choice in its :attr:`APS2d.link` (:class:`~antialias.downsample.PhaseLink`), and a
:class:`PhaseFollow2d` built on that link applies it; :func:`antialias.convert` wires this up.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from antialias import filters as _filters
from antialias import functional as _F
from antialias.downsample import _common as _c
from antialias.filters import FilterSpec

__all__ = ["NORMS", "APS2d", "PhaseFollow2d", "aps_downsample2d", "aps_index2d", "polyphase_select2d"]

#: Norms APS can rank the components by.
NORMS = ("l2", "l1", "linf")


def _check_norm(norm: Any, where: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"{where}: `norm` must be one of {NORMS}, got {norm!r}.")


def _blur_rows(filter_size: FilterSpec | None, where: str) -> tuple[Tensor, Tensor] | None:
    """The pre-blur rows, or None for no blur (``None`` or a 1-tap filter)."""
    if filter_size is None:
        return None
    rows = _filters.filter_rows(filter_size, 2, where=where)
    if all(r.numel() == 1 for r in rows):
        return None
    return rows[0], rows[1]


def _norms(v: Tensor, norm: str) -> Tensor:
    """``v``: polyphase view ``(N, C, h, s_h, w, s_w)`` -> flat ``(N, s_h * s_w)`` norms (no gradient)."""
    with torch.no_grad():
        ordn = {"l2": 2.0, "l1": 1.0, "linf": float("inf")}[norm]
        # reduces over C, h, w in one pass, without a squared temporary
        out = torch.linalg.vector_norm(v, ord=ordn, dim=(1, 2, 4))  # (N, s_h, s_w)
    return out.flatten(1)


def _prepare(x: Tensor, stride: tuple[int, int], rows: tuple[Tensor, Tensor] | None, padding_mode: str) -> Tensor:
    if rows is not None:
        # the library's banded-GEMM blur: ~6x faster forward + backward than sums of shifted copies,
        # but its sums run in another order at the wrapped border, so circular shifts agree to round-off
        x = _F.blur2d(x, padding_mode=padding_mode, filter=rows)
    return _c.pad_to_multiple(x, stride, padding_mode)


def _select(x: Tensor, stride: tuple[int, int], norm: str) -> tuple[Tensor, Tensor]:
    """``x`` (padded to multiples): the chosen flat phase per sample, and the kept component."""
    index = _norms(_c.polyphase_view(x, stride), norm).argmax(dim=1)  # (N,)
    return index, _c.gather_phase(x, index, stride)


def aps_index2d(
    input: Tensor, stride: int | tuple[int, int] = 2, *, norm: str = "l2", padding_mode: str = "circular"
) -> Tensor:
    """The flat phase index ``a * s_w + b`` APS keeps for each sample (no pre-blur applied).

    Shape:
        ``(N, C, H, W) -> (N,)`` (int64).

    Examples:
        >>> x = torch.zeros(1, 1, 4, 4); x[0, 0, 1, 0] = 1.0
        >>> aps_index2d(x).tolist()  # the only non-zero sits in phase (1, 0)
        [2]
    """
    where = "`aps_index2d`"
    _c.check_input(input, where)
    s = _c.pair(stride, "stride", where)
    _check_norm(norm, where)
    _c.check_padding_mode(padding_mode, where)
    x = _c.pad_to_multiple(input, s, padding_mode)
    return _norms(_c.polyphase_view(x, s), norm).argmax(dim=1)


def aps_downsample2d(
    input: Tensor,
    stride: int | tuple[int, int] = 2,
    *,
    filter_size: FilterSpec | None = None,
    norm: str = "l2",
    padding_mode: str = "circular",
    return_index: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Adaptive polyphase sampling (Chaman & Dokmanic, CVPR 2021): per sample, the polyphase component
    of largest ``norm``, after an optional binomial pre-blur.

    Args:
        input: ``(N, C, H, W)`` floating point, any size, any memory format, any device.
        stride: ``s`` or ``(s_h, s_w)``, each >= 1.
        filter_size: Pre-blur (int taps or a name such as ``"tri3"``); None or 1: no blur (the paper's APS).
        norm: ``"l2"`` (the paper's default), ``"l1"`` or ``"linf"``.
        padding_mode: Padding of the blur and of odd sizes up to a multiple of the stride
            (``"circular"`` keeps exact circular-shift invariance).
        return_index: Also return the chosen flat phase ``a * s_w + b`` per sample.

    Shape:
        ``(N, C, H, W) -> (N, C, ceil(H / s_h), ceil(W / s_w))``.

    Returns:
        The kept component (and the index when asked). Gradients flow to the kept component only.

    Examples:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> aps_downsample2d(x)  # phase (1, 1) holds the largest values
        tensor([[[[ 5.,  7.],
                  [13., 15.]]]])
        >>> aps_downsample2d(torch.roll(x, (1, 1), (2, 3)))  # the same component, circularly shifted
        tensor([[[[15., 13.],
                  [ 7.,  5.]]]])
    """
    where = "`aps_downsample2d`"
    _c.check_input(input, where)
    s = _c.pair(stride, "stride", where)
    _check_norm(norm, where)
    _c.check_padding_mode(padding_mode, where)
    rows = _blur_rows(filter_size, where)
    fmt = _c.memory_format(input)
    index, out = _select(_prepare(input, s, rows, padding_mode), s, norm)
    out = out.contiguous(memory_format=fmt)
    return (out, index) if return_index else out


def polyphase_select2d(
    input: Tensor,
    index: Tensor,
    stride: int | tuple[int, int] = 2,
    *,
    padding_mode: str = "circular",
) -> Tensor:
    """Keep phase ``index[n]`` (flat, ``a * s_w + b``) of each sample: what a residual shortcut does
    with the index its main branch's APS chose.

    Shape:
        ``(N, C, H, W), (N,) -> (N, C, ceil(H / s_h), ceil(W / s_w))``.

    Examples:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> polyphase_select2d(x, torch.tensor([1]))  # phase (0, 1)
        tensor([[[[ 1.,  3.],
                  [ 9., 11.]]]])
    """
    where = "`polyphase_select2d`"
    _c.check_input(input, where)
    s = _c.pair(stride, "stride", where)
    _c.check_padding_mode(padding_mode, where)
    if not isinstance(index, Tensor) or index.shape != (input.shape[0],) or index.is_floating_point():
        raise ValueError(
            f"{where}: `index` must be an integer tensor of shape ({input.shape[0]},), got "
            f"{getattr(index, 'shape', index)!r}."
        )
    if bool((index < 0).any()) or bool((index >= s[0] * s[1]).any()):
        raise ValueError(f"{where}: `index` must lie in [0, {s[0] * s[1]}), got {index.tolist()!r}.")
    fmt = _c.memory_format(input)
    x = _c.pad_to_multiple(input, s, padding_mode)
    return _c.gather_phase(x, index.to(input.device), s).contiguous(memory_format=fmt)


class APS2d(nn.Module):
    """Adaptive polyphase sampling as a layer (see :func:`aps_downsample2d`); no parameters.

    Args:
        channels: Expected input channels (checked), or None.
        stride: ``s`` or ``(s_h, s_w)``.
        filter_size: Pre-blur; None or 1: none.
        norm: ``"l2"``, ``"l1"`` or ``"linf"``.
        padding_mode: Padding of the blur and of odd sizes.

    Attributes:
        link: The :class:`~antialias.downsample.PhaseLink` holding the phase of the last forward;
            pass it to :class:`PhaseFollow2d` or :class:`~antialias.downsample.PolyphaseUpsample2d`.

    Shape:
        ``(N, C, H, W) -> (N, C, ceil(H / s_h), ceil(W / s_w))``.

    Examples:
        >>> aps = APS2d(8, stride=2)
        >>> aps(torch.randn(2, 8, 7, 6)).shape, aps.link.index.shape
        (torch.Size([2, 8, 4, 3]), torch.Size([2]))
    """

    def __init__(
        self,
        channels: int | None = None,
        stride: int | tuple[int, int] = 2,
        filter_size: FilterSpec | None = None,
        norm: str = "l2",
        padding_mode: str = "circular",
        *,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        where = "`APS2d`"
        self.channels = channels
        self.stride = _c.pair(stride, "stride", where)
        _check_norm(norm, where)
        _c.check_padding_mode(padding_mode, where)
        self.filter_size = filter_size
        self.norm = norm
        self.padding_mode = padding_mode
        rows = _blur_rows(filter_size, where)
        self._blur = rows  # float64 rows on the CPU (no state_dict keys); moved to the input's device per call
        self.link = _c.PhaseLink(self.stride)

    def forward(self, x: Tensor) -> Tensor:
        _check_channels(x, self.channels, "`APS2d`")
        fmt = _c.memory_format(x)
        xp = _prepare(x, self.stride, self._blur, self.padding_mode)
        index, out = _select(xp, self.stride, self.norm)
        self.link.record(tuple(x.shape[-2:]), index, None)  # type: ignore[arg-type]
        return out.contiguous(memory_format=fmt)

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, stride={self.stride}, filter_size={self.filter_size!r}, norm={self.norm!r}, "
            f"padding_mode={self.padding_mode!r}"
        )


class PhaseFollow2d(nn.Module):
    """Keep the phase another polyphase layer chose in the same forward (a residual shortcut's sampler).

    It applies the optional pre-blur of its own, then takes the component the leader's
    :class:`~antialias.downsample.PhaseLink` names (or mixes them with the leader's weights while an
    :class:`~antialias.downsample.LPS2d` leader trains). Its input must have the leader's input size.

    Args:
        link: The leader's ``link``.
        filter_size: Pre-blur (usually the leader's).
        padding_mode: Padding of the blur and of odd sizes.

    Shape:
        ``(N, C, H, W) -> (N, C, ceil(H / s_h), ceil(W / s_w))``, ``s`` the leader's stride.

    Examples:
        >>> aps = APS2d(stride=2); short = PhaseFollow2d(aps.link)
        >>> x = torch.randn(2, 4, 8, 8)
        >>> y = aps(x)  # the leader runs first and records its phase
        >>> torch.equal(short(x), y)  # the same input: the same component
        True
    """

    def __init__(
        self,
        link: _c.PhaseLink,
        filter_size: FilterSpec | None = None,
        padding_mode: str = "circular",
        *,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        where = "`PhaseFollow2d`"
        if not isinstance(link, _c.PhaseLink):
            raise TypeError(f"{where}: `link` must be a PhaseLink (a leader's `.link`), got {type(link).__name__}.")
        _c.check_padding_mode(padding_mode, where)
        self.link = link
        self.stride = link.stride
        self.filter_size = filter_size
        self.padding_mode = padding_mode
        rows = _blur_rows(filter_size, where)
        self._blur = rows  # float64 rows on the CPU (no state_dict keys); moved to the input's device per call

    def forward(self, x: Tensor) -> Tensor:
        _c.check_input(x, "`PhaseFollow2d`")
        self.link.check("`PhaseFollow2d`", x.shape[0], tuple(x.shape[-2:]))  # type: ignore[arg-type]
        fmt = _c.memory_format(x)
        xp = _prepare(x, self.stride, self._blur, self.padding_mode)
        if self.link.weights is not None:
            out = _c.mix_phases(xp, self.link.weights, self.stride)
        else:
            out = _c.gather_phase(xp, self.link.index, self.stride)  # type: ignore[arg-type]
        return out.contiguous(memory_format=fmt)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, filter_size={self.filter_size!r}, padding_mode={self.padding_mode!r}"


def _check_channels(x: Tensor, channels: int | None, where: str) -> None:
    _c.check_input(x, where)
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{where}: expected {channels} channels, got input of shape {tuple(x.shape)}. "
            f"Build the layer with channels={x.shape[1]} or channels=None."
        )
