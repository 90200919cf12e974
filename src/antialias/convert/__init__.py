"""Anti-alias an arbitrary network: ``convert(model) -> (model, report)``.

The package holds the graph rewriting (``_graph``), the site rules (``_sites``), the replacement
layers (``_layers``), the report (``_report``) and the driver (``_convert``). The driver's
docstring describes every rule.
"""

from antialias.convert._activations import register_activation, unregister_activation
from antialias.convert._convert import KINDS, METHODS, PLACEMENTS, convert
from antialias.convert._filters import stride_filter
from antialias.convert._layers import (
    AvgBlurPool1d,
    AvgBlurPool2d,
    AvgBlurPool3d,
    PreBlurConv1d,
    PreBlurConv2d,
    PreBlurConv3d,
)
from antialias.convert._report import ConvertReport, ConvertSite

__all__ = [
    "KINDS",
    "METHODS",
    "PLACEMENTS",
    "AvgBlurPool1d",
    "AvgBlurPool2d",
    "AvgBlurPool3d",
    "ConvertReport",
    "ConvertSite",
    "PreBlurConv1d",
    "PreBlurConv2d",
    "PreBlurConv3d",
    "convert",
    "register_activation",
    "stride_filter",
    "unregister_activation",
]
