"""``numeric`` from Arrow decimals (a CSV reader's parse of ``numeric(p,s)``, Parquet's
decimals) and from text, as a reader leaves an unconstrained numeric: exact, with the scale."""

from __future__ import annotations

import decimal
import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._arrow_fields import ArrowColumn
from ._binary_columns import numeric_words
from ._binary_fields import Fallback, Wire, fixed
from ._display import show

__all__ = ["encode_decimal", "encode_text_numeric"]

# A plain decimal: digits with at most one point, an optional sign. Anything else (exponents,
# NaN, spaces) is parsed value by value with Decimal.
_PLAIN_DECIMAL = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$"
# Scaled magnitudes below 10**15 stay exact through numeric_words' alignment (times 10**3).
_MAX_DIGITS = 15
# numeric's binary sign words.
_NUMERIC_NEG = 0x4000
_NUMERIC_NAN = 0xC000
_NUMERIC_PINF = 0xD000
_NUMERIC_NINF = 0xF000


def encode_decimal(col: ArrowColumn) -> Wire:
    """decimal128(p, s) whole-column while every value fits 15 digits (the 128-bit integers'
    high words are then only sign); wider values go the plain way, as Decimal objects."""
    scale = col.arr.type.scale
    if scale < 0 or not pa.types.is_decimal128(col.arr.type):
        raise Fallback
    words = np.frombuffer(col.arr.buffers()[1], dtype=np.int64).reshape(-1, 2)
    words = words[col.arr.offset : col.arr.offset + len(col.arr)]
    low, high = words[:, 0], words[:, 1]
    valid = ~col.na
    magnitude = np.abs(low).view(np.uint64)
    if (valid & ((high != (low >> 63)) | (magnitude >= np.uint64(10**_MAX_DIGITS)))).any():
        raise Fallback
    column_scale = col.info.numeric_scale
    if column_scale is not None and column_scale < scale:
        # More decimals than the column keeps: only exact multiples pass, as Decimal.quantize.
        step = np.uint64(10 ** (scale - column_scale))
        if (valid & (magnitude % step != 0)).any():
            col.refuse()
    magnitude = np.where(valid, magnitude, np.uint64(0))
    return fixed(numeric_words(magnitude, low < 0, scale, scale), col.na)


def encode_text_numeric(col: ArrowColumn) -> Wire:
    """Plain decimals (``-12.50``) whole-column, keeping each value's own scale as the text
    form does; anything else (``1e5``, ``NaN``, long values) value by value with Decimal."""
    arr = col.arr
    valid = ~col.na
    scale = col.info.numeric_scale
    if scale is not None and scale < 0:
        return _numeric_per_value(col)
    plain = pc.fill_null(pc.match_substring_regex(arr, _PLAIN_DECIMAL), True)
    if not plain.to_numpy(zero_copy_only=False).all():
        return _numeric_per_value(col)
    filled = pc.fill_null(arr, "0")
    negative = pc.starts_with(filled, "-").to_numpy(zero_copy_only=False)
    body = pc.utf8_ltrim(filled, characters="+-")
    point = pc.find_substring(body, ".").to_numpy(zero_copy_only=False).astype(np.int64)
    length = pc.binary_length(body).to_numpy(zero_copy_only=False).astype(np.int64)
    frac = np.where(point < 0, 0, length - point - 1)
    digits = pc.replace_substring(body, ".", "")
    significant = pc.utf8_ltrim(digits, characters="0")
    widths = pc.binary_length(significant).to_numpy(zero_copy_only=False).astype(np.int64)
    if scale is not None:
        if (valid & (frac > scale)).any():
            return _numeric_per_value(col)  # it names the value that needs rounding
        target = scale
    else:
        target = int(frac[valid].max()) if valid.any() else 0
    # Each value is scaled to `target` decimals: its digits plus the zeros that adds.
    if (valid & (widths + target - frac > _MAX_DIGITS)).any():
        return _numeric_per_value(col)
    padded = pc.if_else(pc.equal(pc.binary_length(significant), 0), "0", significant)
    ints = np.asarray(pc.cast(padded, pa.int64()).to_numpy(zero_copy_only=False), np.int64)
    magnitude = (ints * 10 ** (target - frac)).astype(np.uint64)
    words = numeric_words(magnitude, negative & (magnitude != 0), target, 0)
    # The display scale: the column's, else each value's own, as the text form keeps it.
    words[:, 3] = target if scale is not None else frac
    return fixed(words, col.na)


def _numeric_per_value(col: ArrowColumn) -> Wire:
    scale = col.info.numeric_scale
    quantum = decimal.Decimal(1).scaleb(-scale) if scale is not None else None
    bodies: list[bytes | None] = []
    for i, text in enumerate(col.arr.to_pylist()):
        if text is None:
            bodies.append(None)
            continue
        try:
            value = decimal.Decimal(text.strip())
        except decimal.InvalidOperation:
            raise col.bad(i, f"expected a number, got str {show(text)}") from None
        if quantum is not None and value.is_finite():
            try:
                exact = value.quantize(quantum) == value
            except decimal.InvalidOperation:
                exact = False
            if not exact:
                raise col.bad(i, f"{value} does not fit {col.info.sql_type} without rounding")
        bodies.append(_numeric_bytes(value))
    return Wire(pa.array(bodies, type=pa.large_binary()))


def _numeric_bytes(value: decimal.Decimal) -> bytes:
    """numeric's send format for one Decimal: base-10000 digits around the decimal point."""
    if value.is_nan():
        return struct.pack(">hhHh", 0, 0, _NUMERIC_NAN, 0)
    if value.is_infinite():
        return struct.pack(">hhHh", 0, 0, _NUMERIC_NINF if value < 0 else _NUMERIC_PINF, 0)
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    text = "".join(map(str, digit_tuple))
    dscale = max(-exponent, 0)
    if exponent > 0:
        text += "0" * exponent
    frac = dscale
    # Pad the fraction to whole base-10000 digits, then the integer part likewise.
    text += "0" * (-frac % 4)
    frac += -frac % 4
    text = "0" * (-(len(text) - frac) % 4) + text
    groups = [int(text[i : i + 4]) for i in range(0, len(text), 4)]
    weight = (len(text) - frac) // 4 - 1
    sign_word = _NUMERIC_NEG if sign and any(groups) else 0
    return struct.pack(f">hhHh{len(groups)}h", len(groups), weight, sign_word, dscale, *groups)
