"""The peer: stac-fastapi-pgstac on pgstac, installed into its own venv, fed the same synthetic items.

Install: `python -m venv var/bench/peer-venv` + pip (versions pinned below, the newest on PyPI when this
was written). Data: pgstac migrated (`pypgstac migrate`) into its own database on the same PostgreSQL
server as Tessera's benchmark database; the catalog's images are written as STAC items (bench.synth,
same seed) to an ndjson file and loaded with `pypgstac load items`. Server: uvicorn with 3 workers
(as many as the gunicorn workers Tessera gets) on another port.

Fair-play choices, all in the peer's favour: the properties the query set filters or sorts on
(cloud_fraction, provider_id, tags) are registered as pgstac queryables with indexes
(`upsert_queryable(..., property_index_type)`), which the default install does not have; pgstac's
context (numberMatched) is switched on only while the count queries run, because it makes every search
count its matches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from bench.synth import PRODUCTS, Catalog

PEER_PACKAGES = ("stac-fastapi-pgstac==7.2.0", "pypgstac[psycopg]==0.10.0", "uvicorn==0.54.0")


def log(message: str) -> None:
    print(f"[peer] {message}", flush=True)


def ensure_venv(venv: Path) -> None:
    python = venv / "bin" / "python"
    if (
        python.exists()
        and subprocess.run(
            [str(python), "-c", "import stac_fastapi.pgstac, pypgstac, uvicorn"], capture_output=True
        ).returncode
        == 0
    ):
        return
    log(f"creating {venv} and installing {' '.join(PEER_PACKAGES)}")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PEER_PACKAGES],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pip could not install the peer:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def loaded_marker(conn) -> dict | None:
    row = conn.execute("SELECT to_regclass('public.tessera_bench_meta')").fetchone()
    if row[0] is None:
        return None
    row = conn.execute("SELECT meta FROM public.tessera_bench_meta").fetchone()
    return row[0] if row else None


def load(*, catalog: Catalog, admin_dsn: str, dbname: str, venv: Path, workdir: Path, force: bool) -> dict:
    """Migrate pgstac and load the catalog's items unless the same (n, seed) is already there."""
    dsn = f"{admin_dsn.rsplit('/', 1)[0]}/{dbname}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists and force:
            conn.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')
    wanted = {"n": catalog.n, "seed": catalog.seed}
    with psycopg.connect(dsn, autocommit=True) as conn:
        if loaded_marker(conn) == wanted:
            log(f"pgstac database {dbname} already holds n={catalog.n} seed={catalog.seed}")
            apply_planner_settings(dsn, dbname)
            return {"reused": True}
    timings: dict[str, float] = {}
    started = time.perf_counter()
    subprocess.run([str(venv / "bin" / "pypgstac"), "migrate", "--dsn", dsn], check=True, capture_output=True)
    timings["migrate_s"] = round(time.perf_counter() - started, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM pgstac.items")
        conn.execute("DELETE FROM pgstac.collections")
        conn.execute("DROP TABLE IF EXISTS public.tessera_bench_meta")
    workdir.mkdir(parents=True, exist_ok=True)
    collections = workdir / "collections.ndjson"
    with collections.open("w") as out:
        for spec in PRODUCTS:
            out.write(
                json.dumps(
                    {
                        "type": "Collection",
                        "stac_version": "1.0.0",
                        "id": spec.id,
                        "description": spec.id,
                        "license": "proprietary",
                        "links": [],
                        "extent": {
                            "spatial": {"bbox": [[-180, -90, 180, 90]]},
                            "temporal": {"interval": [["2015-01-01T00:00:00Z", "2025-01-01T00:00:00Z"]]},
                        },
                    }
                )
                + "\n"
            )
    items = workdir / f"items-{catalog.n}-{catalog.seed}.ndjson"
    started = time.perf_counter()
    crossing = catalog.crosses()
    with items.open("w") as out:
        for i in range(catalog.n):
            out.write(json.dumps(catalog.stac_item(i, bool(crossing[i])), separators=(",", ":")) + "\n")
    timings["write_ndjson_s"] = round(time.perf_counter() - started, 1)
    pypgstac = str(venv / "bin" / "pypgstac")
    started = time.perf_counter()
    subprocess.run(
        [pypgstac, "load", "collections", str(collections), "--dsn", dsn, "--method", "upsert"],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [pypgstac, "load", "items", str(items), "--dsn", dsn, "--method", "insert"], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"pypgstac load items failed:\n{result.stderr[-3000:]}")
    timings["load_items_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO pgstac, public")
        # Queryables with indexes for what the query set filters and sorts on (not there by default).
        conn.execute("SELECT pgstac.upsert_queryable('cloud_fraction', '{\"type\":\"number\"}', 'to_float', 'BTREE')")
        conn.execute("SELECT pgstac.upsert_queryable('provider_id', '{\"type\":\"string\"}', 'to_text', 'BTREE')")
        conn.execute(
            "SELECT pgstac.upsert_queryable('tags', "
            '\'{"type":"array","items":{"type":"string"}}\', \'to_text_array\', \'GIN\')'
        )
        conn.execute("SELECT pgstac.maintain_partitions()")
        conn.execute("VACUUM ANALYZE")
        conn.execute("CREATE TABLE public.tessera_bench_meta (meta jsonb)")
        conn.execute("INSERT INTO public.tessera_bench_meta VALUES (%s)", (json.dumps(wanted),))
    apply_planner_settings(dsn, dbname)
    timings["index_analyze_s"] = round(time.perf_counter() - started, 1)
    items.unlink()  # ~1 KiB per item; regenerated from the seed when needed
    log(f"loaded {catalog.n} items: {timings}")
    return timings


def apply_planner_settings(dsn: str, dbname: str) -> None:
    """The planner settings Tessera's sessions use (catalogsite/settings.py), for the peer's database too:
    no JIT (it only slows short queries down), random_page_cost 1.1 (data in memory) and the planner cost
    of ST_Intersects that imagery/migrations/0004 sets. Parallel query stays at the server default for the
    peer (pgstac's counts may use it)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{dbname}" SET jit = off')
        conn.execute(f'ALTER DATABASE "{dbname}" SET random_page_cost = 1.1')
        for function in ("st_intersects(geometry, geometry)", "_st_intersects(geometry, geometry)"):
            conn.execute(f"ALTER FUNCTION {function} COST 100")


def set_context(dsn: str, on: bool) -> None:
    """numberMatched on (exact counts) or off. While on, pgstac's count cache is disabled: pgstac keeps the
    exact count of every distinct search for `context_stats_ttl` (1 day), and the benchmark repeats the
    same dozen searches, so the cache would answer every timed request after the first (Tessera keeps no
    such cache; both sides must count)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE pgstac.pgstac_settings SET value = %s WHERE name = 'context'", ("on" if on else "off",))
        conn.execute(
            "UPDATE pgstac.pgstac_settings SET value = %s WHERE name = 'context_stats_ttl'",
            ("0 seconds" if on else "1 day",),
        )


def start_server(*, venv: Path, admin_dsn: str, dbname: str, port: int, logfile: Path) -> subprocess.Popen:
    from urllib.parse import urlsplit

    parts = urlsplit(admin_dsn)
    env = {
        **os.environ,
        "PGUSER": parts.username or "postgres",
        "PGPASSWORD": parts.password or "unused",
        "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432),
        "PGDATABASE": dbname,
        "ENABLE_TRANSACTIONS_EXTENSIONS": "false",
    }
    out = logfile.open("w")
    return subprocess.Popen(
        [
            str(venv / "bin" / "uvicorn"),
            "stac_fastapi.pgstac.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "3",
            "--no-access-log",
        ],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
