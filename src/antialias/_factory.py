"""User factories named as ``package.module:function`` or ``path/to/file.py:function``."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["import_factory", "is_factory_spec"]

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
