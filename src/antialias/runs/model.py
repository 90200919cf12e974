"""Model construction for the trainer: zoo names, users' factories, fine-tuning from a baseline."""

from __future__ import annotations

import inspect
import math
import pickle
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from antialias._factory import import_factory, is_factory_spec
from antialias.filters import filter_row

__all__ = [
    "NonFiniteError",
    "build_model",
    "check_finite",
    "finite_or_none",
    "load_state_dict_file",
    "parse_filter_size",
]


class NonFiniteError(ValueError):
    """Weights or a loss that are NaN or infinite: training diverged, or a weights file is damaged."""


def check_finite(tensors: dict[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]], *, where: str,
                 what: str, fix: str) -> None:
    """Raises :class:`NonFiniteError` naming the first tensors that hold NaN or infinity.

    Args:
        tensors: A state_dict, or ``(name, tensor)`` pairs such as ``model.named_parameters()``.
        where: The public name that starts the message.
        what: What the tensors are, e.g. "the weights of run/model.safetensors".
        fix: What the user can do about it (the message's last sentence).

    Examples:
        >>> check_finite({"w": torch.ones(2)}, where="eval", what="the weights", fix="")
        >>> check_finite({"w": torch.tensor([1.0, float("nan")])}, where="eval", what="the weights",
        ...              fix="Retrain.")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        antialias.runs.model.NonFiniteError: `eval`: the weights must be finite, got NaN or infinity in ['w']. Retrain.
    """
    items = tensors.items() if isinstance(tensors, dict) else tensors
    bad = [name for name, t in items if t.is_floating_point() and t.device.type != "meta"
           and not bool(torch.isfinite(t).all())]
    if bad:
        shown = bad[:5] + (["..."] if len(bad) > 5 else [])
        raise NonFiniteError(f"`{where}`: {what} must be finite, got NaN or infinity in {shown}. {fix}".rstrip())


def finite_or_none(value: float | None) -> float | None:
    """``value``, or None when it is NaN or infinite (JSON has no NaN)."""
    return value if value is None or math.isfinite(value) else None


def parse_filter_size(text: str) -> int | str | None:
    """Command-line form of ``filter_size``: "none" -> None, digits -> int, else a filter name.

    Examples:
        >>> parse_filter_size("none"), parse_filter_size("3"), parse_filter_size("tri4")
        (None, 3, 'tri4')

    Raises:
        ValueError: not a positive tap count, a filter name or none (e.g. "-3").
    """
    t = text.strip()
    if t.lower() in ("none", "null", "baseline"):
        return None
    value: int | str = int(t) if t.isascii() and t.isdigit() else t
    filter_row(value, where="`--filter-size`")  # "-3", "3.5", "tri9": refused here, never read as another filter
    return value


def accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _names(fn: Any, name: str) -> bool:
    """Whether ``fn`` names the parameter ``name`` (not only through ``**kwargs``)."""
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def build_model(spec: str, filter_size: int | str | None, *, in_channels: int, num_classes: int,
                model_kwargs: dict[str, Any], where: str = "train") -> nn.Module:
    """Builds zoo model ``spec`` (or calls the user's ``module:function``) for the data's shape.

    ``in_channels`` and ``num_classes`` are passed when the builder takes them; ``model_kwargs``
    always are. ``where`` starts the error messages (the command that asked: ``"train"``, ``"eval"``).

    Raises:
        ValueError: unknown zoo name (with close matches), a factory that cannot take the filter
            size, or a model whose input channels do not fit the data.
    """
    kwargs = dict(model_kwargs)
    if is_factory_spec(spec):
        factory = import_factory(spec, where, "model")
        if filter_size is not None:
            if not accepts(factory, "filter_size"):
                raise ValueError(
                    f"`{where}`: `filter_size` must be None for a factory without a `filter_size` parameter, "
                    f"got {filter_size!r} for {spec!r}. Pass --filter-size none, or add `filter_size` to the factory."
                )
            kwargs.setdefault("filter_size", filter_size)
        builder = factory
    else:
        from antialias.models import get_model_builder

        builder = get_model_builder(spec)  # unknown names raise with close matches
        kwargs.setdefault("filter_size", filter_size)
    if accepts(builder, "num_classes"):
        kwargs.setdefault("num_classes", num_classes)
    if accepts(builder, "in_channels") and (in_channels != 3 or _names(builder, "in_channels")):
        kwargs.setdefault("in_channels", in_channels)  # RGB through **kwargs only: resnet18's **kwargs refuse it
    model = builder(**kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"`{where}`: `model` must build an nn.Module, got {type(model).__name__} from {spec!r}.")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"`{where}`: `model` must have trainable parameters, got none in {spec!r}.")
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and first.in_channels != in_channels:
        raise ValueError(
            f"`{where}`: `model` must take {in_channels}-channel input like the data, got {spec!r} with "
            f"{first.in_channels} input channels. Use a model that accepts `in_channels`, or other data."
        )
    return model


def load_state_dict_file(path: str) -> dict[str, torch.Tensor]:
    """Reads a state_dict from ``.safetensors`` (antialias.checkpoint) or a torch file (weights only)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"`train`: `finetune_from` must be an existing weights file, got {path!r}.")
    if p.suffix == ".safetensors":
        from antialias.runs.rundir import load_weights

        state, _ = load_weights(p)
        return state
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)  # weights_only: a pickle that calls code is refused
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, IndexError,
            AttributeError, TypeError, UnicodeDecodeError, OSError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise ValueError(
            f"`train`: `finetune_from` must be a .safetensors file of antialias or a torch state_dict (.pt/.pth), "
            f"got {path!r}, which torch.load cannot read safely ({type(exc).__name__}: {reason})."
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"`train`: `finetune_from` must hold a state_dict of tensors, got {type(obj).__name__} in {path!r}."
        )
    return obj
