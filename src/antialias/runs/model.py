"""Model construction for the trainer: zoo names, users' factories, fine-tuning from a baseline."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from torch import nn

from antialias._factory import import_factory, is_factory_spec

__all__ = ["build_model", "load_state_dict_file", "parse_filter_size"]


def parse_filter_size(text: str) -> int | str | None:
    """Command-line form of ``filter_size``: "none" -> None, digits -> int, else a filter name.

    Examples:
        >>> parse_filter_size("none"), parse_filter_size("3"), parse_filter_size("tri4")
        (None, 3, 'tri4')
    """
    t = text.strip()
    if t.lower() in ("none", "null", "baseline"):
        return None
    return int(t) if t.isdigit() else t


def accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def build_model(spec: str, filter_size: int | str | None, *, in_channels: int, num_classes: int,
                model_kwargs: dict[str, Any]) -> nn.Module:
    """Builds zoo model ``spec`` (or calls the user's ``module:function``) for the data's shape.

    ``in_channels`` and ``num_classes`` are passed when the builder takes them; ``model_kwargs``
    always are.

    Raises:
        ValueError: unknown zoo name (with close matches), a factory that cannot take the filter
            size, or a model whose input channels do not fit the data.
    """
    kwargs = dict(model_kwargs)
    if is_factory_spec(spec):
        factory = import_factory(spec, "train", "model")
        if filter_size is not None:
            if not accepts(factory, "filter_size"):
                raise ValueError(
                    f"`train`: `filter_size` must be None for a factory without a `filter_size` parameter, "
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
    if accepts(builder, "in_channels"):
        kwargs.setdefault("in_channels", in_channels)
    model = builder(**kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"`train`: `model` must build an nn.Module, got {type(model).__name__} from {spec!r}.")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"`train`: `model` must have trainable parameters, got none in {spec!r}.")
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and first.in_channels != in_channels:
        raise ValueError(
            f"`train`: `model` must take {in_channels}-channel input like the data, got {spec!r} with "
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
    obj = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"`train`: `finetune_from` must hold a state_dict of tensors, got {type(obj).__name__} in {path!r}."
        )
    return obj
