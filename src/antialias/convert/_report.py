"""The report of :func:`antialias.convert`: one :class:`ConvertSite` per site, costs before and after."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConvertReport", "ConvertSite"]


@dataclass(frozen=True)
class ConvertSite:
    """One downsampling site: where it is, what it was, what it became and how."""

    name: str
    kind: str
    old: str
    new: str
    placement: str
    note: str = ""


@dataclass
class ConvertReport:
    """What :func:`convert` did. ``print(report)`` gives one block per site and the costs.

    Attributes:
        sites: The converted sites, in graph (or module) order.
        skipped: Strided sites left as they were, each with the reason.
        traced: Modules converted from a ``torch.fx`` graph (``"<root>"`` for the whole model).
        fallbacks: Modules ``torch.fx`` could not trace, with the error; their direct children
            got module-level replacements.
        rewritten: Modules whose forward was rewritten as a ``torch.fx.GraphModule``.
        input_size: Shape of the example input the costs were measured on, or None.
        flops_before, flops_after: ``torch.utils.flop_counter`` totals (convolutions and matmuls), or None.
        params_before, params_after: Parameter counts.
        method: The downsampling method (``convert(method=...)``).
        stride_filters: Stride above 2 -> the filter it got (e.g. a patch-embedding stem's), as text.
        antialiased: Layers that already anti-aliased and were left alone (``"name (Class from module)"``):
            this library's, timm's ``BlurPool2d``, ``antialiased_cnns.BlurPool``, kornia's blur-pools.
    """

    filter_size: Any
    padding_mode: str
    sites: list[ConvertSite] = field(default_factory=list)
    skipped: list[ConvertSite] = field(default_factory=list)
    traced: list[str] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    input_size: tuple[int, ...] | None = None
    flops_before: int | None = None
    flops_after: int | None = None
    params_before: int = 0
    params_after: int = 0
    method: str = "blurpool"
    stride_filters: dict[int, str] = field(default_factory=dict)
    antialiased: list[str] = field(default_factory=list)

    def placements(self) -> dict[str, str]:
        """Site name -> placement, for the converted sites."""
        return {s.name: s.placement for s in self.sites}

    def __str__(self) -> str:
        how = "torch.fx graph" if not self.fallbacks else "torch.fx graph with module-level fallback"
        lines = [
            f"antialias.convert: {len(self.sites)} site(s) converted, {len(self.skipped)} skipped "
            f"({how}; {'' if self.method == 'blurpool' else f'method={self.method!r}, '}"
            f"filter_size={self.filter_size!r}, padding_mode={self.padding_mode!r})"
        ]
        for site in self.sites:
            lines.append(f"  {site.name}  [{site.kind}, {site.placement}]")
            lines.append(f"      {site.old}  ->  {site.new}")
            if site.note:
                lines.append(f"      note: {site.note}")
        if self.skipped:
            lines.append("skipped:")
            for site in self.skipped:
                lines.append(f"  {site.name}  [{site.kind}] {site.old}: {site.note}")
        if self.antialiased:
            lines.append(f"already anti-aliased, left alone ({len(self.antialiased)}):")
            lines.extend(f"  {item}" for item in self.antialiased)
        for stride, text in sorted(self.stride_filters.items()):
            shown = text.split(": ", 1)[-1]
            lines.append(f"stride-{stride} sites (patch embeddings, large pools) blurred with {shown}")
        for item in self.fallbacks:
            lines.append(f"fallback: {item}")
        for item in self.rewritten:
            lines.append(f"rewritten as torch.fx.GraphModule: {item}")
        if self.flops_before is not None and self.flops_after is not None:
            ratio = self.flops_after / self.flops_before if self.flops_before else float("nan")
            lines.append(
                f"cost at input {self.input_size}: FLOPs {_human(self.flops_before)} -> "
                f"{_human(self.flops_after)} (x{ratio:.2f}); params {self.params_before:,} -> {self.params_after:,}"
            )
        else:
            lines.append(f"params {self.params_before:,} -> {self.params_after:,} (pass input_size= for FLOPs)")
        return "\n".join(lines)


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3f}{unit} ({n:,})"
    return f"{n:,}"
