"""The model registry and the plumbing every builder shares: config checks and the weights hook.

``register_model`` is open to outside code, so a project can add its own architectures and have
them listed by :func:`list_models`, built by :func:`get_model` and covered by tests that enumerate
the registry.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import textwrap
from collections.abc import Callable
from typing import Any, TypeVar, cast

from torch import nn

from antialias import downsample as _downsample
from antialias import filters as _filters
from antialias.convert import convert as _convert
from antialias.filters import FilterSpec
from antialias.functional import PADDING_MODES

__all__ = ["get_model", "get_model_builder", "list_models", "register_model"]

BuilderT = TypeVar("BuilderT", bound=Callable[..., nn.Module])
ModelT = TypeVar("ModelT", bound=nn.Module)

_MODELS: dict[str, Callable[..., nn.Module]] = {}


# --------------------------------------------------------------------------- defaults a caller can't pass


class _Default(int):
    """An int default that remembers it was not given: ``filter_size=_Default(4)`` shows as ``4`` in
    signatures and docs, but ``type(x) is _Default`` tells "left out" from an explicit ``4``, so
    weights can fix the value and only an explicitly conflicting argument raises."""

    def __repr__(self) -> str:
        return int.__repr__(self)


def _given(value: object) -> bool:
    return type(value) is not _Default


DEFAULT_FILTER_SIZE = _Default(4)
DEFAULT_NUM_CLASSES = _Default(1000)


# --------------------------------------------------------------------------- registry


def register_model(name: str | Callable[..., nn.Module] | None = None) -> Any:
    """Register a model builder under ``name`` (default: the function's ``__name__``).

    Usable bare (``@register_model``) or with a name (``@register_model("my_net")``). The builder
    must accept the keyword arguments ``filter_size`` and ``weights`` so :func:`get_model` can
    forward them.

    Args:
        name: Registry name, or the builder itself when used bare.

    Returns:
        The builder (or a decorator that returns it), which also accepts ``method=`` and
        ``method_options=`` (see :func:`_with_method`).

    Raises:
        ValueError: the name is already registered (names are never silently replaced).

    Examples:
        >>> @register_model("doc_example_net")
        ... def doc_example_net(*, filter_size=4, weights=None, **kwargs):
        ...     return nn.Identity()
        >>> "doc_example_net" in list_models()
        True
        >>> _ = _MODELS.pop("doc_example_net")  # keep the doctest from leaking into the registry
    """

    def decorator(fn: BuilderT) -> BuilderT:
        key = fn.__name__ if name is None or callable(name) else name
        if not isinstance(key, str) or not key:
            raise ValueError(f"`register_model`: `name` must be a non-empty str, got {key!r}.")
        if key in _MODELS:
            raise ValueError(
                f"`register_model`: `name` must be unused, got {key!r}, already registered to "
                f"{_MODELS[key].__module__}.{_MODELS[key].__qualname__}. Choose another name."
            )
        wrapped = _with_method(fn, key)
        _MODELS[key] = wrapped
        return cast(BuilderT, wrapped)

    if callable(name):
        return decorator(name)
    return decorator


def _with_method(fn: Callable[..., nn.Module], key: str) -> Callable[..., nn.Module]:
    """The builder ``fn`` with ``method=`` and ``method_options=`` (keyword-only) added.

    ``method="blurpool"`` (the default) calls ``fn`` unchanged. Any other method of
    :data:`antialias.downsample.METHODS` builds the baseline (``filter_size=None``, with ``weights`` only
    when they are baseline weights) and converts it with :func:`antialias.convert` at every strided site
    (stem included): ``filter_size``, when given, is APS's/LPS's pre-blur (left out: none, the papers'
    plain methods), ``padding_mode`` the sampler's padding. ``state_dict`` keys are the baseline's for
    ``aps`` and ``ideal``; ``lps`` adds ``<site>.score.*`` and ``adaptive`` ``<site>.predictor.*``.
    """
    params = list(inspect.signature(fn).parameters.values())
    extra = [
        inspect.Parameter("method", inspect.Parameter.KEYWORD_ONLY, default="blurpool", annotation="str"),
        inspect.Parameter("method_options", inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation="dict[str, Any] | None"),
    ]
    at = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params))
    signature = inspect.signature(fn).replace(parameters=[*params[:at], *extra, *params[at:]])

    @functools.wraps(fn)
    def builder(*args: Any, method: str = "blurpool", method_options: dict[str, Any] | None = None,
                **kwargs: Any) -> nn.Module:
        method = _downsample.check_method(method, f"`{key}`")
        if method == "blurpool":
            if method_options:
                raise ValueError(
                    f"`{key}`: `method_options` must be empty with method='blurpool', got {method_options!r}."
                )
            return fn(*args, **kwargs)
        pre_blur = kwargs.pop("filter_size", None)
        pre_blur = None if not _given(pre_blur) else pre_blur
        weights = kwargs.get("weights")
        if weights is not None:
            from antialias.models import _weights  # lazy: the weights registry imports the builders

            w = _weights.resolve(weights, key)
            if w is not None and w.filter_size is not None:
                raise ValueError(
                    f"`{key}`: `weights` must be baseline weights (filter_size None) with method={method!r}, got "
                    f"{getattr(w, 'name', weights)!r} (filter_size={w.filter_size!r}). Build without weights."
                )
        model = fn(*args, filter_size=None, **kwargs)
        padding_mode = kwargs.get("padding_mode", "reflect")
        converted, _ = _convert(model, method=method, filter_size=pre_blur, padding_mode=padding_mode,
                                method_options=method_options, inplace=True)
        return converted

    builder.__signature__ = signature  # type: ignore[attr-defined]  # functions take attributes; mypy's types don't say so
    return builder


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered models, sorted; ``pattern`` filters with shell wildcards.

    Examples:
        >>> list_models("resnet1*")
        ['resnet101', 'resnet152', 'resnet18']
    """
    names = sorted(_MODELS)
    if pattern is None:
        return names

    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered under ``name``.

    Raises:
        ValueError: unknown name (close matches are suggested).
    """
    if name not in _MODELS:
        close = difflib.get_close_matches(str(name), list(_MODELS), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else " See antialias.models.list_models()."
        raise ValueError(f"`get_model`: `name` must be a registered model, got {name!r}.{hint}")
    return _MODELS[name]


def get_model(
    name: str, *, filter_size: FilterSpec | None = DEFAULT_FILTER_SIZE, weights: Any = None, **kwargs: Any
) -> nn.Module:
    """Build a registered model by name.

    Args:
        name: A name from :func:`list_models`, e.g. ``"resnet50"``.
        filter_size: Blur filter of the anti-aliased network (int taps or ``"rect2"``, ``"tri3"``,
            ``"tri4"``, ``"bin5"``); None builds the unmodified baseline. Default 4, or the
            filter of ``weights`` when they are given.
        weights: None, a weights object, or its name (``"resnet50.imagenet1k_tri4_ft"``).
        **kwargs: Passed to the builder (``num_classes``, ``padding_mode``, ...).

    Returns:
        The model, in training mode.

    Raises:
        ValueError: unknown name (with close matches), or arguments the builder rejects.

    Examples:
        >>> get_model("resnet18", filter_size=None).fc.out_features
        1000
        >>> get_model("resnt18")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: `get_model`: `name` must be a registered model, got 'resnt18'. Did you mean 'resnet18', ...?
    """
    builder = get_model_builder(name)
    if _given(filter_size):
        kwargs["filter_size"] = filter_size
    return builder(weights=weights, **kwargs)


# --------------------------------------------------------------------------- shared builder plumbing


def _check_filter_size(filter_size: Any, where: str) -> None:
    if filter_size is None:
        return
    _filters.filter_rows(filter_size, 2, where=f"`{where}`")  # raises the library's message on a bad spec


def _check_padding_mode(padding_mode: object, where: str) -> None:
    if padding_mode not in PADDING_MODES:
        close = difflib.get_close_matches(str(padding_mode), PADDING_MODES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"`{where}`: `padding_mode` must be one of {PADDING_MODES}, got {padding_mode!r}.{hint}")


def _check_positive_int(value: object, name: str, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{where}`: `{name}` must be a positive int, got {value!r}.")


def _same_filter(a: FilterSpec | None, b: FilterSpec | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    ra, rb = _filters.filter_rows(a, 2), _filters.filter_rows(b, 2)
    return all(x.shape == y.shape and bool((x - y).abs().max() < 1e-12) for x, y in zip(ra, rb, strict=True))


def _resolve_weights(
    arch: str, weights: Any, filter_size: FilterSpec | None, num_classes: int, where: str
) -> tuple[Any, FilterSpec | None, int]:
    """Check the config, and let ``weights`` fix what was left out.

    Returns ``(weights_object_or_None, filter_size, num_classes)`` as plain values.
    """
    w = None
    if weights is not None:
        from antialias.models import _weights  # lazy: the weights registry imports the builders

        w = _weights.resolve(weights, arch)
    if w is not None:
        w_filter = w.filter_size
        w_classes = int(w.meta["num_classes"])
        if _given(filter_size) and not _same_filter(filter_size, w_filter):
            raise ValueError(
                f"`{where}`: `filter_size` must match the weights ({w_filter!r}), got {filter_size!r}. "
                "Leave filter_size out when passing weights."
            )
        if _given(num_classes) and num_classes != w_classes:
            raise ValueError(
                f"`{where}`: `num_classes` must match the weights ({w_classes}), got {num_classes!r}. "
                "Leave num_classes out, or build without weights and replace the classifier."
            )
        filter_size, num_classes = w_filter, w_classes
    _check_filter_size(filter_size, where)
    _check_positive_int(num_classes, "num_classes", where)
    if type(filter_size) is _Default:
        filter_size = int(filter_size)
    return w, filter_size, int(num_classes)


def _load_weights(model: ModelT, w: Any, progress: bool) -> ModelT:
    if w is not None:
        model.load_state_dict(w.get_state_dict(progress=progress))
    return model


def _build(
    arch: str,
    make: Callable[..., ModelT],
    filter_size: FilterSpec | None,
    weights: Any,
    progress: bool,
    num_classes: int,
    padding_mode: str,
) -> ModelT:
    """The sequence every builder runs: let ``weights`` fix the config, check it, build, load.

    ``make`` is called as ``make(num_classes=..., filter_size=..., padding_mode=...)`` with the
    resolved values (a class, or a ``functools.partial`` holding the architecture's own arguments).
    """
    w, filter_size, num_classes = _resolve_weights(arch, weights, filter_size, num_classes, arch)
    _check_padding_mode(padding_mode, arch)
    model = make(num_classes=num_classes, filter_size=filter_size, padding_mode=padding_mode)
    return _load_weights(model, w, progress)


# --------------------------------------------------------------------------- builder docstrings

_BUILDER_DOC = """{title}

Args:
    filter_size: Blur filter (int taps or ``"rect2"``, ``"tri3"``, ``"tri4"``, ``"bin5"``;
        default 4, or that of ``weights``); None builds {baseline}.
    weights: None, a weights object or its name{weights_hint};
        fixes ``filter_size`` and ``num_classes``, and an explicitly conflicting value raises.
    progress: Show a download progress bar.
    num_classes: Outputs (default {num_classes}).
    padding_mode: Padding of the blur.
{args}
Returns:
    The model, in training mode.

Raises:
    ValueError: a bad {checked},
        or a value that conflicts with ``weights``; weights of another architecture.

Examples:
{examples}
"""


def _builder_doc(
    title: str,
    *,
    args: str,
    examples: str,
    checked: tuple[str, ...] = (),
    baseline: str = "the torchvision baseline",
    num_classes: int = 1000,
    published: bool = True,
) -> Callable[[BuilderT], BuilderT]:
    """Give a builder the shared Google-style docstring, filled with its own parts.

    Args:
        title: The summary line.
        args: Docstring lines for the builder's own arguments (``**kwargs`` or the extras),
            without indentation.
        examples: Doctest lines, without indentation.
        checked: Extra arguments whose bad values raise, besides the common three.
        baseline: What ``filter_size=None`` builds.
        num_classes: The default of ``num_classes``.
        published: Whether weight names like ``"<arch>.imagenet1k_tri4_ft"`` exist to cite.
    """

    def decorator(fn: BuilderT) -> BuilderT:
        names = [f"``{n}``" for n in ("filter_size", "num_classes", "padding_mode", *checked)]
        hint = f' (``"{fn.__name__}.imagenet1k_tri4_ft"``)' if published else ""
        fn.__doc__ = _BUILDER_DOC.format(
            title=title,
            baseline=baseline,
            weights_hint=hint,
            num_classes=num_classes,
            args=textwrap.indent(textwrap.dedent(args).strip("\n"), "    ") + "\n",
            checked=", ".join(names[:-1]) + " or " + names[-1],
            examples=textwrap.indent(textwrap.dedent(examples).strip("\n"), "    "),
        )
        return fn

    return decorator


def _count_example(call: str, count: int) -> str:
    """Doctest lines that build ``call`` on the meta device (shapes only: instant, no memory) and
    show its parameter count."""
    return (
        '>>> with torch.device("meta"):  # shapes only: instant, no memory\n'
        f"...     net = {call}\n"
        ">>> sum(p.numel() for p in net.parameters())  # the blur adds no parameters\n"
        f"{count}\n"
    )
