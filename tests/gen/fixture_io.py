"""Writes fixture files in the DGFX1 format read by tests/test_util.c (dg_fixture_load)."""
import struct

import numpy as np


def write_fixture(path, tensors):
    """tensors: iterable of (name, array); float arrays become float32, integer ones int32."""
    with open(path, "wb") as f:
        f.write(b"DGFX1\n")
        for name, value in tensors:
            arr = np.asarray(value)
            if np.issubdtype(arr.dtype, np.integer):
                arr, dtype = arr.astype("<i4"), 1
            else:
                arr, dtype = arr.astype("<f4"), 0
            encoded = name.encode()
            f.write(struct.pack("<I", len(encoded)))
            f.write(encoded)
            f.write(struct.pack("<II", dtype, arr.ndim))
            f.write(struct.pack("<%dq" % arr.ndim, *arr.shape))
            f.write(np.ascontiguousarray(arr).tobytes())
