"""Raster storage (django-storages "imagery" alias): server-generated keys, hashing, hrefs.

Keys never contain a user-supplied string (security notes §2.7):
    staging/<namespace>/<upload id>/<file index>          bytes as PUT by the client, until ingest ends
    rasters/<namespace>/<upload id>/a<attempt>/file-<i>.tif   the stored COGs of an image
    rasters/<namespace>/<upload id>/a<attempt>/preview.png    its preview
Every write goes to a fresh key; an existing key is an error, never silently renamed or replaced.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.core.files import File
from django.core.files.storage import Storage, storages

STAGING_PREFIX = "staging"
RASTERS_PREFIX = "rasters"
CHUNK_SIZE = 1024 * 1024
LOCAL_SCHEME = "storage://imagery/"


class StorageFailure(Exception):
    """Storage did not do what was asked (transient from ingest's point of view: retry later)."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size_bytes: int
    md5: str
    sha256: str


def imagery_storage() -> Storage:
    return storages["imagery"]


def staging_key(*, namespace: str, upload_id: str, index: int) -> str:
    return f"{STAGING_PREFIX}/{namespace}/{upload_id}/{index}"


def raster_prefix(*, namespace: str, upload_id: str, attempt: int) -> str:
    return f"{RASTERS_PREFIX}/{namespace}/{upload_id}/a{attempt}"


def upload_rasters_prefix(*, namespace: str, upload_id: str) -> str:
    return f"{RASTERS_PREFIX}/{namespace}/{upload_id}"


def href_for(key: str) -> str:
    """The `files[].href` of a stored object: `s3://bucket/key` on S3, `storage://imagery/key` locally."""
    storage = imagery_storage()
    bucket = getattr(storage, "bucket_name", None)
    if bucket:
        return f"s3://{bucket}/{key}"
    return f"{LOCAL_SCHEME}{key}"


def key_for_href(href: str) -> str | None:
    """The storage key behind an href written by `href_for` (None for remote or foreign hrefs)."""
    if href.startswith(LOCAL_SCHEME):
        return href[len(LOCAL_SCHEME) :]
    bucket = getattr(imagery_storage(), "bucket_name", None)
    if bucket and href.startswith(f"s3://{bucket}/"):
        return href[len(f"s3://{bucket}/") :]
    return None


class HashingReader:
    """Wraps a readable file and hashes (sha256 + md5) exactly the bytes that pass through it."""

    def __init__(self, raw):
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha256.update(data)
        self.md5.update(data)
        self.size += len(data)
        return data


def hash_file(path: str | Path) -> tuple[int, str, str]:
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            sha256.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return size, md5.hexdigest(), sha256.hexdigest()


class _MovableFile(File):
    """A local file that FileSystemStorage may move into place (rename) instead of copying."""

    def temporary_file_path(self) -> str:
        return self.file.name


def save_local_file(*, key: str, path: str | Path, hashes: tuple[int, str, str] | None = None) -> StoredObject:
    """Move/upload a local file to exactly `key` and verify what storage holds afterwards.

    The local file is consumed: local storage renames it into place, other backends stream it.
    `hashes` (size, md5, sha256) may be given when they were computed while the file was written.
    """
    storage = imagery_storage()
    size, md5, sha256 = hashes if hashes is not None else hash_file(path)
    with open(path, "rb") as handle:
        name = storage.save(key, _MovableFile(handle, name=Path(key).name))
    if name != key:
        storage.delete(name)
        raise StorageFailure(f"{key} already existed in storage; refusing to store under another name")
    try:
        verify(key=key, size=size, sha256=sha256)
    except StorageFailure:
        delete_keys([key])  # a corrupt object must not stay behind under a key nothing references
        raise
    Path(path).unlink(missing_ok=True)
    return StoredObject(key=key, size_bytes=size, md5=md5, sha256=sha256)


def verify(*, key: str, size: int, sha256: str) -> None:
    """Re-read a stored object and compare its size and sha256 (security notes §0.9)."""
    digest = hashlib.sha256()
    total = 0
    for chunk in iter_object(key):
        digest.update(chunk)
        total += len(chunk)
    if total != size or digest.hexdigest() != sha256:
        raise StorageFailure(f"{key}: stored object does not match what was written ({total} of {size} bytes)")


def iter_object(key: str) -> Iterator[bytes]:
    with imagery_storage().open(key, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


def local_copy(*, key: str, destination: Path) -> None:
    """Make a stored object available as a local file for the child (a copy; storage may be remote)."""
    storage = imagery_storage()
    try:
        source = Path(storage.path(key))
    except NotImplementedError:
        source = None
    if source is not None:
        # Same machine: a hard link costs nothing and the child still only sees its own job directory.
        try:
            destination.hardlink_to(source)
            return
        except OSError:
            shutil.copyfile(source, destination)
            return
    with open(destination, "wb") as out:
        for chunk in iter_object(key):
            out.write(chunk)


def delete_keys(keys: list[str]) -> list[str]:
    """Delete objects; returns the keys that could not be deleted (the orphans command finds them later)."""
    storage = imagery_storage()
    failed = []
    for key in keys:
        try:
            storage.delete(key)
        except Exception:  # noqa: BLE001 - storage backends raise anything; a leftover is reported, not fatal
            failed.append(key)
    return failed


def list_keys(prefix: str) -> Iterator[str]:
    """Every key below `prefix` (recursively)."""
    storage = imagery_storage()
    try:
        directories, files = storage.listdir(prefix)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{prefix}/{name}"
    for directory in directories:
        yield from list_keys(f"{prefix}/{directory}")
