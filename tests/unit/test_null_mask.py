"""``null_mask``: an Arrow array's NULLs as numpy booleans, from its validity bits."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from resources._binary_fields import null_mask

_VALUES = pa.array([None if i % 3 == 0 else i for i in range(37)], pa.int64())


@pytest.mark.parametrize(
    "arr",
    [
        _VALUES,
        _VALUES.slice(5, 23),  # an offset that is not a whole byte of bits
        _VALUES.slice(1, 1),
        pa.array([1, 2, 3]),
        pa.array([], pa.int64()),
        pa.array([None, None], pa.null()),
        pa.array(["x", None, "y"]).dictionary_encode(),
        pa.array([None, "a"], pa.large_string()).slice(1),
    ],
    ids=lambda a: f"{a.type}[{a.offset}:{a.offset + len(a)}]",
)
def test_the_mask_is_arrows_own_is_null(arr: pa.Array) -> None:
    expected = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    mask = null_mask(arr)
    assert mask.dtype == np.bool_ and mask.shape == (len(arr),)
    assert np.array_equal(mask, expected)
