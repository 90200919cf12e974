"""antialias: shift-invariant CNNs by anti-aliased downsampling (Zhang, ICML 2019), with measurements."""

from antialias import filters, functional
from antialias._download import DownloadError
from antialias._version import __version__
from antialias.convert import ConvertReport, convert
from antialias.layers import (
    BlurConv2d,
    BlurPool1d,
    BlurPool2d,
    BlurPool3d,
    ConvBlurPool2d,
    MaxBlurPool1d,
    MaxBlurPool2d,
    MaxBlurPool3d,
)

__all__ = [
    "BlurConv2d",
    "BlurPool1d",
    "BlurPool2d",
    "BlurPool3d",
    "ConvBlurPool2d",
    "ConvertReport",
    "DownloadError",
    "MaxBlurPool1d",
    "MaxBlurPool2d",
    "MaxBlurPool3d",
    "__version__",
    "convert",
    "filters",
    "functional",
]
