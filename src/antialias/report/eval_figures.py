"""Figures of evaluation results: feature-distance heatmaps, diagonal stability curves, and
accuracy against consistency. Pure functions: results in, a matplotlib Figure out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "accuracy_vs_consistency",
    "corruption_errors",
    "feature_distance_heatmaps",
    "perturbation_flips",
    "stability_curves",
]


def _figure(nrows: int, ncols: int, figsize: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    # No pyplot: no global state, safe in threads and without a display.
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def feature_distance_heatmaps(
    maps: Mapping[str, Sequence[Sequence[Sequence[float]]] | np.ndarray],
    layers: Mapping[str, Sequence[str]],
    *,
    distance: str = "cosine",
    kinds: Mapping[str, Sequence[str]] | None = None,
    columns: int = 10,
    step: int | None = None,
) -> Figure:
    """Heatmaps of every model's layers on one colour scale (the paper's figure).

    When the models have the same number of maps (a baseline and its anti-aliased version, layers
    paired by position), each row of a model's layers is followed by the same layers of the next
    model, so every layer's maps sit one above the other; otherwise each model gets its own rows.

    Args:
        maps: Model label -> array ``(L, Sh, Sw)`` of distances per layer and shift.
        layers: Model label -> the L layer names.
        distance: Name of the distance, for the colour-bar label.
        kinds: Model label -> what each layer is (e.g. "Conv2d", "dense max"), shown under its name.
        columns: Heatmaps per row before wrapping.
        step: The shift grid's spacing in pixels (stated in the title; None or 1: every shift).
    """
    arrays = {label: np.asarray(m, dtype=float) for label, m in maps.items()}
    vmax = max((float(a.max()) for a in arrays.values() if a.size), default=1.0) or 1.0
    ncols = min(columns, max(len(a) for a in arrays.values()))
    paired = len({len(a) for a in arrays.values()}) == 1
    # (model, first layer) of every row of axes
    if paired:
        chunks = range(0, len(next(iter(arrays.values()))), ncols)
        rows = [(label, start) for start in chunks for label in arrays]
    else:
        rows = [(label, start) for label, a in arrays.items() for start in range(0, len(a), ncols)]
    fig, axes = _figure(len(rows), ncols, (1.9 * ncols + 1.4, 2.25 * len(rows) + 0.8))
    image = None
    for row, (label, start) in enumerate(rows):
        array, names = arrays[label], layers[label]
        for col in range(ncols):
            i = start + col
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if i >= len(array):
                ax.axis("off")
                continue
            image = ax.imshow(array[i], cmap="viridis", vmin=0.0, vmax=vmax)
            kind = f" {kinds[label][i]}" if kinds is not None else ""
            ax.set_title(f"{names[i]}\n{kind.strip()} {array[i].mean():.3f}".strip(), fontsize=9)
            if col == 0:
                ax.set_ylabel(label, fontsize=11)
    if image is not None:
        cbar = fig.colorbar(image, ax=axes, fraction=0.02, pad=0.01)
        cbar.set_label(f"{distance} distance: Shift(F(x)) vs F(Shift(x))", fontsize=11)
    grid = "one pixel per circular shift (dh, dw)" if step in (None, 1) else \
        f"one pixel per circular shift (dh, dw) in steps of {step} px"
    fig.suptitle(
        f"Internal shift-equivariance: {grid}, dark = equivariant; titles: layer, kind, mean distance",
        fontsize=13,
    )
    return fig


def stability_curves(curves: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """Probability of the correct class and accuracy against diagonal shift, one line per model.

    Args:
        curves: Model label -> ``{"shifts": [...], "mean_prob_correct": [...], "accuracy": [...]}``.
    """
    fig, axes = _figure(1, 2, (10, 3.8))
    left, right = axes[0]
    for label, c in curves.items():
        left.plot(c["shifts"], c["mean_prob_correct"], marker=".", label=label)
        right.plot(c["shifts"], np.asarray(c["accuracy"]) * 100, marker=".", label=label)
    left.set(xlabel="diagonal shift d (pixels)", ylabel="P(correct class), mean over images",
             title="Probability of the correct class")
    right.set(xlabel="diagonal shift d (pixels)", ylabel="accuracy (%)", title="Accuracy")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def learning_curves(curves: Mapping[str, Sequence[Sequence[Mapping[str, float]]]]) -> Figure:
    """Training loss and test accuracy per epoch: one colour per configuration, one line per training.

    Args:
        curves: Configuration label -> per training, its epochs' records (``epoch``, ``loss``,
            ``train_acc``, ``val_acc``), as in a run's ``metrics.jsonl``.
    """
    fig, axes = _figure(1, 2, (11, 4.0))
    left, right = axes[0]
    for colour, (label, trainings) in enumerate(curves.items()):
        for k, records in enumerate(trainings):
            epochs = [r["epoch"] for r in records]
            style = {"color": f"C{colour % 10}", "marker": ".", "alpha": 0.9 if k == 0 else 0.45,
                     "label": label if k == 0 else None}
            left.plot(epochs, [r["loss"] for r in records], **style)
            scored = [r for r in records if r.get("val_acc") is not None]
            right.plot([r["epoch"] for r in scored], [100 * r["val_acc"] for r in scored], **style)
    left.set(xlabel="epoch", ylabel="training loss (mean over the epoch)", title="Training loss")
    right.set(xlabel="epoch", ylabel="test accuracy (%)", title="Accuracy on the scored test images")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle("Learning curves (faint lines: further trainings of the same configuration)", fontsize=11)
    fig.tight_layout()
    return fig


def accuracy_vs_consistency(points: Mapping[str, Mapping[str, Mapping[str, float]]], *, title: str = "") -> Figure:
    """The paper's headline plot: accuracy (x) against consistency (y) with 95% intervals.

    Args:
        points: Label -> ``{"accuracy": {"value", "low", "high"}, "consistency": {...}}`` (fractions).
    """
    fig, axes = _figure(1, 1, (5.5, 4.5))
    ax = axes[0, 0]
    for label, p in points.items():
        acc, cons = p["accuracy"], p["consistency"]
        x, y = 100 * acc["value"], 100 * cons["value"]
        ax.errorbar(
            x, y,
            xerr=[[x - 100 * acc["low"]], [100 * acc["high"] - x]],
            yerr=[[y - 100 * cons["low"]], [100 * cons["high"] - y]],
            fmt="o", capsize=3, label=label,
        )
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set(xlabel="accuracy (%)", ylabel="consistency (%)", title=title or "Accuracy vs. shift consistency (95% CI)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def corruption_errors(result: Mapping) -> Figure:
    """Error per corruption and severity (heatmap, percent) from a corruption result's ``to_dict()``."""
    names = list(result["corruptions"])
    severities = [str(s) for s in result["severities"]]
    grid = np.array([[100 * result["errors"][c][s]["value"] for s in severities] for c in names])
    fig, axes = _figure(1, 1, (1.0 * len(severities) + 4.0, 0.36 * len(names) + 1.6))
    ax = axes[0, 0]
    image = ax.imshow(grid, cmap="magma_r", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(severities)), severities)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("severity")
    for i in range(len(names)):
        for j in range(len(severities)):
            ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if grid[i, j] > 55 else "black")
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02).set_label("top-1 error (%)")
    clean = result.get("clean_error")
    mce = result.get("unnormalised_mce")
    bits = [
        f"clean {100 * clean['value']:.1f}%" if clean else "",
        f"unnormalised mCE {mce['value']:.1f}" if mce else "",
    ]
    ax.set_title(
        "Error under corruptions" + (f" ({', '.join(b for b in bits if b)})" if any(bits) else ""), fontsize=10
    )
    fig.tight_layout()
    return fig


def perturbation_flips(result: Mapping) -> Figure:
    """Flip probability per perturbation (bars with intervals, percent) from a perturbation result's ``to_dict()``."""
    names = list(result["perturbations"])
    fp = [result["flip_probability"][n] for n in names]
    values = np.array([100 * f["value"] for f in fp])
    err = np.array([[100 * (f["value"] - f["low"]) for f in fp], [100 * (f["high"] - f["value"]) for f in fp]])
    fig, axes = _figure(1, 1, (0.7 * len(names) + 3.0, 4.0))
    ax = axes[0, 0]
    ax.bar(range(len(names)), values, yerr=err, capsize=3, color="#4c72b0")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("flip probability (%)")
    mfr = result.get("unnormalised_mfr")
    ax.set_title("Top-1 flips between consecutive frames" + (f" (unnormalised mFR {mfr['value']:.2f})" if mfr else ""),
                 fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
