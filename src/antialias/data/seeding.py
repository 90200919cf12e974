"""The one seeding function: every random stream in antialias derives its seed from integers here."""

from __future__ import annotations

import hashlib

__all__ = ["derived_seed"]


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers; stable across processes, platforms and Python versions."""
    digest = hashlib.sha256(",".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
