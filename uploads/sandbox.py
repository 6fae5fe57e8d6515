"""Runs `uploads.ingest_child` in a resource-limited child process (security notes §2.5, §2.6).

Hard limits live here, not in dramatiq: dramatiq's TimeLimit cannot interrupt C code. The child gets
RLIMIT_AS / RLIMIT_CPU / RLIMIT_FSIZE / RLIMIT_NPROC / no core dumps, a wall-clock timeout, a minimal
environment without credentials, dies with its parent (PR_SET_PDEATHSIG), and — where the kernel lets an
unprivileged process do so — runs in its own network namespace, i.e. without network.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The module the child runs (`python -m`); tests point it at stand-ins that misbehave on purpose.
CHILD_MODULE = "uploads.ingest_child"
# GDAL configuration of the child (security notes §2.5), set before rasterio is imported there.
GDAL_ENVIRONMENT = {
    "GDAL_SKIP": "VRT MRF GTI MBTiles PDF PCIDSK NITF RPFTOC KMLSUPEROVERLAY WMS WCS HTTP STACIT STACTA DAAS EEDAI "
    "PLMOSAIC OGCAPI ESRIC netCDF HDF5 HDF4",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_PAM_ENABLED": "NO",
    "GDAL_VRT_ENABLE_PYTHON": "NO",
    "GDAL_VRT_ENABLE_RAWRASTERBAND": "NO",
    "GDAL_DRIVER_PATH": "disable",
    "GDAL_CACHEMAX": "256",
    "GDAL_NUM_THREADS": "1",
    "GDAL_HTTP_TIMEOUT": "5",
    "GDAL_HTTP_MAX_RETRY": "0",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".none",
    "PROJ_NETWORK": "OFF",
    # One thread per job: the worker's concurrency is its process/thread count, not BLAS's.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
try:
    _LIBC: Any = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


@dataclass(frozen=True)
class ChildLimits:
    timeout: float  # wall clock, seconds
    memory: int  # RLIMIT_AS, bytes
    max_output: int  # RLIMIT_FSIZE, bytes
    isolate_network: bool = True


@dataclass(frozen=True)
class ChildOutcome:
    """How the child ended: `document` is its JSON answer when it gave one."""

    document: dict[str, Any] | None
    returncode: int | None
    timed_out: bool
    lost_lease: bool
    stderr_tail: str
    seconds: float

    @property
    def killed_by(self) -> str | None:
        if self.returncode is not None and self.returncode < 0:
            try:
                return signal.Signals(-self.returncode).name
            except ValueError:
                return f"signal {-self.returncode}"
        return None


def child_environment(*, workdir: str) -> dict[str, str]:
    """A fresh environment: nothing of the worker's (database/broker/storage credentials) is inherited."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "CPL_TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        **GDAL_ENVIRONMENT,
    }


NPROC_MARGIN = 64


def _nproc_limit() -> int:
    """RLIMIT_NPROC for the child: it counts every task of the user, so allow only a small margin above now.

    The child itself needs no processes or threads (every thread pool is pinned to 1 above); the margin
    keeps a library's helper thread from failing while still stopping a fork bomb. Root ignores the limit.
    """
    if os.geteuid() == 0:
        return 0
    uid, tasks = os.getuid(), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            tasks += int(fields.get("Threads", "1").strip() or 1)
    return tasks + NPROC_MARGIN


def _limit_child(limits: ChildLimits) -> Callable[[], None]:
    cpu = max(1, int(limits.timeout) + 1)
    nproc = _nproc_limit()

    def apply() -> None:  # runs in the forked child, before exec: only async-signal-friendly work here
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory, limits.memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_output, limits.max_output))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if limits.isolate_network:
                # Best effort: succeeds where unprivileged user namespaces are allowed; the child then has
                # only a loopback device that is down, i.e. no network at all.
                _LIBC.unshare(_CLONE_NEWUSER | _CLONE_NEWNET)

    return apply


@dataclass
class _Child:
    """A started child (one per job, never reused) with its anonymous stdout/stderr files."""

    process: subprocess.Popen
    stdout: Any
    stderr: Any
    key: tuple


_warm: dict[int, _Child] = {}
_warm_lock = threading.Lock()


def _spawn(limits: ChildLimits, *, scratch: str) -> _Child:
    # Anonymous files, not pipes: a chatty child can never block on a full pipe, and nothing is left on disk.
    stdout = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the _Child, closed in _finish
    stderr = tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-s", "-m", CHILD_MODULE],
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=stderr,
        cwd=str(PROJECT_ROOT),
        env=child_environment(workdir=scratch),
        preexec_fn=_limit_child(limits),
        start_new_session=True,
        close_fds=True,
    )
    return _Child(process=process, stdout=stdout, stderr=stderr, key=(CHILD_MODULE, limits, scratch))


def _take_child(limits: ChildLimits, *, scratch: str, prespawned: bool) -> _Child:
    """This thread's pre-started child when it matches the current limits, else a fresh one."""
    if prespawned:
        with _warm_lock:
            child = _warm.pop(threading.get_ident(), None)
        if child is not None:
            if child.key == (CHILD_MODULE, limits, scratch) and child.process.poll() is None:
                return child
            _discard(child)
    return _spawn(limits, scratch=scratch)


def _prespawn(limits: ChildLimits, *, scratch: str) -> None:
    """Start the next child now, so its interpreter and GDAL are loaded before the next job arrives.

    It waits on stdin, under the same limits; PR_SET_PDEATHSIG ties it to this thread, so it never
    outlives the worker.
    """
    child = _spawn(limits, scratch=scratch)
    with _warm_lock:
        previous = _warm.pop(threading.get_ident(), None)
        _warm[threading.get_ident()] = child
    if previous is not None:
        _discard(previous)


def _discard(child: _Child) -> None:
    if child.process.poll() is None:
        _kill_group(child.process)
    child.process.wait()
    for handle in (child.process.stdin, child.stdout, child.stderr):
        if handle is not None:
            handle.close()


def discard_prespawned() -> None:
    """Stop every pre-started child (tests, shutdown)."""
    with _warm_lock:
        children = list(_warm.values())
        _warm.clear()
    for child in children:
        _discard(child)


def run_child(
    request: dict[str, Any],
    *,
    workdir: str,
    limits: ChildLimits,
    heartbeat: Callable[[], bool] | None = None,
    heartbeat_every: float = 10.0,
    scratch: str | None = None,
    prespawn: bool = True,
) -> ChildOutcome:
    """Run one ingest request in a sandboxed child; `heartbeat()` returning False aborts it (lease lost).

    With `prespawn`, the child was started during this thread's previous job (one process per job still:
    a child is never reused), and the next job's child is started as soon as this one is taken.
    """
    scratch = scratch or workdir
    started = time.monotonic()
    timed_out = lost_lease = False
    child = _take_child(limits, scratch=scratch, prespawned=prespawn)
    if prespawn:
        # The next job's child loads its interpreter and GDAL on another core while this one converts.
        _prespawn(limits, scratch=scratch)
    process = child.process
    try:
        assert process.stdin is not None
        try:
            process.stdin.write(json.dumps(request).encode())
            process.stdin.close()
        except BrokenPipeError:
            pass  # the child died at once; its exit status says why
        deadline = started + limits.timeout
        next_beat = started + heartbeat_every
        while True:
            now = time.monotonic()
            wait = max(0.01, min(deadline, next_beat) - now)
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if heartbeat is not None and now >= next_beat:
                next_beat = now + heartbeat_every
                if not heartbeat():
                    lost_lease = True
                    break
    finally:
        if process.poll() is None:
            _kill_group(process)
        process.wait()
    document = None
    child.stdout.seek(0)
    text = child.stdout.read().decode(errors="replace").strip()
    if text and not (timed_out or lost_lease):
        try:
            document = json.loads(text.splitlines()[-1])
        except ValueError:
            document = None
    child.stderr.seek(0)
    stderr_tail = child.stderr.read()[-4000:].decode(errors="replace")
    child.stdout.close()
    child.stderr.close()
    return ChildOutcome(
        document=document,
        returncode=process.returncode,
        timed_out=timed_out,
        lost_lease=lost_lease,
        stderr_tail=stderr_tail,
        seconds=time.monotonic() - started,
    )


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
