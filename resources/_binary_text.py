"""Text, uuid and JSON columns as binary COPY fields, from Arrow strings or str objects."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._binary_fields import Column, Encoder, Fallback, Wire, fixed, null_mask
from ._json_check import all_json

# Text types whose binary form is the UTF-8 bytes: name and citext keep the plain path.
_TEXT = frozenset({"text", "varchar", "bpchar"})
_UUID_DASHES = np.array([8, 13, 18, 23])
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_NUL_ESCAPE = re.compile(rb"\\u0000")


def is_arrow_str(series: pd.Series) -> bool:
    """Whether ``series`` holds pandas' Arrow-backed strings (``string[pyarrow]``)."""
    return isinstance(series.array, pd.arrays.ArrowStringArray)


def _strings(col: Column) -> pa.Array:
    """The column as one Arrow large_string array, NULL where the frame has NULL."""
    if is_arrow_str(col.series):
        chunked = col.series.array._pa_array
        arr = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
        if arr.type != pa.large_string():
            arr = arr.cast(pa.large_string())
    else:
        if pd.api.types.infer_dtype(col.series, skipna=True) not in ("string", "empty"):
            # text takes only str, so the plain path refuses; json and uuid columns also take
            # dicts, lists and UUID objects: the whole chunk goes the plain way.
            if col.info.base_type in _TEXT:
                col.refuse()
            raise Fallback
        try:
            arr = pa.array(col.series.to_numpy(dtype=object), type=pa.large_string(), mask=col.na)
        except (pa.ArrowException, TypeError, ValueError):
            col.refuse()  # lone surrogates and the like: the plain path decides
    if not np.array_equal(null_mask(arr), col.na):
        raise Fallback
    return arr


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (n + 1, int64) and the whole data buffer of a large_string array."""
    _, offset_buffer, data_buffer = arr.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    if data_buffer is None:  # every value NULL
        return offsets, np.empty(0, dtype=np.uint8)
    return offsets, np.frombuffer(data_buffer, dtype=np.uint8)


def encode_text(col: Column) -> Wire:
    arr = _strings(col)
    offsets, data = _buffers(arr)
    if (data[offsets[0] : offsets[-1]] == 0).any():
        col.refuse()  # a NUL byte, which text cannot hold
    limit = col.info.max_chars
    if limit is not None:
        chars = pc.utf8_length(arr).to_numpy(zero_copy_only=False)
        if (~col.na & (np.nan_to_num(chars) > limit)).any():
            col.refuse()
    return Wire(arr)


def encode_uuid(col: Column) -> Wire:
    arr = _strings(col)
    offsets, data = _buffers(arr)
    valid = ~col.na
    sizes = np.diff(offsets)
    # Only the canonical 36-character form; uuid.UUID also takes braces, "urn:uuid:" and
    # undashed hex, which the plain path then judges.
    if (sizes[valid] != 36).any() or (sizes[col.na] != 0).any():
        col.refuse()
    text = data[offsets[0] : offsets[-1]].reshape(-1, 36)
    if (text[:, _UUID_DASHES] != ord("-")).any():
        col.refuse()
    # bytes.fromhex skips whitespace between byte pairs, so the dashes become spaces and the C
    # parser does the rest (50 ms per 1M values, a quarter of a numpy table lookup). Any other
    # whitespace or non-hex character leaves fewer than 16 bytes per value, or raises.
    spaced = text.copy()
    spaced[:, _UUID_DASHES] = ord(" ")
    try:
        packed_bytes = bytes.fromhex(str(spaced.data, "ascii"))
    except ValueError:  # UnicodeDecodeError included
        col.refuse()
    if len(packed_bytes) != 16 * len(text):
        col.refuse()
    packed = np.frombuffer(packed_bytes, dtype=np.uint8).reshape(-1, 16)
    if not col.na.any():
        return fixed(packed, col.na)
    every = np.zeros((len(valid), 16), dtype=np.uint8)
    every[valid] = packed
    return fixed(every, col.na)


def checked_json(col: Column) -> pa.Array:
    """The column as large_string once every value is a JSON document the column takes."""
    arr = _strings(col)
    if not all_json(arr):
        col.refuse()
    if col.info.base_type == "jsonb":
        # jsonb has no U+0000. all_json has refused the raw byte (JSON allows no control
        # character); its escape is left (an escaped backslash before "u0000" is fine, and
        # valid JSON never ends in a backslash, so one search spans all rows).
        offsets, data = _buffers(arr)
        used = data[offsets[0] : offsets[-1]].data
        # The literal searches the buffer itself at memchr speed (a bytes copy cost 15 ms
        # per 1M 30-byte documents); the full pattern runs only where it can match.
        if _NUL_ESCAPE.search(used) is not None and _JSON_NUL.search(used) is not None:
            col.refuse()
    return arr


def encode_json(col: Column) -> Wire:
    return Wire(checked_json(col), jsonb=col.info.base_type == "jsonb")


# The column types these encoders take, whatever the dtype: the caller checks that the column
# holds strings (Arrow or object).
TEXT_ENCODERS: dict[str, Encoder] = {
    **dict.fromkeys(_TEXT, encode_text),
    "uuid": encode_uuid,
    "json": encode_json,
    "jsonb": encode_json,
}
