"""Help text for generated command-line flags: a config dataclass's ``Args:`` docstring, by field name."""

from __future__ import annotations

import re

__all__ = ["field_help"]

_ENTRY = re.compile(r"^\s{8}(\w+): (.*)$")
_SECTIONS_AFTER_ARGS = ("Examples:", "Raises:", "Returns:")


def field_help(cls: type) -> dict[str, str]:
    """The ``Args:`` entries of ``cls``'s docstring, by field name (continuation lines joined).

    The text is ready for argparse: reST double backquotes dropped, ``%`` escaped.

    Examples:
        >>> class Config:
        ...     '''A config.
        ...
        ...     Args:
        ...         size: Images per batch, ``N``,
        ...             per process (100%).
        ...
        ...     Examples:
        ...         ignored: not a field.
        ...     '''
        >>> field_help(Config)
        {'size': 'Images per batch, N, per process (100%%).'}
    """
    doc = cls.__doc__ or ""
    section = doc.split("Args:", 1)[1] if "Args:" in doc else ""
    for heading in _SECTIONS_AFTER_ARGS:
        section = section.split(heading, 1)[0]
    helps: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        m = _ENTRY.match(line)
        if m:
            current = m.group(1)
            helps[current] = m.group(2).strip()
        elif current and line.strip():
            helps[current] += " " + line.strip()
    return {k: v.replace("``", "").replace("%", "%%") for k, v in helps.items()}
