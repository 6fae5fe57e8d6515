"""glibc malloc tuning for the web processes (called once from catalogsite.wsgi).

Pixel requests allocate a few arrays of megabytes each (a 1024² × 3 read, its mask, the output). glibc serves
allocations above M_MMAP_THRESHOLD with fresh mmap()s and gives freed heap above M_TRIM_THRESHOLD back to the
kernel, so every request faults its arrays' pages in again: measured on a 1024² × 3 npz read, 8.6 ms of array
work became 3.5 ms with the thresholds below (bench/raster.py). The price is that a worker keeps up to
WEB_MALLOC_TRIM_THRESHOLD_MB of freed memory for reuse instead of returning it; arrays larger than
WEB_MALLOC_MMAP_THRESHOLD_MB are still mapped and unmapped on their own. 0 leaves glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def tune_allocator(*, mmap_threshold_mb: int, trim_threshold_mb: int) -> bool:
    """Set glibc's mmap and trim thresholds; False where there is no glibc (musl, macOS) or nothing to set."""
    if mmap_threshold_mb <= 0 and trim_threshold_mb <= 0:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        logger.info("no glibc mallopt(); allocator thresholds left as they are")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = True
    if mmap_threshold_mb > 0:
        ok &= mallopt(M_MMAP_THRESHOLD, mmap_threshold_mb << 20) == 1
    if trim_threshold_mb > 0:
        ok &= mallopt(M_TRIM_THRESHOLD, trim_threshold_mb << 20) == 1
    return bool(ok)
