"""User factories named as ``package.module:function`` or ``path/to/file.py:function``.

Trust boundary: a factory is code, so it runs only when the user names it (on the command line or in
a Python call). A name read from a file (a run folder's ``config.json``, a checkpoint's ``model.json``)
may be recorded and shown, but :func:`check_recorded_factory` refuses it, except for the few
factories of antialias itself listed in :data:`INTERNAL_FACTORIES` (fixed functions the library
names in the files it writes, e.g. ``antialias reproduce``'s padded Fashion-MNIST).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["INTERNAL_FACTORIES", "UntrustedFactoryError", "check_recorded_factory", "import_factory", "is_factory_spec"]

#: Factories of antialias itself that a file may name: they build fixed models or data sets from
#: plain keyword arguments and run no code a file could choose.
INTERNAL_FACTORIES = frozenset({
    "antialias.reproduce._data:fashion_mnist_32",
    "antialias.reproduce._data:imagenet_interleaved",
    "antialias.train._demo:tiny_data",
    "antialias.train._demo:tiny_model",
})


class UntrustedFactoryError(ValueError):
    """A file (not the user) names a factory to import and call; antialias refuses to run it."""

_FACTORY = re.compile(r"^(?P<module>[\w.]+|.+\.py):(?P<attr>[A-Za-z_]\w*)$")


def import_factory(spec: str, where: str, param: str) -> Any:
    """Imports ``package.module:function`` or ``path/to/file.py:function``."""
    m = _FACTORY.match(spec)
    if m is None:
        raise ValueError(f"`{where}`: `{param}` must be 'module:function' or 'file.py:function', got {spec!r}.")
    module_name, attr = m.group("module"), m.group("attr")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise ValueError(
                    f"`{where}`: `{param}` must name an existing Python file, got {spec!r} ({path} not found)."
                )
            name = "_antialias_user_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            loader_spec = importlib.util.spec_from_file_location(name, path)
            if loader_spec is None or loader_spec.loader is None:  # only for suffixes no loader claims; .py has one
                raise ValueError(f"`{where}`: `{param}` must name a loadable Python file, got {spec!r}.")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(
            f"`{where}`: `{param}` must name an importable module, got {spec!r} ({exc}). "
            "Check the spelling and that the module is on PYTHONPATH."
        ) from None
    if not hasattr(module, attr):
        raise ValueError(
            f"`{where}`: `{param}` must name a function of {module_name}, got {spec!r} (no attribute {attr!r})."
        )
    return getattr(module, attr)


def is_factory_spec(spec: str, reserved: tuple[str, ...] = ()) -> bool:
    """True for ``module:function`` (not an existing path, not ``NAME:PATH`` of a reserved name)."""
    if _FACTORY.match(spec) is None or Path(spec).exists():
        return False
    return spec.split(":", 1)[0].lower().replace("_", "-") not in reserved


def check_recorded_factory(
    spec: object, *, where: str, param: str, source: str, flag: str, reserved: tuple[str, ...] = ()
) -> None:
    """Refuses a factory that a file names, unless it is one of :data:`INTERNAL_FACTORIES`.

    Args:
        spec: The value read from the file (a zoo or data set name passes).
        where: The command or function, for the message.
        param: The field that holds ``spec`` (``model``, ``data``).
        source: The file it was read from.
        flag: How the user names the factory themselves (``--model``).
        reserved: Names that are not factories (``cifar10`` in ``cifar10:PATH``).

    Raises:
        UntrustedFactoryError: ``spec`` is a factory outside the allow-list.

    Examples:
        >>> check_recorded_factory("resnet20_cifar", where="eval", param="model", source="run/config.json",
        ...                        flag="--model")
        >>> check_recorded_factory("os:system", where="eval", param="model", source="run/config.json",
        ...                        flag="--model")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        antialias._factory.UntrustedFactoryError: `eval`: `model` must be a zoo name when read from ...
    """
    if not isinstance(spec, str) or spec in INTERNAL_FACTORIES or not is_factory_spec(spec, reserved):
        return
    raise UntrustedFactoryError(
        f"`{where}`: `{param}` must be a zoo name when read from {source}, got the factory {spec!r}; antialias "
        f"never imports code named by a file. If you trust it, name it yourself: {flag} {spec}."
    )
