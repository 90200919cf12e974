"""What the readers of the released corrupted and perturbed sets share: recognising a folder's layout.

:func:`~antialias.eval.corruption.readers.inspect_corruption_data` and
:func:`~antialias.eval.perturbation.readers.inspect_perturbation_data` each know two layouts (a CIFAR
``.npy`` release and an ImageNet folder release); :func:`recognise_layout` runs the checks they share
(the format's name, a missing path, a file, a folder of both layouts or of neither) with their names,
so both give the same errors in the same words.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from antialias.eval._fields import fail

__all__ = ["recognise_layout"]


def recognise_layout(
    path: str | os.PathLike,
    data_format: str,
    *,
    formats: tuple[str, str],
    layouts: Mapping[str, str],
    signals: Callable[[Path], Mapping[str, list[str]]],
    hint: Callable[[Path], str],
    kind: str,
    where: str,
    param: str,
) -> tuple[Path, str, Mapping[str, list[str]]]:
    """Check the folder ``path`` and tell which of the two ``formats`` it holds.

    Args:
        path: the folder the user names.
        data_format: ``"auto"`` (from the folder's contents) or one of ``formats``.
        formats: the two layouts' names, e.g. ``("cifar10-c", "imagenet-c")``.
        layouts: each format's description for messages, e.g. ``"CIFAR-10-C files (<corruption>.npy, ...)"``.
        signals: what of each layout a folder holds (entry names; empty: none of it).
        hint: why a folder holds neither layout and what to give instead (a sentence with a leading space).
        kind: ``"corruption"`` or ``"perturbation"``: names the argument ``{kind}_format`` and the
            flag ``--{kind}-format``.
        where, param: the caller and its argument, for error messages.

    Returns:
        ``(folder, format, signals(folder))``, the folder with ``~`` expanded.

    Raises:
        ValueError: an unknown format, a missing path, a file, a folder in neither layout (or in both,
            with ``"auto"``), a folder without the layout asked for; each message says what to give instead.
    """
    described = " or ".join(layouts.values())
    if data_format not in ("auto", *formats):
        raise fail(where, f"{kind}_format", f"one of {('auto', *formats)}", data_format)
    root = Path(path).expanduser()
    if not root.exists():
        raise fail(where, param, f"an existing folder of {described}", str(root),
                   " It does not exist: give the folder the release was extracted into.")
    if not root.is_dir():
        raise fail(where, param, f"a folder of {described}", str(root),
                   f" It is a file: give its folder, {str(root.parent)!r}.")
    found = signals(root)
    if data_format == "auto":
        present = [f for f in formats if found[f]]
        if len(present) > 1:
            raise fail(where, param, "a folder of one layout", str(root),
                       f" It holds both {found[formats[0]][:3]} and {found[formats[1]][:3]}: give "
                       f"--{kind}-format {formats[0]} or {formats[1]}.")
        if not present:
            raise fail(where, param, f"a folder of {described}", str(root), hint(root))
        data_format = present[0]
    elif not found[data_format]:
        raise fail(where, param, f"a folder of {layouts[data_format]} (--{kind}-format {data_format})",
                   str(root), hint(root))
    return root, data_format, found
