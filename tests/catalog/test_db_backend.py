"""catalogsite.db: the per-request health check looks at the socket instead of running SELECT 1."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.contrib.gis.db.backends.postgis.base import DatabaseWrapper as PostGISDatabaseWrapper
from django.db import connection

from accounts.models import User


@pytest.mark.django_db(transaction=True)
def test_a_terminated_connection_is_replaced_before_the_next_request_and_a_healthy_one_costs_no_query(monkeypatch):
    probes = []
    original = PostGISDatabaseWrapper.is_usable

    def counting(self):
        probes.append(self.connection.info.backend_pid)
        return original(self)

    monkeypatch.setattr(PostGISDatabaseWrapper, "is_usable", counting)
    User.objects.count()
    old_pid = connection.connection.info.backend_pid
    assert connection.is_usable() and probes == []  # idle and healthy: decided without a round trip

    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"],
        port=settings["PORT"] or None,
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not connection.is_usable() and probes  # the readable socket made it ask the server, which is gone

    connection.close_if_unusable_or_obsolete()  # what the start of the next request does
    assert User.objects.count() >= 0  # the health check reconnected before the first query
    assert connection.connection.info.backend_pid != old_pid
