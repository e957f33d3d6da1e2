"""What the PyTorch peer benchmarks (torch_mlp.py, torch_cnn.py, torch_charlm.py) share: the
OpenBLAS kernel choice and its thread count.

Import this module before torch: pin_openblas_core() re-executes the script with
OPENBLAS_CORETYPE=SkylakeX unless the variable is already set (OpenBLAS reads it when it is
loaded), so that every peer run uses the same, measured kernel (docs/performance.md says why).
This module never imports torch itself.
"""
import ctypes
import os
import sys


def pin_openblas_core(core="SkylakeX"):
    if "OPENBLAS_CORETYPE" not in os.environ:
        os.environ["OPENBLAS_CORETYPE"] = core
        os.execv(sys.executable, [sys.executable] + sys.argv)


def loaded_blas():
    """Paths of the BLAS libraries mapped into this process (torch maps its BLAS on first
    use: run one small matmul before asking)."""
    with open("/proc/self/maps") as maps:
        return sorted({line.split()[-1] for line in maps
                       if "blas" in line.lower() and "/" in line})


def find_openblas():
    """The OpenBLAS library torch has loaded, as a ctypes handle, or None."""
    for path in loaded_blas():
        if "openblas" not in path:
            continue
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib
        except (OSError, AttributeError):
            continue
    return None


def set_blas_threads(openblas, n):
    """Gives OpenBLAS n threads (its own pthreads, apart from torch's intra-op threads)."""
    if openblas is not None:
        openblas.openblas_set_num_threads(n)
