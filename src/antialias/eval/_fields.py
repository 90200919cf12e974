"""What the configs of ``antialias eval`` share: construction from mappings, validation helpers, flag metadata."""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

__all__ = ["PAD_MODES", "PROTOCOLS", "Config", "boolean", "check_choice", "check_data_shape", "check_integer", "fail",
           "flag", "is_imagenet", "names", "path_or_none"]

PROTOCOLS = ("crop", "circular")
PAD_MODES = ("zeros", "reflect")
_C = TypeVar("_C", bound="Config")


def flag(*, name: str | None = None, **cli: Any) -> dict[str, Any]:
    """Field metadata for the generated command line (:mod:`antialias.eval._cli`).

    Keys: ``flag`` (the flag's name when it is not the field's), ``metavar``, ``choices``, ``min``
    (the smallest integer accepted), ``group`` (the help section) and ``required``.
    """
    return {"flag": name, **cli} if name else cli


def fail(where: str, name: str, expectation: str, value: Any, fix: str = "") -> ValueError:
    return ValueError(f"`{where}`: `{name}` must be {expectation}, got {value!r}.{fix}")


def check_choice(where: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        raise fail(where, name, f"one of {', '.join(map(repr, choices))}", value,
                   f" Did you mean {close[0]!r}?" if close else "")


def check_integer(where: str, name: str, value: Any, minimum: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise fail(where, name, f"an integer >= {minimum}" + (" or None" if optional else ""), value)


def path_or_none(where: str, name: str, value: Any, expectation: str) -> None:
    """``value`` must be None or a path (a str or an ``os.PathLike``)."""
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"`{where}`: `{name}` must be {expectation} or None, got {value!r}.")


def check_data_shape(where: str, files: str, expected: tuple[int, ...], shape: Any, spec: Any, fix: str) -> None:
    """The evaluation data (``--data``) must have the image shape ``expected`` of the released ``files`` it goes with.

    Examples:
        >>> check_data_shape("corruption", "CIFAR-10-C", (3, 32, 32), [1, 28, 28], "fashion-mnist", " Fix.")
        Traceback (most recent call last):
        ...
        ValueError: `corruption`: `data` must be the clean set of the CIFAR-10-C files, ... images'. Fix.
    """
    got = tuple(int(v) for v in shape)
    if got != tuple(expected):
        what = spec if isinstance(spec, str) else type(spec).__name__
        raise fail(where, "data", f"the clean set of the {files} files, with {'x'.join(map(str, expected))} images "
                   "like them", f"{what} with {'x'.join(map(str, got))} images", fix)


def boolean(where: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"`{where}`: `{name}` must be True or False, got {value!r}.")


def names(where: str, name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value) or not value:
        raise TypeError(f"`{where}`: `{name}` must be a non-empty list of names or None, got {value!r}.")
    return tuple(value)


class Config:
    """Construction from mappings (unknown keys refused) and data-dependent defaults; subclasses are dataclasses."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @classmethod
    def from_dict(cls: type[_C], values: Mapping[str, Any], *, where: str = "") -> _C:
        """Builds the config from a mapping; keys are field names (dashes allowed).

        Raises:
            ValueError: an unknown key (the closest field is suggested) or a bad value.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        clean: dict[str, Any] = {}
        for key, value in values.items():
            name = str(key).replace("-", "_")
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                fix = f" Did you mean {close[0]!r}?" if close else f" Known keys: {', '.join(names)}."
                raise ValueError(f"`{where or cls.__name__}`: `{key}` must be a {cls.__name__} field, "
                                 f"got unknown key {key!r}.{fix}")
            clean[name] = value
        return cls(**clean)

    @classmethod
    def for_data(cls: type[_C], data: Any, **given: Any) -> _C:
        """The config for ``data`` with the ``given`` fields; others take their (data-dependent) defaults."""
        return cls.from_dict(given)


def is_imagenet(data: Any) -> bool:
    """Whether ``data`` is an ``imagenet:PATH`` spec (the paper's ImageNet protocol applies).

    Examples:
        >>> is_imagenet("imagenet:/data"), is_imagenet("cifar10")
        (True, False)
    """
    return isinstance(data, str) and data.split(":", 1)[0].strip().lower() == "imagenet"
