"""Errors raised by :mod:`antialias.data`, each naming the file or folder at fault and the fix."""

from __future__ import annotations

import pickle

__all__ = ["CorruptDataError", "DatasetNotFoundError", "UnsafePickleError"]


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are not where they were looked for.

    The message lists every file expected, every place searched and how to get the files.
    """

    def __init__(self, message: str) -> None:
        # FileNotFoundError(str) keeps the message intact (no errno formatting).
        super().__init__(message)


class CorruptDataError(ValueError):
    """A data file exists but its content is not what its format promises (the file is named)."""


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for a global that the CIFAR reader does not admit; nothing was executed."""
