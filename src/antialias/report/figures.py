"""Figures that explain anti-aliased downsampling: data in, matplotlib figures and PNG files out.

Three figures, after Zhang, *Making Convolutional Networks Shift-Invariant Again* (ICML 2019):

- :func:`toy_example_figure`: the paper's 1-D example (its Figure 4). Max-pooling
  ``[0,0,1,1,0,0,1,1]`` and its one-pixel circular shift gives ``[0,1,0,1]`` and ``[1,1,1,1]``;
  the anti-aliased version (dense max, blur, subsample) keeps the two outputs close.
- :func:`downsampling_figure`: naive strided max-pooling against MaxBlurPool applied 1, 2 and 3
  times (1/2, 1/4, 1/8 scale) to a synthetic zone plate (:func:`zone_plate`) and a photo
  (:func:`load_photo`).
- :func:`frequency_response_figure`: magnitude responses of the paper's filters (rect2, tri3,
  tri4, bin5) with the Nyquist frequency of the subsampled grid marked.
- :func:`stride_filter_figure`: the stride-aware filters ``convert`` uses by default (box(s) convolved
  three times at stride s, :func:`antialias.convert.stride_filter`) against tri4, per stride.

Every figure is a :class:`matplotlib.figure.Figure` drawn with the Agg canvas (no pyplot, no global
state, no display needed). :func:`save_png` writes one atomically; :func:`write_figures` writes them
all into a folder, refusing to replace any file there that it did not write itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skimage.data  # imported here: it is slow to import and only this figure needs it
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, UnidentifiedImageError

from antialias import filters as _filters
from antialias import functional as _AF
from antialias._io import atomic_open
from antialias._version import __version__
from antialias.convert import stride_filter as _stride_filter
from antialias.filters import FilterSpec

__all__ = [
    "FIGURE_FILES",
    "PAPER_FILTERS",
    "PHOTOS",
    "ToyExample",
    "downsampling_figure",
    "downsampling_pyramid",
    "frequency_response",
    "frequency_response_figure",
    "is_own_png",
    "load_photo",
    "save_png",
    "stride_filter_figure",
    "toy_example",
    "toy_example_figure",
    "write_figures",
    "zone_plate",
]

#: The paper's filters, in the order they are drawn.
PAPER_FILTERS: tuple[str, ...] = ("rect2", "tri3", "tri4", "bin5")

#: The 1-D signal of the paper's Figure 4.
TOY_SIGNAL: tuple[float, ...] = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0)

#: Photos bundled with scikit-image that load offline, and the 256x256 crop shown of each
#: (row, column of the top-left corner), chosen for fine detail.
PHOTOS: dict[str, tuple[int, int]] = {"astronaut": (0, 128), "camera": (64, 160)}

#: The files :func:`write_figures` writes, by figure.
FIGURE_FILES: dict[str, str] = {
    "toy_example": "toy_example.png",
    "zone_plate": "downsampling_zone_plate.png",
    "photo": "downsampling_photo.png",
    "frequency_response": "filter_frequency_response.png",
    "stride_filters": "filter_stride_aware.png",
}

# PNG text chunk that marks a file as ours, so a re-run may replace it and nothing else.
_MARK_KEY = "Software"
_MARK_PREFIX = "antialias figures"

_X_COLOR, _SHIFT_COLOR = "#1f77b4", "#ff7f0e"


def _canvas(fig: Figure) -> Figure:
    FigureCanvasAgg(fig)  # attaches itself to fig; Agg renders PNG without a display
    return fig


# --------------------------------------------------------------------------- (a) the 1-D toy example


@dataclass(frozen=True)
class ToyExample:
    """Every stage of the paper's 1-D example, for the signal (row 0) and its shift (row 1).

    Attributes:
        signal: ``(2, 8)`` input ``x`` and ``x`` circularly shifted right by ``shift``.
        max_pool: ``(2, 4)`` naive ``F.max_pool1d(kernel_size=2, stride=2)``.
        dense_max: ``(2, 8)`` max over windows of 2 at stride 1, wrapping around (circular).
        blurred: ``(2, 8)`` ``dense_max`` blurred at stride 1 (circular padding).
        max_blur_pool: ``(2, 4)`` ``max_blur_pool1d(kernel_size=2, stride=2)``: ``blurred[:, ::2]``.
        filter_size: The blur filter used.
        shift: The circular shift in samples.
    """

    signal: np.ndarray
    max_pool: np.ndarray
    dense_max: np.ndarray
    blurred: np.ndarray
    max_blur_pool: np.ndarray
    filter_size: FilterSpec
    shift: int


def toy_example(filter_size: FilterSpec = "tri3", shift: int = 1) -> ToyExample:
    """Compute the paper's Figure 4 with :mod:`antialias.functional` (circular padding throughout).

    Args:
        filter_size: Blur filter; the paper's figure uses ``"tri3"`` ([1, 2, 1] / 4).
        shift: Circular shift of the second signal, in samples.

    Returns:
        A :class:`ToyExample` of float64 arrays.

    Examples:
        >>> t = toy_example()
        >>> t.max_pool.tolist()
        [[0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]]
        >>> t.max_blur_pool.tolist()
        [[0.5, 1.0, 0.5, 1.0], [0.75, 0.75, 0.75, 0.75]]
    """
    x = torch.tensor(TOY_SIGNAL, dtype=torch.float64)
    batch = torch.stack([x, torch.roll(x, shift)]).unsqueeze(1)  # (2, 1, 8)
    max_pool = F.max_pool1d(batch, kernel_size=2, stride=2)  # (2, 1, 4)
    # filter_size=1 at stride 1 is the dense max alone.
    dense = _AF.max_blur_pool1d(batch, 2, stride=1, filter_size=1, padding_mode="circular")  # (2, 1, 8)
    blurred = _AF.blur1d(dense, filter_size, padding_mode="circular")  # (2, 1, 8)
    pooled = _AF.max_blur_pool1d(batch, 2, filter_size=filter_size, padding_mode="circular")  # (2, 1, 4)

    def arr(t: torch.Tensor) -> np.ndarray:
        return t.squeeze(1).numpy()

    return ToyExample(arr(batch), arr(max_pool), arr(dense), arr(blurred), arr(pooled), filter_size, shift)


def _bars(ax: Axes, positions: np.ndarray, pair: np.ndarray, width: float, labels: bool = True) -> None:
    for offset, values, color, hatch in (
        (-width / 2, pair[0], _X_COLOR, None),
        (width / 2, pair[1], _SHIFT_COLOR, "//"),
    ):
        bars = ax.bar(
            positions + offset, values, width=width, color=color, edgecolor="black", linewidth=0.6, hatch=hatch
        )
        if labels:
            ax.bar_label(bars, labels=[f"{v:g}" for v in values], fontsize=8, padding=1)


def toy_example_figure(data: ToyExample | None = None) -> Figure:
    """Draw the 1-D toy example: naive max-pooling disagrees on a 1-px shift, MaxBlurPool agrees.

    Args:
        data: From :func:`toy_example`; computed with its defaults when None.

    Returns:
        A figure with one panel per stage, the signal and its shift side by side in each.

    Examples:
        >>> fig = toy_example_figure()
        >>> len(fig.axes)
        5
    """
    data = toy_example() if data is None else data
    n = data.signal.shape[1]
    full = np.arange(n)
    kept = np.arange(0, n, 2)  # the subsampled outputs sit at their input positions
    name = data.filter_size if isinstance(data.filter_size, str) else f"{data.filter_size} taps"
    row = _filters.filter_row(data.filter_size)
    taps = f"[{', '.join(f'{v:g}' for v in (row / row.min()).tolist())}]/{round(1 / row.min().item()):d}"

    fig = _canvas(Figure(figsize=(9, 11), dpi=100, layout="constrained"))
    axes = fig.subplots(5, 1, sharex=True)
    stages = [
        (data.signal, full, f"Input x = {list(map(int, TOY_SIGNAL))} and x circularly shifted by {data.shift} px"),
        (data.max_pool, kept, "Naive MaxPool1d(kernel_size=2, stride=2)"),
        (data.dense_max, full, "Anti-aliased, step 1: dense max (kernel_size=2, stride=1)"),
        (data.blurred, full, f"Step 2: blur with {name} {taps} (stride 1)"),
        (
            data.max_blur_pool,
            kept,
            "Step 3: subsample by 2  =  MaxBlurPool1d(2, filter_size=" + repr(data.filter_size) + ")",
        ),
    ]
    for ax, (values, positions, title) in zip(axes, stages, strict=True):
        _bars(ax, positions, values, width=0.38)
        ax.set_title(title, loc="left", fontsize=11)
        ax.set_ylim(0, 1.4)
        ax.set_yticks([0, 0.5, 1])
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    for ax, values in ((axes[1], data.max_pool), (axes[4], data.max_blur_pool)):
        diff = float(np.abs(values[0] - values[1]).max())
        verdict = "outputs disagree" if diff >= 0.5 else "outputs stay close"
        ax.text(
            0.995, 0.96, f"max |difference| = {diff:g}: {verdict}", transform=ax.transAxes, ha="right", va="top",
            fontsize=10, fontweight="bold", color="#b00000" if diff >= 0.5 else "#006400",
            bbox={"facecolor": "white", "edgecolor": "0.7", "boxstyle": "round,pad=0.3"},
        )
    axes[-1].set_xticks(full)
    axes[-1].set_xlim(-0.6, n - 0.4)
    axes[-1].set_xlabel("position (input samples; stride-2 outputs drawn at the sample they keep)")
    handles = [
        axes[0].patches[0],
        axes[0].patches[n],
    ]
    fig.legend(
        handles, ["x", f"x circularly shifted by {data.shift}"], loc="outside lower center", ncols=2, fontsize=11
    )
    fig.suptitle(
        "Max-pooling is not shift-equivariant; blurring before subsampling keeps the two outputs close\n"
        "(the 1-D example of Zhang, ICML 2019, Fig. 4; circular boundary)",
        fontsize=12,
    )
    return fig


# --------------------------------------------------------------------------- (b) images at 1/2, 1/4, 1/8


def zone_plate(size: int = 256) -> np.ndarray:
    """A circular zone plate (chirp): ``0.5 + 0.5 cos(pi r^2 / (2 r_max))``.

    Its local frequency grows linearly with the radius, from 0 at the centre to 0.5 cycles/pixel
    (the Nyquist frequency) at the corners, so every frequency is present and any aliasing of a
    downsampler shows up as false rings (moire).

    Args:
        size: Height and width in pixels, at least 8.

    Returns:
        A float64 array of shape ``(size, size)`` with values in [0, 1].

    Examples:
        >>> z = zone_plate(64)
        >>> z.shape, float(z.min()) >= 0.0, float(z.max()) <= 1.0
        ((64, 64), True, True)
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"`zone_plate`: `size` must be an int >= 8, got {size!r}.")
    coords = np.arange(size) - (size - 1) / 2
    r2 = coords[:, None] ** 2 + coords[None, :] ** 2
    r_max = np.sqrt(2) * (size - 1) / 2
    # phase pi r^2 / (2 r_max) has local frequency r / (2 r_max) cycles/px: 0.5 at r = r_max.
    return 0.5 + 0.5 * np.cos(np.pi * r2 / (2 * r_max))


def load_photo(name: str = "astronaut") -> np.ndarray:
    """A 256x256 crop of a photo bundled with scikit-image (works offline).

    Args:
        name: One of :data:`PHOTOS` (``"astronaut"``, colour; ``"camera"``, grey).

    Returns:
        A float64 array in [0, 1], ``(256, 256, 3)`` for colour or ``(256, 256)`` for grey.

    Raises:
        ValueError: unknown name.
    """
    if name not in PHOTOS:
        raise ValueError(f"`load_photo`: `name` must be one of {sorted(PHOTOS)}, got {name!r}.")

    image = getattr(skimage.data, name)()
    top, left = PHOTOS[name]
    return image[top : top + 256, left : left + 256].astype(np.float64) / 255.0


def downsampling_pyramid(
    image: np.ndarray, levels: int = 3, filter_size: FilterSpec = 4
) -> dict[str, list[np.ndarray]]:
    """Apply naive ``max_pool2d(2)`` and ``max_blur_pool2d(2)`` repeatedly.

    Args:
        image: ``(H, W)`` grey or ``(H, W, C)`` colour array.
        levels: How many times to halve (3 gives 1/2, 1/4 and 1/8 scale).
        filter_size: Blur filter of the MaxBlurPool (reflect padding, the library's default).

    Returns:
        ``{"max_pool": [...], "max_blur_pool": [...]}``, each a list of ``levels`` arrays with the
        layout of ``image``, halved in size at each step.

    Examples:
        >>> out = downsampling_pyramid(np.zeros((16, 16)), levels=2)
        >>> [a.shape for a in out["max_blur_pool"]]
        [(8, 8), (4, 4)]
    """
    grey = image.ndim == 2
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float64))
    x = x[None, None] if grey else x.permute(2, 0, 1)[None]  # (1, C, H, W)
    out: dict[str, list[np.ndarray]] = {"max_pool": [], "max_blur_pool": []}
    naive, anti = x, x
    for _ in range(levels):
        naive = F.max_pool2d(naive, 2)  # (1, C, H/2, W/2)
        anti = _AF.max_blur_pool2d(anti, 2, filter_size=filter_size)  # (1, C, H/2, W/2)
        for key, t in (("max_pool", naive), ("max_blur_pool", anti)):
            arr = t[0, 0] if grey else t[0].permute(1, 2, 0)
            out[key].append(arr.numpy().copy())
    return out


def downsampling_figure(
    image: np.ndarray, title: str, levels: int = 3, filter_size: FilterSpec = 4
) -> Figure:
    """Draw ``image`` and its 1/2 ... 1/2**levels versions, naive max-pool above, MaxBlurPool below.

    Every panel has the same size on the page and shows its pixels unsmoothed (nearest
    neighbour), so aliasing looks as it is in the array.

    Args:
        image: ``(H, W)`` grey or ``(H, W, 3)`` colour array with values in [0, 1].
        title: What the image is, for the figure's title.
        levels: Number of halvings.
        filter_size: Blur filter of the MaxBlurPool.

    Returns:
        A figure with 2 rows and ``levels + 1`` columns.

    Examples:
        >>> fig = downsampling_figure(zone_plate(32), "zone plate", levels=2)
        >>> len(fig.axes)
        6
    """
    pyramid = downsampling_pyramid(image, levels, filter_size)
    height, width = image.shape[:2]
    cols = levels + 1
    # Exact pixel layout (no automatic layout): each panel is an integer multiple of every image it
    # shows, so nearest-neighbour display repeats pixels evenly and adds no moire of its own.
    dpi = 100
    zoom = max(1, round(256 / max(height, width)))
    pw, ph = width * zoom, height * zoom  # panel size in screen pixels
    left, right, gap, top, mid, bottom, title_h = 80, 12, 14, 48, 34, 10, 22
    fig_w = left + cols * pw + (cols - 1) * gap + right
    fig_h = top + 2 * (title_h + ph) + mid + bottom
    fig = _canvas(Figure(figsize=(fig_w / dpi, fig_h / dpi), dpi=dpi))
    rows = (
        ("max_pool", "Naive\nMaxPool2d(2)"),
        ("max_blur_pool", f"MaxBlurPool2d(2)\nfilter {_filter_label(filter_size)}"),
    )
    for r, (key, label) in enumerate(rows):
        y0 = fig_h - top - title_h - ph - r * (title_h + ph + mid)  # bottom edge, from the figure's bottom
        panels = [(np.clip(image, 0, 1), f"input {height}×{width}")]  # (array, panel title)  # noqa: RUF001 (the multiplication sign is meant)
        for c, arr in enumerate(pyramid[key], start=1):
            times = "once" if c == 1 else ("twice" if c == 2 else f"{c} times")
            panels.append((np.clip(arr, 0, 1), f"1/{2 ** c} scale ({arr.shape[0]}×{arr.shape[1]}), applied {times}"))  # noqa: RUF001
        for c, (arr, heading) in enumerate(panels):
            x0 = left + c * (pw + gap)
            ax = fig.add_axes((x0 / fig_w, y0 / fig_h, pw / fig_w, ph / fig_h))
            ax.imshow(arr, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_title(heading, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=12, fontweight="bold")
    fig.suptitle(
        f"{title}: naive strided max-pooling (top) aliases; MaxBlurPool (bottom) blurs before subsampling",
        fontsize=12, y=1 - 12 / fig_h, va="top",
    )
    return fig


def _filter_label(spec: FilterSpec) -> str:
    names = {size: name for name, size in _filters.FILTER_NAMES.items()}
    if isinstance(spec, int) and not isinstance(spec, bool):
        return names.get(spec, f"binomial {spec}")
    return str(spec)


# --------------------------------------------------------------------------- (c) frequency responses


def frequency_response(filter_size: FilterSpec, num: int = 513) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude of the DTFT of a blur filter, ``|sum_n h[n] exp(-2 pi i f n)|`` for f in [0, 0.5].

    Args:
        filter_size: Any filter :func:`antialias.filters.filter_row` accepts.
        num: Number of frequencies, evenly spaced from 0 to 0.5 cycles/sample inclusive.

    Returns:
        ``(frequencies, magnitudes)``, float64 arrays of length ``num``. The filters sum to 1, so
        the magnitude is 1 at f = 0.

    Examples:
        >>> f, h = frequency_response("rect2", num=3)
        >>> f.tolist(), np.round(h, 4).tolist()
        ([0.0, 0.25, 0.5], [1.0, 0.7071, 0.0])
    """
    row = _filters.filter_row(filter_size, where="frequency_response").numpy()
    freqs = np.linspace(0.0, 0.5, num)
    phases = np.exp(-2j * np.pi * freqs[:, None] * np.arange(row.size)[None, :])  # (num, k)
    return freqs, np.abs(phases @ row)


def frequency_response_figure(filters: Sequence[FilterSpec] = PAPER_FILTERS, stride: int = 2) -> Figure:
    """Draw the magnitude responses of ``filters``, linear and in dB, with the subsampled Nyquist marked.

    After subsampling by ``stride``, frequencies above ``0.5 / stride`` cycles per input sample fold
    back (alias); a good anti-aliasing filter passes little there.

    Args:
        filters: Filters to draw (names, sizes or custom rows).
        stride: Subsampling factor whose Nyquist frequency is marked.

    Returns:
        A figure with two panels.

    Examples:
        >>> len(frequency_response_figure().axes)
        2
    """
    nyquist = 0.5 / stride
    fig = _canvas(Figure(figsize=(12, 5.8), dpi=100, layout="constrained"))
    lin, db = fig.subplots(1, 2)
    styles = ["-", "--", "-.", ":"]
    for i, spec in enumerate(filters):
        freqs, mag = frequency_response(spec)
        taps = _filters.filter_row(spec)
        at_nyquist = float(np.interp(nyquist, freqs, mag))
        shown = ", ".join(f"{v:g}" for v in (taps / taps.min()).tolist())
        label = f"{_filter_label(spec)} [{shown}]: |H({nyquist:g})| = {at_nyquist:.2f}"
        kw = {"linestyle": styles[i % len(styles)], "linewidth": 2.2, "label": label}
        lin.plot(freqs, mag, **kw)
        db.plot(freqs, 20 * np.log10(np.maximum(mag, 1e-5)), **kw)
    for ax in (lin, db):
        ax.axvspan(nyquist, 0.5, color="0.5", alpha=0.12)
        ax.axvline(nyquist, color="black", linewidth=1.5, linestyle="--")
        ax.set_xlim(0, 0.5)
        ax.set_xlabel("normalised frequency (cycles per input sample; 0.5 = Nyquist of the input)", fontsize=10)
        ax.grid(alpha=0.3)
    lin.set_ylim(0, 1.05)
    lin.set_ylabel("|H(f)|", fontsize=11)
    lin.set_title("Magnitude response (linear)", fontsize=12)
    lin.text(
        nyquist + 0.005, 1.0, f"Nyquist after stride {stride}\n(f = {nyquist:g}); above it\nfrequencies alias",
        color="black", fontsize=9.5, va="top",
    )
    fig.legend(
        *lin.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=10.5,
        title=f"filter [taps]: gain |H| at the subsampled Nyquist frequency {nyquist:g}",
    )
    db.set_ylim(-60, 3)
    db.set_ylabel("20 log10 |H(f)|  (dB)", fontsize=11)
    db.set_title("Magnitude response (dB)", fontsize=12)
    fig.suptitle("Blur filters of Zhang (ICML 2019): binomial rows attenuate what would alias", fontsize=13)
    return fig


def stride_filter_figure(strides: Sequence[int] = (2, 4, 8, 16)) -> Figure:
    """Draw the stride-aware filters of ``convert`` (``filter_size="auto"``) and tri4 at each stride.

    Subsampling by ``s`` aliases everything above ``0.5 / s`` cycles per input sample. The default
    filter at stride ``s`` is box(s) convolved three times (``3s - 2`` taps, tri4 at ``s = 2``;
    :func:`antialias.convert.stride_filter`): its cut-off moves down with ``0.5 / s``, where the fixed
    4-tap tri4 would pass most of what aliases at ``s = 4`` or ``16``. Left: the responses against the
    input's frequency, each stride's Nyquist marked. Right: the same in dB against ``f * s`` (1 = the
    first alias centre), where the stride-aware curves nearly coincide and tri4 does not.

    Args:
        strides: Strides to draw (each >= 2).

    Returns:
        A figure with two panels.

    Examples:
        >>> len(stride_filter_figure((2, 4)).axes)
        2
    """
    fig = _canvas(Figure(figsize=(12, 5.8), dpi=100, layout="constrained"))
    lin, db = fig.subplots(1, 2)
    colors = [f"C{i}" for i in range(10)]
    for i, s in enumerate(strides):
        row = _stride_filter(int(s))
        freqs, mag = frequency_response(row, num=2049)
        nyquist = 0.5 / s
        at = float(np.interp(nyquist, freqs, mag))
        color = colors[i % len(colors)]
        label = f"stride {s}: {row.numel()} taps, |H({nyquist:g})| = {at:.2f}"
        lin.plot(freqs, mag, color=color, linewidth=2.2, label=label)
        lin.axvline(nyquist, color=color, linewidth=1.0, linestyle="--")
        db.plot(freqs * s, 20 * np.log10(np.maximum(mag, 1e-5)), color=color, linewidth=2.2)
        if s > 2:
            _, tri = frequency_response("tri4", num=2049)
            at_tri = float(np.interp(nyquist, freqs, tri))
            db.plot(freqs * s, 20 * np.log10(np.maximum(tri, 1e-5)), color=color, linewidth=1.2, linestyle=":",
                    label=f"tri4 at stride {s}: |H({nyquist:g})| = {at_tri:.2f}")
    lin.set_xlim(0, 0.5)
    lin.set_ylim(0, 1.05)
    lin.set_xlabel("normalised frequency (cycles per input sample); dashed: Nyquist after each stride", fontsize=10)
    lin.set_ylabel("|H(f)|", fontsize=11)
    lin.set_title("Default filter per stride (linear)", fontsize=12)
    db.set_xlim(0, 2.0)
    db.set_ylim(-60, 3)
    db.axvspan(0.5, 2.0, color="0.5", alpha=0.12)
    db.axvline(0.5, color="black", linewidth=1.5, linestyle="--")
    db.set_xlabel("f * stride (0.5 = Nyquist after subsampling; 1 = first alias centre)", fontsize=10)
    db.set_ylabel("20 log10 |H(f)|  (dB)", fontsize=11)
    db.set_title("Against each stride's own frequency scale (dB); dotted: tri4", fontsize=12)
    for ax in (lin, db):
        ax.grid(alpha=0.3)
    handles = [*lin.get_legend_handles_labels()[0], *db.get_legend_handles_labels()[0]]
    labels = [*lin.get_legend_handles_labels()[1], *db.get_legend_handles_labels()[1]]
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=10)
    fig.suptitle("convert's stride-aware blur: box(s) convolved three times (3s-2 taps) cuts near the new Nyquist",
                 fontsize=13)
    return fig


# --------------------------------------------------------------------------- writing PNGs


def is_own_png(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file that :func:`save_png` wrote (a PNG carrying our mark).

    Examples:
        >>> is_own_png("/nonexistent/figure.png")
        False
    """
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return False

    try:
        with Image.open(path) as img:
            return img.format == "PNG" and str(img.info.get(_MARK_KEY, "")).startswith(_MARK_PREFIX)
    except (UnidentifiedImageError, OSError):
        return False


def save_png(fig: Figure, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically, marked as ours.

    The PNG is written to a temporary file in the same folder and moved into place with
    :func:`os.replace`, so a reader never sees a half-written file and a crash leaves the old file
    intact. An existing file is replaced only if :func:`is_own_png` says we wrote it, or with
    ``overwrite=True``.

    Args:
        fig: The figure.
        path: Destination; its folder must exist.
        overwrite: Replace an existing file even if it is not ours.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        FileExistsError: ``path`` exists and is not a PNG this function wrote (and not ``overwrite``).
        IsADirectoryError: ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise IsADirectoryError(f"`save_png`: `path` must be a file path, got the folder {str(path)!r}.")
    if os.path.lexists(path) and not overwrite and not is_own_png(path):
        raise FileExistsError(
            f"`save_png`: refusing to replace {str(path)!r}: it was not written by `antialias figures`. "
            "Move it away, choose another output folder, or pass overwrite=True (--force)."
        )
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", metadata={_MARK_KEY: f"{_MARK_PREFIX} (antialias {__version__})"})
    return path


def write_figures(
    out_dir: str | os.PathLike,
    *,
    filter_size: FilterSpec = 4,
    photo: str = "astronaut",
    overwrite: bool = False,
    on_write: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Render every figure into ``out_dir`` (created if missing) as the files of :data:`FIGURE_FILES`.

    All destinations are checked before anything is written: if one of them exists and was not
    written by this function (and ``overwrite`` is False), nothing is written. Other files in
    ``out_dir`` are never touched.

    Args:
        out_dir: Output folder.
        filter_size: Blur filter of the MaxBlurPool in the image figures (the toy example uses the
            paper's ``"tri3"``; the frequency responses show all of :data:`PAPER_FILTERS`).
        photo: Which photo of :data:`PHOTOS` to use.
        overwrite: Replace existing files even if they are not ours.
        on_write: Called with each path as soon as it is written.

    Returns:
        The paths written, in the order of :data:`FIGURE_FILES`.

    Raises:
        FileExistsError: a destination exists and is not ours; or ``out_dir`` is a file.
        ValueError: unknown ``photo`` or ``filter_size``.
    """
    if photo not in PHOTOS:
        raise ValueError(f"`write_figures`: `photo` must be one of {sorted(PHOTOS)}, got {photo!r}.")
    _filters.filter_row(filter_size, where="`write_figures`")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"`write_figures`: `out_dir` must be a folder, got the file {str(out)!r}.")
    targets = {key: out / name for key, name in FIGURE_FILES.items()}
    if not overwrite:
        foreign = [str(p) for p in targets.values() if os.path.lexists(p) and not is_own_png(p)]
        if foreign:
            raise FileExistsError(
                f"`write_figures`: refusing to replace {', '.join(foreign)}: not written by `antialias figures`. "
                "Move them away, choose another output folder, or pass overwrite=True (--force)."
            )
    out.mkdir(parents=True, exist_ok=True)
    makers: dict[str, Callable[[], Figure]] = {
        "toy_example": toy_example_figure,
        "zone_plate": lambda: downsampling_figure(zone_plate(256), "Zone plate (chirp)", filter_size=filter_size),
        "photo": lambda: downsampling_figure(
            load_photo(photo), f"Photo (scikit-image '{photo}')", filter_size=filter_size
        ),
        "frequency_response": frequency_response_figure,
        "stride_filters": stride_filter_figure,
    }
    written = []
    for key, make in makers.items():
        fig = make()
        written.append(save_png(fig, targets[key], overwrite=overwrite))
        if on_write is not None:
            on_write(written[-1])
    return written
