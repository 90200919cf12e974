"""Readers of the released perturbation sets: CIFAR-10-P ``.npy`` files and ImageNet-P videos.

- CIFAR-10-P: ``<root>/<perturbation>.npy``, ``(n, T, H, W, 3)`` uint8 sequences (no labels: the
  flip probability needs none).
- ImageNet-P: ``<root>/<perturbation>/<wnid>/<image>.mp4``, one H.264 video per validation image
  (224x224 frames, 31 of them, 41 for translate); the noise difficulties are their own folders
  (``gaussian_noise_2``, ...). Decoding needs PyAV, an optional dependency:
  ``pip install "antialias[video]"``.

Names are ImageNet-P's test and validation perturbations and the noise difficulty files:
:data:`~antialias.eval._names.KNOWN_PERTURBATIONS`. :func:`inspect_perturbation_data` recognises
either layout in a folder the user names (``antialias eval perturbation --perturbation-data DIR``)
and checks it before any work.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from antialias.eval._data_files import recognise_layout
from antialias.eval._fields import check_data_shape, fail
from antialias.eval._names import ALL_CORRUPTIONS, KNOWN_PERTURBATIONS, check_names

__all__ = [
    "PERTURBATION_FORMATS",
    "VIDEO_INSTALL_HINT",
    "ImageNetP",
    "PerturbationFiles",
    "cifar10p_names",
    "inspect_perturbation_data",
    "open_imagenet_p",
    "read_cifar10p",
    "read_imagenet_p",
    "read_video",
]

#: The released layouts :func:`inspect_perturbation_data` reads.
PERTURBATION_FORMATS = ("cifar10-p", "imagenet-p")
#: How to install the video decoder ImageNet-P needs.
VIDEO_INSTALL_HINT = 'pip install "antialias[video]"  (or: pip install av)'


def cifar10p_names(
    root: str | os.PathLike, perturbations: Sequence[str] | None, where: str = "cifar10p_names"
) -> tuple[Path, tuple[str, ...]]:
    """The checked CIFAR-10-P folder and names (``None``: every known name with a file, in canonical order)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(
            f"`{where}`: `root` must be the CIFAR-10-P folder (<perturbation>.npy files), got {str(root)!r}."
        )
    if perturbations is not None:
        return root, check_names(where, "perturbations", list(perturbations), KNOWN_PERTURBATIONS)
    names = tuple(p for p in KNOWN_PERTURBATIONS if (root / f"{p}.npy").is_file())
    if not names:
        raise ValueError(f"`{where}`: {root} must hold <perturbation>.npy files (e.g. translate.npy), found none.")
    return root, names


def _cifar10p_array(path: str | os.PathLike, where: str) -> np.ndarray:
    """``path`` memory-mapped, checked to hold ``(n, frames >= 2, H, W, 3)`` uint8 sequences."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"`{where}`: `path` must be a CIFAR-10-P .npy file, got {str(path)!r}, which does not exist.")
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as exc:  # not a .npy file (or a truncated one)
        raise ValueError(f"`{where}`: {path} must be a .npy file of CIFAR-10-P, got one numpy cannot read: {exc}. "
                         "Download it again.") from None
    if array.ndim != 5 or array.shape[-1] != 3 or array.dtype != np.uint8 or array.shape[1] < 2 or not len(array):
        raise ValueError(
            f"`{where}`: {path} must hold (n, frames >= 2, H, W, 3) uint8 sequences, got {array.shape} {array.dtype}."
            + (" It looks like a CIFAR-10-C file (n, H, W, 3): use `antialias eval corruption --corruption-data`."
               if array.ndim == 4 else "")
        )
    return array


def read_cifar10p(path: str | os.PathLike, *, batch_size: int = 100, limit: int | None = None) -> Iterator[Tensor]:
    """Read one released CIFAR-10-P file ``(n, T, H, W, 3)`` uint8 as ``(B, T, 3, H, W)`` floats in [0, 1]."""
    array = _cifar10p_array(path, "read_cifar10p")
    stop = len(array) if limit is None else min(len(array), int(limit))
    for a in range(0, stop, batch_size):
        chunk = np.array(array[a : min(stop, a + batch_size)])  # a writable copy of the memory map
        yield torch.from_numpy(chunk).permute(0, 1, 4, 2, 3).float().div_(255)


# --------------------------------------------------------------------------- ImageNet-P videos


def _load_av(where: str) -> Any:
    """PyAV, or an ImportError that says how to install it."""
    try:
        import av  # optional dependency (the `video` extra): only ImageNet-P's videos need it
    except ImportError:
        raise ImportError(
            f"`{where}`: reading ImageNet-P's .mp4 videos needs PyAV, which is not installed. {VIDEO_INSTALL_HINT}"
        ) from None
    return av


def read_video(path: str | os.PathLike, where: str = "read_video") -> Tensor:
    """All frames of one video file as ``(T, 3, H, W)`` float32 in ``[0, 1]`` (RGB), decoded with PyAV.

    Raises:
        ImportError: PyAV is missing (the message says how to install it).
        ValueError: the file is missing, not a video, or holds no frames.
    """
    av = _load_av(where)
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"`{where}`: `path` must be a video file, got {str(path)!r}, which does not exist.")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"`{where}`: {path} must hold a video stream, got a file without one. "
                                 "Extract the ImageNet-P release again.")
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]  # each (H, W, 3) uint8
    except av.error.FFmpegError as exc:
        raise ValueError(f"`{where}`: {path} must be a readable video (ImageNet-P's are H.264 .mp4), got one PyAV "
                         f"cannot decode: {exc}. Extract the ImageNet-P release again.") from None
    if not frames:
        raise ValueError(f"`{where}`: {path} must hold frames, got an empty video. Extract the release again.")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div_(255)  # (T, 3, H, W)


def _has_videos(folder: Path) -> bool:
    return folder.is_dir() and next(folder.glob("*/*.mp4"), None) is not None


@dataclass
class ImageNetP:
    """Checked ImageNet-P folders: the videos of each perturbation, sorted by ``<wnid>/<file>``."""

    root: Path
    names: tuple[str, ...]
    videos: dict[str, tuple[Path, ...]]

    def __len__(self) -> int:
        return len(self.videos[self.names[0]])


def open_imagenet_p(
    root: str | os.PathLike,
    perturbations: Sequence[str] | None = None,
    *,
    where: str = "open_imagenet_p",
    param: str = "root",
) -> ImageNetP:
    """Check ImageNet-P folders ``<root>/<perturbation>/<wnid>/*.mp4`` (videos are decoded on reading).

    Args:
        root: the ImageNet-P folder.
        perturbations: names to read (default: every known name with a folder of videos, canonical order).
        where, param: the caller and its argument, for error messages.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(
            f"`{where}`: `{param}` must be the ImageNet-P folder (<perturbation>/<wnid>/*.mp4), got {str(root)!r}."
        )
    present = tuple(p for p in KNOWN_PERTURBATIONS if _has_videos(root / p))
    if perturbations is None:
        if not present:
            raise fail(where, param, "an ImageNet-P folder (<perturbation>/<wnid>/*.mp4, e.g. translate/n01440764/"
                       "ILSVRC2012_val_00000293.mp4)", str(root), " It holds no such videos.")
        names = present
    else:
        names = check_names(where, "perturbations", list(perturbations), KNOWN_PERTURBATIONS)
    videos: dict[str, tuple[Path, ...]] = {}
    for name in names:
        files = tuple(sorted((root / name).glob("*/*.mp4")))
        if not files:
            raise fail(where, param, f"an ImageNet-P folder with {name}/<wnid>/*.mp4 videos", str(root),
                       f" {name}/ is missing or holds none; it holds {list(present)}: extract {name} there, or "
                       "leave it out of --perturbations.")
        videos[name] = files
    return ImageNetP(root, names, videos)


def read_imagenet_p(
    data: ImageNetP | str | os.PathLike,
    perturbation: str,
    *,
    batch_size: int = 32,
    limit: int | None = None,
) -> Iterator[Tensor]:
    """The videos of one ImageNet-P perturbation as ``(B, T, 3, H, W)`` floats in [0, 1], sorted by file.

    Args:
        data: the ImageNet-P folder or its :class:`ImageNetP`.
        perturbation: e.g. ``"translate"`` or ``"gaussian_noise_2"``.
        batch_size: videos per batch.
        limit: read only the first ``limit`` videos.

    Raises:
        ValueError: a video that cannot be decoded, or whose frames differ in number or size from the
            first one's (the message names both files).
    """
    where = "read_imagenet_p"
    if not isinstance(data, ImageNetP):
        data = open_imagenet_p(data, [perturbation], where=where)
    check_names(where, "perturbation", [perturbation], data.names)
    files = data.videos[perturbation][:limit]
    first: tuple[Path, tuple[int, ...]] | None = None
    for a in range(0, len(files), batch_size):
        batch = []
        for path in files[a : a + batch_size]:
            video = read_video(path, where)  # (T, 3, H, W)
            if first is None:
                first = (path, tuple(video.shape))
            if tuple(video.shape) != first[1] or video.shape[0] < 2:
                raise ValueError(
                    f"`{where}`: every video of {perturbation} must have 2 or more frames of one size like the first "
                    f"one's (T, C, H, W) = {first[1]} ({first[0]}), got {tuple(video.shape)} in {path}. "
                    "Extract the release again."
                )
            batch.append(video)
        yield torch.stack(batch)  # (B, T, 3, H, W)


# --------------------------------------------------------------------------- a folder the user names

_LABELS = {"cifar10-p": "CIFAR-10-P", "imagenet-p": "ImageNet-P"}
_LAYOUTS = {
    "cifar10-p": "CIFAR-10-P files (<perturbation>.npy)",
    "imagenet-p": "ImageNet-P folders (<perturbation>/<wnid>/*.mp4)",
}
_CLEAN_HINT = {
    "cifar10-p": "--data cifar10 (the data set the model was trained for: its classes and normalisation)",
    "imagenet-p": "--data imagenet:PATH (the ImageNet validation set) or a folder with --data-preset imagenet",
}


@dataclass
class PerturbationFiles:
    """A checked folder of released perturbation sequences: what ``--perturbation-data`` names.

    Built by :func:`inspect_perturbation_data`; :meth:`sequences` reads one perturbation.
    """

    root: Path
    format: str  # one of PERTURBATION_FORMATS
    names: tuple[str, ...]  # perturbations present (or asked for), canonical order
    image_shape: tuple[int, int, int]  # (C, H, W) of the frames
    videos: ImageNetP | None = None  # ImageNet-P only

    @property
    def label(self) -> str:
        """``"CIFAR-10-P"`` or ``"ImageNet-P"``."""
        return _LABELS[self.format]

    def sequences(self, name: str, *, batch_size: int, limit: int | None = None) -> Iterator[Tensor]:
        """The sequences of perturbation ``name``, ``(B, T, 3, H, W)`` floats in [0, 1], in the files' order."""
        if self.videos is not None:
            return read_imagenet_p(self.videos, name, batch_size=batch_size, limit=limit)
        return read_cifar10p(self.root / f"{name}.npy", batch_size=batch_size, limit=limit)

    def check_data(self, image_shape: Sequence[int], spec: Any, where: str) -> None:
        """The evaluation data (``--data``: the model's classes and normalisation) must have the frames' shape.

        Raises:
            ValueError: the shapes differ (the message names the data to give).
        """
        check_data_shape(where, self.label, self.image_shape, image_shape, spec, f" Give {_CLEAN_HINT[self.format]}.")


def _signals(root: Path) -> dict[str, list[str]]:
    entries = list(root.iterdir())
    npy = sorted(p.name for p in entries if p.suffix == ".npy" and p.stem in KNOWN_PERTURBATIONS)
    dirs = sorted(p.name for p in entries if p.name in KNOWN_PERTURBATIONS and _has_videos(p))
    return {"cifar10-p": npy, "imagenet-p": dirs}


def _layout_hint(root: Path) -> str:
    """Why ``root`` holds neither layout, and what to give instead."""
    if root.name in KNOWN_PERTURBATIONS and _has_videos(root):
        return f" It is one perturbation's folder: give its parent, {str(root.parent)!r}."
    if next(root.glob("*.mp4"), None) is not None:
        return f" It holds the videos of one class: give the folder two levels up, {str(root.parent.parent)!r}."
    inside = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    for child in inside:
        if any(_signals(child).values()):
            return f" Did you mean {str(child)!r}?"
    if (root / "labels.npy").is_file() or any(p.name in ALL_CORRUPTIONS for p in inside):
        return " It looks like CIFAR-10-C or ImageNet-C: use `antialias eval corruption --corruption-data`."
    listed = sorted(p.name for p in root.iterdir())
    return f" It holds {listed[:8] + (['...'] if len(listed) > 8 else [])}."


def inspect_perturbation_data(
    path: str | os.PathLike,
    data_format: str = "auto",
    perturbations: Sequence[str] | None = None,
    *,
    where: str = "inspect_perturbation_data",
    param: str = "perturbation_data",
) -> PerturbationFiles:
    """Recognise and check a folder of released perturbation sequences, before any work.

    Args:
        path: the folder: CIFAR-10-P (``<perturbation>.npy``) or ImageNet-P
            (``<perturbation>/<wnid>/*.mp4``), as the releases extract.
        data_format: ``"auto"`` (from the folder's contents), ``"cifar10-p"`` or ``"imagenet-p"``.
        perturbations: names to evaluate (default: every known perturbation present, canonical order).
        where, param: the caller and its argument, for error messages.

    Returns:
        A :class:`PerturbationFiles`. CIFAR-10-P arrays are checked here (shape, dtype); of
        ImageNet-P, the first video is decoded here (so a missing PyAV fails before any work), every
        other one when read.

    Raises:
        ValueError: a missing path, a file, a folder in neither layout (or in both), a missing
            perturbation, a wrong array shape; each message says what to give instead.
        ImportError: ImageNet-P without PyAV (the message says how to install it).

    Examples:
        >>> import tempfile
        >>> inspect_perturbation_data(tempfile.gettempdir() + "/no-such-folder")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: `inspect_perturbation_data`: `perturbation_data` must be an existing folder of CIFAR-10-P ...
    """
    root, data_format, found = recognise_layout(
        path, data_format, formats=PERTURBATION_FORMATS, layouts=_LAYOUTS, signals=_signals, hint=_layout_hint,
        kind="perturbation", where=where, param=param,
    )
    if data_format == "imagenet-p":
        data = open_imagenet_p(root, perturbations, where=where, param=param)
        _, c, h, w = read_video(data.videos[data.names[0]][0], where).shape
        return PerturbationFiles(root, data_format, data.names, (c, h, w), data)
    _, names = cifar10p_names(root, perturbations, where)
    shapes = {}
    for name in names:
        if not (root / f"{name}.npy").is_file():
            raise fail(where, param, f"a CIFAR-10-P folder with {name}.npy", str(root),
                       f" It holds {found['cifar10-p']}: copy {name}.npy there, or leave it out of --perturbations.")
        shapes[name] = _cifar10p_array(root / f"{name}.npy", where).shape[2:]  # (H, W, 3)
    if len(set(shapes.values())) > 1:
        raise fail(where, param, "a folder whose .npy files hold frames of one size", shapes,
                   " Keep the files of one release only.")
    h, w, c = shapes[names[0]]
    return PerturbationFiles(root, data_format, names, (c, h, w))
