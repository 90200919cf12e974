"""Corruption robustness, ImageNet-C style (Hendrycks & Dietterich, ICLR 2019), on any data set.

Top-1 error ``E(s, c)`` of a model for every corruption ``c`` and severity ``s`` (the 15 test
corruptions, optionally the 4 extra ones, severities 1-5), and the CE / mCE summaries. One job per
module:

- :mod:`~antialias.eval.corruption.metric`: the errors, CE, mCE and their normalisers
  (:class:`CorruptionError`, :func:`corruption_error`);
- :mod:`~antialias.eval.corruption.generate`: corrupted images made on the fly with the optional
  ``imagecorruptions`` library (``pip install "antialias[corruptions]"``; :func:`corrupt_images`);
- :mod:`~antialias.eval.corruption.readers`: the released CIFAR-10-C files and ImageNet-C folders,
  recognised in a folder the user names (:func:`inspect_corruption_data`);
- :mod:`~antialias.eval.corruption.evaluate`: a model over any of these sources
  (:func:`evaluate_corruptions`, :func:`evaluate_cifar10c`, :func:`evaluate_imagenet_c`,
  :func:`evaluate_corruption_files`).
"""

from antialias.eval._names import ALL_CORRUPTIONS, CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES
from antialias.eval._robust_core import Estimate
from antialias.eval.corruption.evaluate import (
    evaluate_cifar10c,
    evaluate_corruption_files,
    evaluate_corruptions,
    evaluate_imagenet_c,
)
from antialias.eval.corruption.generate import INSTALL_HINT, corrupt_images, corruption_seed, load_imagecorruptions
from antialias.eval.corruption.metric import CorruptionError, CorruptionNormaliser, CorruptionResult, corruption_error
from antialias.eval.corruption.readers import (
    CorruptionFiles,
    ImageNetC,
    inspect_corruption_data,
    open_cifar10c,
    open_imagenet_c,
    read_cifar10c,
)

__all__ = [
    "ALL_CORRUPTIONS",
    "CORRUPTIONS",
    "EXTRA_CORRUPTIONS",
    "INSTALL_HINT",
    "SEVERITIES",
    "CorruptionError",
    "CorruptionFiles",
    "CorruptionNormaliser",
    "CorruptionResult",
    "Estimate",
    "ImageNetC",
    "corrupt_images",
    "corruption_error",
    "corruption_seed",
    "evaluate_cifar10c",
    "evaluate_corruption_files",
    "evaluate_corruptions",
    "evaluate_imagenet_c",
    "inspect_corruption_data",
    "load_imagecorruptions",
    "open_cifar10c",
    "open_imagenet_c",
    "read_cifar10c",
]
