"""GeoDjango's PostGIS backend, with a per-request connection health check that needs no round trip.

With CONN_HEALTH_CHECKS, Django runs `SELECT 1` before the first query of every request that reuses a
persistent connection. On a busy 2-core machine a round trip costs 0.5-1 ms (PostgreSQL's backend has to be
woken and scheduled), a visible share of a map tile or a small API read. An idle connection has nothing to read,
so instead of asking the server we look at its socket: when the server ends the session (restart, shutdown,
`pg_terminate_backend`) it sends a FATAL message and closes, and the socket becomes readable. Only then, or
when psycopg already knows the connection is bad, is the real `SELECT 1` check run; it fails and Django
reconnects before the request's first query, as before. A peer that vanishes without closing the socket is
caught by neither check until TCP gives up, so nothing is lost there.
"""

from __future__ import annotations

import select

from django.contrib.gis.db.backends.postgis.base import DatabaseWrapper as PostGISDatabaseWrapper
from psycopg import pq


class DatabaseWrapper(PostGISDatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        pgconn = connection.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            return False
        try:
            readable, _, _ = select.select([pgconn.socket], [], [], 0)
        except (OSError, ValueError, connection.Error):
            return False
        if readable:  # the server said something to an idle connection: usually goodbye
            return super().is_usable()
        return True
