"""The npz floor behind HTTP: a bare WSGI app (no Django, no database, no authentication) that answers every
POST with the npz stream of the same window, read as bench/raster.py's in-process floor reads it.

Served by the same gunicorn configuration as ours, it separates what HTTP transport costs from what the
catalog adds (authentication, access control, planning). Environment: RASTER_FLOOR_PATH (the COG),
RASTER_FLOOR_WINDOW ("col,row,size").
"""

from __future__ import annotations

import os

import rasterio
from rasterio.windows import Window

from catalogsite.allocator import tune_allocator
from raster.encoding import npz_stream

tune_allocator(mmap_threshold_mb=64, trim_threshold_mb=256)  # as catalogsite.wsgi does with its defaults
PATH = os.environ["RASTER_FLOOR_PATH"]
COL, ROW, SIZE = (int(v) for v in os.environ["RASTER_FLOOR_WINDOW"].split(","))


def application(environ, start_response):
    environ["wsgi.input"].read()
    with rasterio.open(PATH) as src:
        data = src.read(window=Window(COL, ROW, SIZE, SIZE))
    mask = data == 0
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return npz_stream(metadata={"size": [SIZE, SIZE]}, data=data, mask=mask)
