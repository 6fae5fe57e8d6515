"""Where an image's pixels live: `files[i].href` → a path GDAL can open, for local or S3 storage.

Images ingested by `uploads` carry hrefs written by `uploads.storage.href_for`: `storage://imagery/<key>` on the
local filesystem, `s3://<bucket>/<key>` on S3. Only those hrefs are ever opened — a remote or foreign href
(`https://…`, `gs://…`, another bucket) is refused — so a catalog writer cannot make the server fetch URLs or
read arbitrary files by editing `files`. Datasets are opened with the GTiff driver only: every stored raster is
a COG written by ingest.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import rasterio
from django.conf import settings
from django.core.files.storage import storages
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError

from uploads.storage import key_for_href

# GDAL options for reading COGs over HTTP(S)/S3: no directory listing on open (one request instead of a
# LIST of the "folder"), merged range requests, and a block cache shared by the reads of one request.
REMOTE_GDAL_OPTIONS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "VSI_CACHE": "TRUE",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff",
}


class SourceUnavailable(Exception):
    """The image's stored file cannot be located or opened (missing, foreign href, unreadable)."""


@dataclass(frozen=True)
class SourceLocation:
    """A GDAL path plus the environment (credentials, endpoint) it must be opened in."""

    path: str
    env: dict[str, str]

    def open(self, *, overview_level: int | None = None) -> contextlib.AbstractContextManager:
        return open_dataset(self, overview_level=overview_level)


def image_file_href(image, file_index: int) -> str:
    files = image.files or []
    if not 0 <= file_index < len(files) or not isinstance(files[file_index], dict):
        raise SourceUnavailable(f"image {image.pk} has no file {file_index}.")
    href = files[file_index].get("href")
    if not isinstance(href, str) or not href:
        raise SourceUnavailable(f"file {file_index} of image {image.pk} has no href.")
    return href


def locate(image, file_index: int) -> SourceLocation:
    """The GDAL path of `image.files[file_index]` in the "imagery" storage, local or S3."""
    href = image_file_href(image, file_index)
    key = key_for_href(href)
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise SourceUnavailable(
            f"file {file_index} of image {image.pk} is not stored by this catalog "
            f"({urlsplit(href).scheme or 'unknown'} href); only ingested images can be read."
        )
    storage = storages["imagery"]
    bucket = getattr(storage, "bucket_name", None)
    if bucket:
        return SourceLocation(path=f"/vsis3/{bucket}/{key}", env=s3_gdal_env(storage))
    try:
        path = storage.path(key)
    except NotImplementedError as exc:
        raise SourceUnavailable(f"the imagery storage {type(storage).__name__} cannot be read by GDAL.") from exc
    return SourceLocation(path=path, env={})


def s3_gdal_env(storage) -> dict[str, str]:
    """GDAL's /vsis3/ configuration from the django-storages S3 backend's own settings (one source of truth)."""
    env = dict(REMOTE_GDAL_OPTIONS)
    access_key = getattr(storage, "access_key", None)
    secret_key = getattr(storage, "secret_key", None)
    if access_key and secret_key:
        env["AWS_ACCESS_KEY_ID"] = access_key
        env["AWS_SECRET_ACCESS_KEY"] = secret_key
        token = getattr(storage, "security_token", None)
        if token:
            env["AWS_SESSION_TOKEN"] = token
    region = getattr(storage, "region_name", None)
    if region:
        env["AWS_REGION"] = region
    endpoint = getattr(storage, "endpoint_url", None)
    if endpoint:
        # GDAL wants host[:port] and the scheme separately; MinIO/Ceph endpoints also need path-style URLs.
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        env["AWS_S3_ENDPOINT"] = parts.netloc
        env["AWS_HTTPS"] = "YES" if parts.scheme == "https" else "NO"
        env["AWS_VIRTUAL_HOSTING"] = "TRUE" if getattr(storage, "addressing_style", None) == "virtual" else "FALSE"
    elif getattr(storage, "addressing_style", None) == "path":
        env["AWS_VIRTUAL_HOSTING"] = "FALSE"
    return env


class _OpenDatasets(threading.local):
    """Recently used datasets of this thread, most recent last (rasterio datasets are not thread-safe)."""

    def __init__(self) -> None:
        self.entries: OrderedDict[tuple, tuple[object, float]] = OrderedDict()

    def take(self, key: tuple, max_age: float):
        entry = self.entries.pop(key, None)
        if entry is None:
            return None
        dataset, opened = entry
        if time.monotonic() - opened > max_age:
            dataset.close()
            return None
        return entry

    def give_back(self, key: tuple, entry: tuple[object, float], size: int) -> None:
        self.entries[key] = entry
        while len(self.entries) > size:
            _, (dataset, _) = self.entries.popitem(last=False)
            dataset.close()

    def clear(self) -> None:
        while self.entries:
            _, (dataset, _) = self.entries.popitem()
            dataset.close()


_open_datasets = _OpenDatasets()


def close_cached_datasets() -> None:
    """Close this thread's cached datasets (tests; a worker that wants its file handles back)."""
    _open_datasets.clear()


def _identity(path: str) -> tuple:
    """What makes a cached handle stale: for local files inode, size and mtime (a replaced or deleted file is
    reopened or reported missing); stored objects on S3 are never rewritten under the same key."""
    if path.startswith("/vsi"):
        return ()
    stat = os.stat(path)
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


@contextlib.contextmanager
def open_dataset(location: SourceLocation, *, overview_level: int | None = None) -> Iterator:
    """Open a stored COG (GTiff driver only), optionally one of its overviews as the dataset.

    Datasets stay open per thread (RASTER_DATASET_CACHE_SIZE, RASTER_DATASET_CACHE_SECONDS): a map view asks
    for neighbouring tiles of the same file, and keeping it open skips re-parsing its header and keeps GDAL's
    block cache of it, so tiles that share a compressed block decode it once. A handle is dropped when the
    file's identity changes, on any GDAL error, and after RASTER_DATASET_CACHE_SECONDS.
    """
    options = {"overview_level": overview_level} if overview_level is not None else {}
    try:
        with rasterio.Env(**location.env):
            key = (location.path, overview_level, tuple(sorted(location.env.items())), _identity(location.path))
            entry = _open_datasets.take(key, settings.RASTER_DATASET_CACHE_SECONDS)
            if entry is None:
                entry = (rasterio.open(location.path, driver="GTiff", **options), time.monotonic())
            dataset = entry[0]
            try:
                yield dataset
            except (RasterioError, CPLE_BaseError):
                dataset.close()  # GDAL failed on it: never hand it out again
                raise
            finally:
                # Also after the caller's own errors (a budget check, a client gone): the handle is fine.
                # With RASTER_DATASET_CACHE_SIZE=0 giving it back closes it at once.
                if not dataset.closed:
                    _open_datasets.give_back(key, entry, settings.RASTER_DATASET_CACHE_SIZE)
    except FileNotFoundError as exc:
        raise SourceUnavailable("the stored file is missing (no such file).") from exc
    except (RasterioError, CPLE_BaseError) as exc:
        raise SourceUnavailable(f"the stored file cannot be read ({_short(exc, location.path)}).") from exc


def _short(exc: Exception, path: str) -> str:
    """GDAL's message without the server path of the file (paths are never shown to clients)."""
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    return text.replace(path, "<file>")[:200]
