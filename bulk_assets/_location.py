"""Location templates: ``{partition_key}``, ``{start}`` and ``{end}`` in a fetch location.

A template is checked when the dataset spec is built, not at run time, and filled without
``str.format``: that would also evaluate ``{start.__class__}`` or ``{end[0]}``, and it would
fail every run of a location with a literal brace. The rules:

- the only fields are ``{partition_key}``, ``{start}`` and ``{end}``: no attribute or index
  access, no positional ``{}``, no ``!r``/``!s`` conversion;
- a field may carry a format spec without nested fields, e.g. ``{start:%Y/%m/%d}`` for a time
  partition or ``{start:08d}`` for a chunk partition; it is tried on a value of the
  partition's type when the spec is built;
- ``{{`` and ``}}`` stand for a literal ``{`` and ``}``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

__all__ = ["FIELDS", "fill", "parse"]

FIELDS = ("partition_key", "start", "end")
_FORMATTER = string.Formatter()


def parse(template: str) -> list[tuple[str, str | None, str]]:
    """``template`` as (literal text, field name or None, format spec) triples.

    Raises:
        ValueError: an unbalanced brace, or a field other than those in ``FIELDS`` (with
            attribute or index access, a conversion or a nested field in its format spec).
    """
    try:
        pieces = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise ValueError(f"{exc} in {template!r}; write a literal brace as {{{{ or }}}}") from exc
    parts: list[tuple[str, str | None, str]] = []
    for literal, name, spec, conversion in pieces:
        if name is None:
            parts.append((literal, None, ""))
            continue
        shown = (
            "{"
            + name
            + (f"!{conversion}" if conversion else "")
            + (f":{spec}" if spec else "")
            + "}"
        )
        if name not in FIELDS:
            raise ValueError(
                f"{shown} in {template!r} is not one of "
                + ", ".join("{" + f + "}" for f in FIELDS)
                + " (no attribute or index access; {{ and }} are literal braces)"
            )
        if conversion:
            raise ValueError(f"{shown} in {template!r}: conversions (!r, !s, !a) are not allowed")
        if spec and ("{" in spec or "}" in spec):
            raise ValueError(f"{shown} in {template!r}: a format spec may not hold fields")
        parts.append((literal, name, spec or ""))
    return parts


def fill(template: str, values: Mapping[str, object]) -> str:
    """``template`` with its fields replaced by ``values`` (each formatted with its spec) and
    ``{{``/``}}`` by single braces."""
    out: list[str] = []
    for literal, name, spec in parse(template):
        out.append(literal)
        if name is not None:
            out.append(format(values[name], spec))
    return "".join(out)
