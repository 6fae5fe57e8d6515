"""The sandbox of the ingest child: minimal environment, resource limits, no network, timeouts, one process per job."""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings

from uploads import sandbox

LIMITS = sandbox.ChildLimits(timeout=30, memory=2 * 1024**3, max_output=1024**3)


@pytest.fixture
def probe(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "CHILD_MODULE", "tests.uploads.env_probe")
    yield lambda request=None, limits=LIMITS, **kwargs: sandbox.run_child(
        request or {}, workdir=str(tmp_path), limits=limits, **kwargs
    )
    sandbox.discard_prespawned()


def test_the_child_gets_gdal_settings_and_no_credentials(probe, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgis://secret@db/x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
    outcome = probe(prespawn=False)
    environment = outcome.document["result"]["environment"]
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "BROKER_URL",
        "SECRET_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "JWT_SIGNING_KEY",
    ):
        assert name not in environment
    assert not any("secret" in value for value in environment.values())
    for name, value in sandbox.GDAL_ENVIRONMENT.items():
        assert environment[name] == value
    assert "VRT" in environment["GDAL_SKIP"].split()
    assert "PROJ_DATA" not in environment and "PROJ_LIB" not in environment


def test_the_child_runs_under_resource_limits(probe):
    limits = probe(prespawn=False).document["result"]["limits"]
    assert limits["RLIMIT_AS"] == LIMITS.memory
    assert limits["RLIMIT_FSIZE"] == LIMITS.max_output
    assert limits["RLIMIT_CPU"] == int(LIMITS.timeout) + 1
    assert limits["RLIMIT_NPROC"] == 0 and limits["RLIMIT_CORE"] == 0


def test_the_child_has_no_network(probe):
    redis = urlsplit(django_settings.REDIS_URL)
    with socket.create_connection((redis.hostname, redis.port or 6379), timeout=2):
        pass  # reachable from here...
    outcome = probe({"port": redis.port or 6379}, prespawn=False)
    assert outcome.document["result"]["network"].startswith("refused")  # ...but not from the child


def test_a_child_over_its_wall_clock_is_killed(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "CHILD_MODULE", "tests.uploads.sleeper")
    outcome = sandbox.run_child(
        {},
        workdir=str(tmp_path),
        prespawn=False,
        limits=sandbox.ChildLimits(timeout=1, memory=LIMITS.memory, max_output=LIMITS.max_output),
    )
    assert outcome.timed_out and outcome.document is None and outcome.killed_by == "SIGKILL"
    assert outcome.seconds < 10


def test_a_lost_lease_stops_the_child(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "CHILD_MODULE", "tests.uploads.sleeper")
    beats = []
    outcome = sandbox.run_child(
        {},
        workdir=str(tmp_path),
        prespawn=False,
        heartbeat=lambda: beats.append(1) or False,
        heartbeat_every=0.2,
        limits=LIMITS,
    )
    assert outcome.lost_lease and not outcome.timed_out and outcome.killed_by == "SIGKILL"
    assert beats == [1] and outcome.seconds < 10


def test_every_job_gets_a_fresh_prestarted_process(probe):
    first = probe(prespawn=True).document["result"]["pid"]
    warm = sandbox._warm.get(threading.get_ident())
    assert warm is not None and warm.process.poll() is None  # the next one is already waiting
    second = probe(prespawn=True).document["result"]["pid"]
    assert second == warm.process.pid and second != first
    third = probe(
        prespawn=True, limits=sandbox.ChildLimits(timeout=31, memory=LIMITS.memory, max_output=LIMITS.max_output)
    ).document["result"]["pid"]
    assert third not in (first, second)  # other limits: the waiting child is discarded, not used
    assert warm.process.poll() is not None


def test_a_prestarted_child_dies_with_its_parent(probe):
    probe(prespawn=True)
    warm = sandbox._warm[threading.get_ident()]
    assert warm.process.poll() is None
    with open(f"/proc/{warm.process.pid}/status") as status:
        assert any(line.startswith("PPid:") and int(line.split()[1]) == os.getpid() for line in status)
    sandbox.discard_prespawned()
    assert warm.process.poll() is not None


def test_nproc_allows_only_a_margin_above_the_users_current_tasks(monkeypatch):
    if os.geteuid() == 0:
        assert sandbox._nproc_limit() == 0  # root is exempt from RLIMIT_NPROC anyway
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # as an unprivileged worker would run
    limit = sandbox._nproc_limit()
    own_tasks = len(os.listdir(f"/proc/{os.getpid()}/task"))
    assert limit >= sandbox.NPROC_MARGIN + own_tasks
