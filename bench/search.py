"""Search and summary benchmark: Tessera against stac-fastapi-pgstac on the same synthetic catalog.

    .venv/bin/python bench/search.py                      # 1,000,000 images, ours only
    .venv/bin/python bench/search.py --images 100000 --peer pgstac

Steps (each skipped when its result is already there): create the benchmark database (default
`tessera_bench`, on the server of DATABASE_URL or of `bin/services.sh env`) and migrate it; generate the
catalog (bench/synth.py) and bulk-load it with COPY into the tables Django created; start gunicorn as
`make run` does (3 sync workers) on --port; measure the query set over HTTP with the exact bodies the
descarteslabs client sends; check a sample of answers against a brute-force evaluation of the same
filter and ACL; with --peer pgstac do the same for the peer (bench/peer.py) and print ours/peer ratios.
Results: a table on stdout and JSON in bench/results/search-<timestamp>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psycopg  # noqa: E402
from shapely.geometry import Polygon, box, mapping  # noqa: E402

from bench import peer as peer_mod  # noqa: E402
from bench.synth import LAND, PRODUCTS, Catalog  # noqa: E402

API = "/metadata/v1/catalog/v2"
BIG = PRODUCTS[0].id  # the Landsat-like product: 40% of the catalog
OTHER_ORG_PRODUCT = PRODUCTS[0].id  # read by a globex member: only the images shared with globex
FIRST_PAGE_TYPES = (
    "bbox_date",
    "polygon_cloud",
    "polygon_cloud_tags_provider",
    "sort_cloud",
    "get_many_100",
    "other_org_reader",
)


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# ---- environment -------------------------------------------------------------------------------------
def service_env() -> dict[str, str]:
    """DATABASE_URL / REDIS_URL: from the environment, else from `bin/services.sh env`."""
    env = {}
    if not os.environ.get("DATABASE_URL"):
        out = subprocess.run([str(ROOT / "bin" / "services.sh"), "env"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export ") :].partition("=")
                env[key] = value.strip().strip("'\"")
    for key in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


def with_db(url: str, name: str) -> str:
    return f"{url.rsplit('/', 1)[0]}/{name}"


def libpq(url: str) -> str:
    return url.replace("postgis://", "postgresql://", 1)


def django_setup(database_url: str, redis_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("REDIS_URL", redis_url or "redis://127.0.0.1:6379/0")
    os.environ.setdefault("SECRET_KEY", "tessera-bench-secret-key-not-for-production")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalogsite.settings")
    import django

    django.setup()


# ---- load --------------------------------------------------------------------------------------------
def ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(libpq(with_db(admin_url, "postgres")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            log(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(libpq(with_db(admin_url, name)), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "migrate", "--noinput", "--skip-checks", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )


def setup_accounts() -> dict[str, Any]:
    """Organizations, the product owners, and the two benchmark readers; their principals for brute force."""
    from accounts.models import Organization
    from accounts.principals import principals_for
    from accounts.services import organization_create, user_create_or_update

    orgs = {}
    for slug in ("acme", "globex", "initech"):
        orgs[slug] = Organization.objects.filter(slug=slug).first() or organization_create(slug=slug)
    owners = {
        slug: user_create_or_update(
            username=f"bench-owner-{slug}", email=f"owner@{slug}.example", organization=orgs[slug], is_org_admin=True
        )
        for slug in orgs
    }
    readers = {
        # A plain member of acme: reads acme's org-wide images and what the other orgs share with acme.
        "acme": user_create_or_update(username="bench-acme", email="reader@acme.example", organization=orgs["acme"]),
        # A plain member of globex reading acme's products: only the 10% shared with globex are visible.
        "globex": user_create_or_update(
            username="bench-globex", email="reader@globex.example", organization=orgs["globex"]
        ),
    }
    out = {"owner_ns": {slug: user.namespace for slug, user in owners.items()}, "users": {}}
    for key, user in readers.items():
        principals = principals_for(user)
        out["users"][key] = {
            "username": user.username,
            "readable": sorted(principals.readable),
            "owner": sorted(principals.owner),
        }
    return out


def issue_tokens() -> dict[str, str]:
    from accounts.models import User
    from accounts.tokens import issue_access_token

    return {
        key: issue_access_token(user=User.objects.get(username=f"bench-{key}"), expires_in=6 * 3600)
        for key in ("acme", "globex")
    }


def load_catalog(*, catalog: Catalog, dsn: str, accounts: dict[str, Any]) -> dict[str, float]:
    """Replace the products and images with the catalog: COPY without secondary indexes, then index + ANALYZE."""
    timings: dict[str, float] = {}
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    # One transaction for TRUNCATE, DROP INDEX, COPY and CREATE INDEX: a failed load leaves the table
    # (and its indexes) as they were. VACUUM ANALYZE runs after the commit.
    with psycopg.connect(dsn) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED; checked at the end of the COPY instead
        # (CREATE INDEX refuses to run on a table with pending trigger events).
        conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        conn.execute("TRUNCATE imagery_image, products_product CASCADE")
        for spec in PRODUCTS:
            owner_ns = accounts["owner_ns"][spec.org]
            conn.execute(
                "INSERT INTO products_product (id, namespace, name, description, created, modified, tags,"
                " extra_properties, owners, readers, writers) VALUES (%s, %s, %s, %s, now(), now(), '{}', '{}',"
                " %s, %s, '{}')",
                (
                    spec.id,
                    spec.org,
                    spec.id.split(":")[1],
                    f"Synthetic {spec.id}",
                    [f"org:{spec.org}", f"user:{owner_ns}"],
                    [f"org:{spec.org}"],
                ),
            )
        # Secondary indexes are dropped for the COPY and rebuilt afterwards (much faster than
        # maintaining a GiST and several GINs row by row); the primary key and the unique
        # (product, name) constraint stay.
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'imagery_image' AND indexname NOT IN"
            " (SELECT conname FROM pg_constraint WHERE conrelid = 'imagery_image'::regclass)"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        started = time.perf_counter()
        columns = ", ".join(Catalog.COPY_COLUMNS)
        chunk = 20_000
        with conn.cursor().copy(f"COPY imagery_image ({columns}) FROM STDIN") as copy:
            for start in range(0, catalog.n, chunk):
                copy.write(catalog.copy_lines(start, min(start + chunk, catalog.n), now))
                if start and start % 200_000 == 0:
                    log(f"  copied {start:,} rows")
        timings["copy_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        for _, definition in indexes:
            conn.execute(definition)
        timings["create_indexes_s"] = round(time.perf_counter() - started, 1)
        conn.execute("CREATE TABLE IF NOT EXISTS tessera_bench_meta (meta jsonb)")
        conn.execute("DELETE FROM tessera_bench_meta")
        conn.execute(
            "INSERT INTO tessera_bench_meta VALUES (%s)", (json.dumps({"n": catalog.n, "seed": catalog.seed}),)
        )
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) imagery_image")
        conn.execute("VACUUM (ANALYZE) products_product")
        timings["vacuum_analyze_s"] = round(time.perf_counter() - started, 1)
        size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('imagery_image'))").fetchone()[0]
    timings["table_size"] = size
    return timings


def loaded(dsn: str) -> dict | None:
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass('tessera_bench_meta')").fetchone()[0] is None:
            return None
        row = conn.execute("SELECT meta FROM tessera_bench_meta").fetchone()
        return row[0] if row else None


# ---- HTTP --------------------------------------------------------------------------------------------
class Client:
    """One keep-alive connection (gunicorn's sync workers close it after each response; it reopens)."""

    def __init__(self, port: int, headers: dict[str, str]):
        self.port = port
        self.headers = headers
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def request(self, method: str, path: str, body: Any = None) -> tuple[float, int, Any]:
        payload = None if body is None else json.dumps(body).encode()
        for attempt in range(2):
            try:
                started = time.perf_counter()
                self.conn.request(method, path, body=payload, headers=self.headers)
                response = self.conn.getresponse()
                raw = response.read()
                elapsed = (time.perf_counter() - started) * 1000
                if response.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                if attempt:
                    raise
        return elapsed, response.status, (json.loads(raw) if raw else None)


def wait_for(port: int, path: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port}{path}")


def ensure_free(port: int) -> None:
    """Refuse to start on a port something else answers on (we would measure that server instead)."""
    import socket

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"127.0.0.1:{port} is already in use; choose another with --port / --peer-port")


def start_gunicorn(env: dict[str, str], port: int, logfile: Path) -> subprocess.Popen:
    """As bin/run.sh starts the web app: gunicorn, 3 sync workers (WEB_CONCURRENCY), DEBUG off."""
    server_env = {**os.environ, **env, "DEBUG": "false"}
    server_env.pop("TESSERA_TESTING", None)
    out = logfile.open("w")
    return subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "catalogsite.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            os.environ.get("WEB_CONCURRENCY", "3"),
            "--timeout",
            "120",
            "--keep-alive",
            "5",
        ],
        cwd=ROOT,
        env=server_env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


# ---- the query set -----------------------------------------------------------------------------------
@dataclass
class Variant:
    """One concrete request of a query type, for us and (when expressible) for the peer, plus its check."""

    ours: tuple[str, str, Any]
    peer: tuple[str, str, Any] | None
    check: dict[str, Any] = field(default_factory=dict)
    user: str = "acme"


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def ours_search(
    filters: list[dict], *, intersects: dict | None = None, sort: str | None = None, limit: int | None = 100
) -> dict[str, Any]:
    """The body of the descarteslabs client's `PUT /images` (filter and intersects are JSON strings)."""
    body: dict[str, Any] = {"filter": compact(filters), "include": "product"}
    if intersects is not None:
        body["intersects"] = compact(intersects)
    if sort is not None:
        body["sort"] = sort
    if limit is not None:
        body["limit"] = limit
    return body


def year_range(year: int) -> tuple[str, str, float, float]:
    start, end = dt.datetime(year, 1, 1, tzinfo=dt.UTC), dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ"), start.timestamp(), end.timestamp()


def blob(cx: float, cy: float, radius: float, rng: np.random.Generator, vertices: int = 48) -> Polygon:
    """An irregular star-shaped polygon (a "region of interest"), `radius` degrees across."""
    angles = np.linspace(0, 2 * math.pi, vertices, endpoint=False)
    radii = radius * rng.uniform(0.7, 1.0, vertices)
    return Polygon(
        [
            (
                round(cx + r * math.cos(a) / max(math.cos(math.radians(cy)), 0.3), 6),
                round(max(min(cy + r * math.sin(a), 85), -85), 6),
            )
            for a, r in zip(angles, radii, strict=True)
        ]
    )


def build_queries(catalog: Catalog, variants: int, seed: int) -> dict[str, list[Variant]]:
    rng = np.random.default_rng(seed + 7)
    land = np.array([b for b in LAND if b[2] <= 180], dtype=np.float64)
    which = rng.choice(len(land), size=variants, p=land[:, 4] / land[:, 4].sum())
    centres = [
        (
            float(rng.uniform(land[k, 0] + 6, land[k, 2] - 6))
            if land[k, 2] - land[k, 0] > 12
            else float((land[k, 0] + land[k, 2]) / 2),
            float(rng.uniform(land[k, 1] + 2, land[k, 3] - 2)),
        )
        for k in which
    ]
    years = [int(y) for y in rng.integers(2016, 2025, variants)]
    eq_product = {"op": "eq", "name": "product_id", "val": BIG}
    big = PRODUCTS.index(next(p for p in PRODUCTS if p.id == BIG))
    queries: dict[str, list[Variant]] = {
        name: []
        for name in (
            "id_lookup",
            "bbox_date",
            "polygon_cloud",
            "polygon_cloud_tags_provider",
            "sort_cloud",
            "page_1",
            "page_2",
            "page_10",
            "count_box_10deg",
            "summary_product",
            "summary_month_year",
            "get_many_100",
            "other_org_reader",
        )
    }
    acme = catalog.owner_ns  # noqa: F841 - documents that the catalog knows its owners
    for k in range(variants):
        cx, cy = centres[k]
        year = years[k]
        start, end, t0, t1 = year_range(year)
        date_filters = [
            eq_product,
            {"name": "acquired", "op": "gte", "val": start},
            {"name": "acquired", "op": "lt", "val": end},
        ]
        window = box(cx - 2, cy - 2, cx + 2, cy + 2)
        queries["bbox_date"].append(
            Variant(
                ours=("PUT", "/images", ours_search(date_filters, intersects=mapping(window))),
                peer=(
                    "POST",
                    "/search",
                    {"collections": [BIG], "bbox": list(window.bounds), "datetime": f"{start}/{end}", "limit": 100},
                ),
                check={
                    "kind": "ids",
                    "order": "id",
                    "select": {"product": BIG, "acquired_gte": t0, "acquired_lt": t1, "intersects": window},
                },
            )
        )
        region = blob(cx, cy, 12.0, rng)
        cloud_filters = [eq_product, {"name": "cloud_fraction", "op": "lt", "val": 0.2}]
        queries["polygon_cloud"].append(
            Variant(
                ours=("PUT", "/images", ours_search(cloud_filters, intersects=mapping(region))),
                peer=(
                    "POST",
                    "/search",
                    {
                        "collections": [BIG],
                        "intersects": mapping(region),
                        "limit": 100,
                        "filter-lang": "cql2-json",
                        "filter": {"op": "<", "args": [{"property": "cloud_fraction"}, 0.2]},
                    },
                ),
                check={"kind": "ids", "order": "id", "select": {"product": BIG, "cloud_lt": 0.2, "intersects": region}},
            )
        )
        provider = PRODUCTS[big].providers[k % len(PRODUCTS[big].providers)]
        tag_filters = [
            *cloud_filters,
            {"op": "eq", "name": "tags", "val": "qa:pass"},
            {"op": "eq", "name": "provider_id", "val": provider},
        ]
        queries["polygon_cloud_tags_provider"].append(
            Variant(
                ours=("PUT", "/images", ours_search(tag_filters, intersects=mapping(region))),
                peer=(
                    "POST",
                    "/search",
                    {
                        "collections": [BIG],
                        "intersects": mapping(region),
                        "limit": 100,
                        "filter-lang": "cql2-json",
                        "filter": {
                            "op": "and",
                            "args": [
                                {"op": "<", "args": [{"property": "cloud_fraction"}, 0.2]},
                                {"op": "a_contains", "args": [{"property": "tags"}, ["qa:pass"]]},
                                {"op": "=", "args": [{"property": "provider_id"}, provider]},
                            ],
                        },
                    },
                ),
                check={
                    "kind": "ids",
                    "order": "id",
                    "select": {
                        "product": BIG,
                        "cloud_lt": 0.2,
                        "intersects": region,
                        "tag": "qa:pass",
                        "provider": provider,
                    },
                },
            )
        )
        descending = k % 2 == 1
        sort_product = PRODUCTS[k % 4].id  # the big products: Landsat, Sentinel-2, MODIS, PlanetScope
        queries["sort_cloud"].append(
            Variant(
                ours=(
                    "PUT",
                    "/images",
                    ours_search(
                        [{"op": "eq", "name": "product_id", "val": sort_product}],
                        sort="-cloud_fraction" if descending else "cloud_fraction",
                    ),
                ),
                peer=(
                    "POST",
                    "/search",
                    {
                        "collections": [sort_product],
                        "limit": 100,
                        "sortby": [
                            {"field": "properties.cloud_fraction", "direction": "desc" if descending else "asc"}
                        ],
                    },
                ),
                check={
                    "kind": "ids",
                    "order": "-cloud" if descending else "cloud",
                    "select": {"product": sort_product},
                },
            )
        )
        # Pages: product + one year, no limit (the client's iteration), default order; walked to page 10.
        paged = ours_search(date_filters, limit=None)
        queries["page_1"].append(
            Variant(
                ours=("PUT", "/images", paged),
                peer=("POST", "/search", {"collections": [BIG], "datetime": f"{start}/{end}", "limit": 100}),
                check={
                    "kind": "pages",
                    "order": "id",
                    "select": {"product": BIG, "acquired_gte": t0, "acquired_lt": t1},
                },
            )
        )
        square = box(cx - 5, cy - 5, cx + 5, cy + 5)
        queries["count_box_10deg"].append(
            Variant(
                ours=("PUT", "/images", ours_search([eq_product], intersects=mapping(square), limit=0)),
                peer=("POST", "/search", {"collections": [BIG], "bbox": list(square.bounds), "limit": 1}),
                check={"kind": "count", "select": {"product": BIG, "intersects": square}},
            )
        )
        summary_product = PRODUCTS[k % len(PRODUCTS)].id
        queries["summary_product"].append(
            Variant(
                ours=(
                    "PUT",
                    "/images/summary/all",
                    {"filter": compact([{"op": "eq", "name": "product_id", "val": summary_product}])},
                ),
                peer=("POST", "/search", {"collections": [summary_product], "limit": 1}),
                check={"kind": "summary", "select": {"product": summary_product}},
            )
        )
        queries["summary_month_year"].append(
            Variant(
                ours=(
                    "PUT",
                    "/images/summary/acquired/month",
                    {"_start": start, "_end": end, "filter": compact([eq_product])},
                ),
                peer=None,
                check={
                    "kind": "months",
                    "year": year,
                    "select": {"product": BIG, "acquired_gte": t0, "acquired_lt": t1},
                },
            )
        )
        other_window = box(cx - 5, cy - 5, cx + 5, cy + 5)
        queries["other_org_reader"].append(
            Variant(
                ours=(
                    "PUT",
                    "/images",
                    ours_search(
                        [
                            {"op": "eq", "name": "product_id", "val": OTHER_ORG_PRODUCT},
                            {"name": "acquired", "op": "gte", "val": start},
                            {"name": "acquired", "op": "lt", "val": end},
                        ],
                        intersects=mapping(other_window),
                    ),
                ),
                peer=None,
                user="globex",
                check={
                    "kind": "ids",
                    "order": "id",
                    "select": {
                        "product": OTHER_ORG_PRODUCT,
                        "acquired_gte": t0,
                        "acquired_lt": t1,
                        "intersects": other_window,
                    },
                },
            )
        )
    return queries


def add_id_queries(
    queries: dict[str, list[Variant]], catalog: Catalog, readable: set[str], owner: set[str], variants: int, seed: int
) -> None:
    rng = np.random.default_rng(seed + 11)
    visible = np.flatnonzero(catalog.visible(readable, owner))
    for _ in range(variants):
        i = int(rng.choice(visible))
        image_id, product = catalog.image_id(i), catalog.product_id(i)
        queries["id_lookup"].append(
            Variant(
                ours=("GET", f"/images/{quote(image_id, safe=':')}", None),
                peer=("GET", f"/collections/{quote(product, safe=':')}/items/{quote(image_id, safe=':')}", None),
                check={"kind": "one", "id": image_id},
            )
        )
        in_big = visible[catalog.product[visible] == 0]
        picked = sorted(catalog.image_id(int(j)) for j in rng.choice(in_big, 100, replace=False))
        queries["get_many_100"].append(
            Variant(
                ours=(
                    "PUT",
                    "/images",
                    {"filter": compact([{"name": "id", "op": "eq", "val": picked}]), "include": "product"},
                ),
                peer=("POST", "/search", {"ids": picked, "collections": [BIG], "limit": 100}),
                check={"kind": "set", "ids": picked},
            )
        )


# ---- measuring ----------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def stats(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50": round(percentile(samples, 0.5), 2),
        "p95": round(percentile(samples, 0.95), 2),
        "p99": round(percentile(samples, 0.99), 2),
        "mean": round(statistics.fmean(samples), 2) if samples else None,
    }


def next_request(side: str, response: Any, body: Any) -> tuple[str, str, Any] | None:
    """Follow the server's `next` link the way its client does."""
    if side == "ours":
        link = (response.get("links") or {}).get("next")
        if not link:
            return None
        parts = urlsplit(link)
        return "PUT", parts.path[len(API) :] + "?" + parts.query, body
    for link in response.get("links", []):
        if link.get("rel") == "next":
            parts = urlsplit(link["href"])
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            if link.get("method", "GET").upper() == "POST":
                merged = {**body, **(link.get("body") or {})} if link.get("merge", True) else link.get("body")
                return "POST", path, merged
            return "GET", path, None
    return None


@dataclass
class Side:
    """One server under test: its clients (by benchmark user) and the path prefix of its API."""

    name: str
    clients: dict[str, Any]
    prefix: str
    peer_dsn: str | None = None


def _request_of(side: Side, variant: Variant) -> tuple[str, str, Any] | None:
    request = variant.ours if side.name == "ours" else variant.peer
    if request is None:
        return None
    method, path, body = request
    return method, side.prefix + path, body


def _walk(side: Side, variant: Variant, pages: int = 10) -> tuple[list[float], list[Any]]:
    """Page 1 and then `links.next` up to page `pages`: (time of each page, each response)."""
    request = _request_of(side, variant)
    body = request[2] if request else None
    times: list[float] = []
    responses: list[Any] = []
    while request is not None and len(times) < pages:
        elapsed, status, response = side.clients[variant.user].request(*request)
        if status != 200:
            raise RuntimeError(f"{side.name} page {len(times) + 1}: HTTP {status}: {str(response)[:500]}")
        times.append(elapsed)
        responses.append(response)
        request = next_request(side.name, response, body)
        if request is not None and side.name == "ours":
            request = (request[0], side.prefix + request[1], request[2])
    return times, responses


def warm_up(sides: list[Side], queries: dict[str, list[Variant]], rounds: int = 6) -> None:
    """Every worker process's first requests are slow (imports, URL resolver, connection); the sync workers
    get requests round-robin, so a few rounds of every query type warm them all before anything is timed."""
    for _ in range(rounds):
        for variants in queries.values():
            for side in sides:
                request = _request_of(side, variants[0]) if variants else None
                if request is not None:
                    side.clients[variants[0].user].request(*request)


def run_sides(
    sides: list[Side], queries: dict[str, list[Variant]], *, samples: int, budget_s: float
) -> dict[str, tuple[dict[str, list[float]], dict[str, list[Any]]]]:
    """Time every query type on every side, INTERLEAVED request by request (ours, peer, ours, peer…), so
    both servers are measured under the same background load of this shared machine.

    Returns, per side, the samples (ms) per query type and the first response of each variant (kept from
    an untimed warm-up pass, for the correctness checks)."""
    timings: dict[str, dict[str, list[float]]] = {side.name: {} for side in sides}
    firsts: dict[str, dict[str, list[Any]]] = {side.name: {} for side in sides}
    for name, variants in queries.items():
        if name in ("page_2", "page_10"):
            continue
        active = [side for side in sides if any(_request_of(side, v) is not None for v in variants)]
        if not active:
            continue
        contexts = [side for side in active if side.peer_dsn and name in ("count_box_10deg", "summary_product")]
        for side in contexts:
            peer_mod.set_context(side.peer_dsn, True)
        started = time.perf_counter()
        if name == "page_1":
            for side in active:
                timings[side.name].update({"page_1": [], "page_2": [], "page_10": []})
                firsts[side.name]["page_1"] = []
            walks = max(4, samples // 6)
            for walk in range(walks + 1):  # walk 0 warms up (and is kept for checking, untimed)
                if walk >= 4 and time.perf_counter() - started > budget_s:
                    break
                variant = variants[walk % len(variants)]
                for side in active:
                    times, responses = _walk(side, variant)
                    if walk < len(variants):
                        firsts[side.name]["page_1"].append(responses)
                    if walk == 0:
                        continue
                    for page in (1, 2, 10):
                        if len(times) >= page:
                            timings[side.name][f"page_{page}"].append(times[page - 1])
        else:
            for variant in variants:  # warm-up pass; keeps the first answer of each variant
                for side in active:
                    request = _request_of(side, variant)
                    if request is None:
                        continue
                    _, status, response = side.clients[variant.user].request(*request)
                    if status != 200:
                        raise RuntimeError(f"{side.name} {name}: HTTP {status}: {str(response)[:500]}")
                    firsts[side.name].setdefault(name, []).append(response)
            for side in active:
                timings[side.name][name] = []
            count = 0
            while count < samples and (count < 5 or time.perf_counter() - started < budget_s):
                variant = variants[count % len(variants)]
                for side in active:
                    request = _request_of(side, variant)
                    if request is not None:
                        timings[side.name][name].append(side.clients[variant.user].request(*request)[0])
                count += 1
        for side in contexts:
            peer_mod.set_context(side.peer_dsn, False)
        for side in active:
            measured = timings[side.name].get(name, [])
            log(f"{side.name:5s} {name:28s} n={len(measured):4d} p50={percentile(measured, 0.5):8.1f} ms")
    return {side.name: (timings[side.name], firsts[side.name]) for side in sides}


# ---- correctness -------------------------------------------------------------------------------------
def check_answers(
    catalog: Catalog,
    queries: dict[str, list[Variant]],
    firsts: dict[str, list[Any]],
    principals: dict[str, dict[str, set[str]]],
    sample: int,
) -> list[dict[str, Any]]:
    """Compare a sample of our answers with a brute-force evaluation of the same filter and ACL."""
    results = []
    for name, variants in queries.items():
        for index, (variant, response) in enumerate(zip(variants, firsts.get(name, []), strict=False)):
            if index >= sample:
                break
            user = principals[variant.user]
            check = variant.check
            expected: Any
            kind = check["kind"]
            if kind == "one":
                got, expected = response["data"]["id"], check["id"]
            elif kind == "set":
                got = sorted(item["id"] for item in response["data"])
                expected = sorted(check["ids"])
            else:
                selected = catalog.select(readable=user["readable"], owner=user["owner"], **check["select"])
                if kind == "ids":
                    order = check["order"]
                    ordered = (
                        catalog.order_by_id(selected)
                        if order == "id"
                        else catalog.order_by_cloud(selected, descending=order.startswith("-"))
                    )
                    expected = ordered[:100]
                    got = [item["id"] for item in response["data"]]
                elif kind == "pages":
                    ordered = catalog.order_by_id(selected)
                    expected = ordered[:1000]
                    got = [item["id"] for page in response for item in page["data"]]
                elif kind == "count":
                    expected, got = len(selected), response["meta"]["count"]
                elif kind == "summary":
                    expected = {
                        "count": len(selected),
                        "bytes": int(catalog.size[selected].sum()),
                        "products": sorted({catalog.product_id(i) for i in selected}),
                    }
                    got = response["data"]["attributes"]
                else:  # months
                    expected, got = [], []
                    for month in range(12):
                        lo = dt.datetime(check["year"], month + 1, 1, tzinfo=dt.UTC).timestamp()
                        hi = dt.datetime(
                            check["year"] + (month == 11), (month + 1) % 12 + 1, 1, tzinfo=dt.UTC
                        ).timestamp()
                        in_month = selected[(catalog.acquired[selected] >= lo) & (catalog.acquired[selected] < hi)]
                        expected.append((len(in_month), int(catalog.size[in_month].sum())))
                    got = [(row["attributes"]["count"], row["attributes"]["bytes"]) for row in response["data"]]
            ok = got == expected
            results.append(
                {
                    "query": name,
                    "variant": index,
                    "ok": ok,
                    "size": len(expected) if isinstance(expected, list) else expected,
                }
            )
            if not ok:
                log(f"MISMATCH {name}[{index}]: got {str(got)[:300]} expected {str(expected)[:300]}")
    return results


def check_peer_data(catalog: Catalog, queries: dict[str, list[Variant]], firsts: dict[str, list[Any]]) -> list[dict]:
    """The peer holds the same items: its counts equal the brute-force count with no ACL."""
    everyone = {"readable": set(), "owner": set()}
    all_visible = np.ones(catalog.n, dtype=bool)
    results = []
    original = catalog.visible
    catalog.visible = lambda readable, owner: all_visible  # type: ignore[method-assign]
    try:
        for name in ("count_box_10deg", "summary_product"):
            for index, (variant, response) in enumerate(zip(queries[name], firsts.get(name, []), strict=False)):
                if index >= 3:
                    break
                expected = len(catalog.select(**everyone, **variant.check["select"]))
                got = response.get("numberMatched", response.get("context", {}).get("matched"))
                results.append({"query": f"peer:{name}", "variant": index, "ok": got == expected, "size": expected})
                if got != expected:
                    log(f"PEER MISMATCH {name}[{index}]: numberMatched {got} expected {expected}")
    finally:
        catalog.visible = original  # type: ignore[method-assign]
    return results


# ---- report ------------------------------------------------------------------------------------------
NOT_EXPRESSIBLE = {
    "summary_month_year": "no aggregation in stac-fastapi-pgstac",
    "other_org_reader": "pgstac has no ACLs",
}
APPROXIMATE = {
    "summary_product": "peer: numberMatched only (no bytes, no product list)",
    "count_box_10deg": "peer: numberMatched of a limit-1 search",
}


def report(ours: dict[str, list[float]], peer: dict[str, list[float]] | None) -> tuple[str, dict[str, Any]]:
    lines = [f"{'query':30s} {'ours p50':>9s} {'p95':>8s} {'p99':>8s} {'peer p50':>9s} {'p95':>8s} {'ratio':>7s}"]
    summary: dict[str, Any] = {}
    ratios = []
    for name, samples in ours.items():
        row = {"ours": stats(samples)}
        peer_samples = (peer or {}).get(name)
        if peer_samples:
            row["peer"] = stats(peer_samples)
            row["ratio_p50"] = round(row["ours"]["p50"] / row["peer"]["p50"], 3)
            ratios.append(row["ratio_p50"])
        elif peer is not None:
            row["peer"] = NOT_EXPRESSIBLE.get(name, "not measured")
        if name in APPROXIMATE and peer_samples:
            row["note"] = APPROXIMATE[name]
        summary[name] = row
        o = row["ours"]
        p = row.get("peer")
        peer_text = (
            f"{p['p50']:9.1f} {p['p95']:8.1f} {row['ratio_p50']:7.3f}"
            if isinstance(p, dict)
            else f"{'':9s} {'':8s} {'':7s}  " + (p or "")
        )
        lines.append(f"{name:30s} {o['p50']:9.1f} {o['p95']:8.1f} {o['p99']:8.1f} {peer_text}")
    if ratios:
        lines.append(f"median ratio ours/peer over {len(ratios)} comparable types: {statistics.median(ratios):.3f}")
    return "\n".join(lines), {"types": summary, "median_ratio": statistics.median(ratios) if ratios else None}


def targets(table: dict[str, Any], peer: bool) -> dict[str, Any]:
    types = table["types"]
    out: dict[str, Any] = {}
    out["first_page_p95_under_100ms"] = {
        name: types[name]["ours"]["p95"] < 100 for name in FIRST_PAGE_TYPES if name in types
    }
    if "page_10" in types:
        first, tenth = types["page_1"]["ours"]["p50"], types["page_10"]["ours"]["p50"]
        # "As fast as the first": within 25% or 5 ms of page 1.
        out["continuation_as_fast_as_first"] = tenth <= max(first * 1.25, first + 5)
    if "count_box_10deg" in types:
        out["count_box_under_100ms_p50"] = types["count_box_10deg"]["ours"]["p50"] < 100
    if "summary_month_year" in types:
        out["monthly_summary_under_300ms_p50"] = types["summary_month_year"]["ours"]["p50"] < 300
    if peer:
        out["every_type_no_slower_than_peer_p50"] = {
            name: row["ratio_p50"] <= 1.0 for name, row in types.items() if "ratio_p50" in row
        }
        out["median_ratio_at_most_0.5"] = table["median_ratio"] is not None and table["median_ratio"] <= 0.5
    return out


# ---- main ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1_000_000, help="catalog size (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--db", default="tessera_bench", help="our benchmark database (created if missing)")
    parser.add_argument("--peer-db", default="tessera_bench_pgstac")
    parser.add_argument("--reload", action="store_true", help="load again even if the same catalog is there")
    parser.add_argument("--peer", choices=["pgstac"], help="also measure stac-fastapi-pgstac")
    parser.add_argument("--port", type=int, default=18765, help="port for our gunicorn (started and stopped here)")
    parser.add_argument(
        "--url-port",
        type=int,
        help="measure an already running server on this port instead (it must use the --db "
        "database and the SECRET_KEY/JWT_SIGNING_KEY of this process's environment)",
    )
    parser.add_argument("--peer-port", type=int, default=18766)
    parser.add_argument("--samples", type=int, default=60, help="timed requests per query type")
    parser.add_argument("--variants", type=int, default=12, help="distinct parameter sets per query type")
    parser.add_argument("--budget", type=float, default=60.0, help="max seconds per query type (min 5 samples)")
    parser.add_argument("--check", type=int, default=4, help="variants per type checked against brute force")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args(argv)

    env = service_env()
    if "DATABASE_URL" not in env:
        log("no DATABASE_URL and bin/services.sh env printed none: start the services (make services)")
        return 2
    database_url = with_db(env["DATABASE_URL"], args.db)
    env["DATABASE_URL"] = database_url
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    env.setdefault("SECRET_KEY", "tessera-bench-secret-key-not-for-production")
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    dsn = libpq(database_url)
    workdir = ROOT / "var" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)

    ensure_database(env["DATABASE_URL"], args.db)
    migrate(env)
    django_setup(database_url, env["REDIS_URL"])
    accounts = setup_accounts()
    started = time.perf_counter()
    catalog = Catalog.generate(args.images, args.seed, owner_ns=accounts["owner_ns"])
    generate_s = round(time.perf_counter() - started, 1)
    log(f"generated {args.images:,} images in {generate_s} s ({int(catalog.crosses().sum())} cross the antimeridian)")
    load_info: dict[str, Any] = {"generate_s": generate_s}
    if args.reload or loaded(dsn) != {"n": args.images, "seed": args.seed}:
        log(f"loading {args.images:,} images into {args.db} with COPY")
        started = time.perf_counter()
        load_info.update(load_catalog(catalog=catalog, dsn=dsn, accounts=accounts))
        load_info["ours_total_s"] = round(time.perf_counter() - started, 1)
        log(f"loaded: {load_info}")
    else:
        log(f"{args.db} already holds this catalog (use --reload to load again)")
        load_info["reused"] = True
    peer_dsn = with_db(libpq(env["DATABASE_URL"]), args.peer_db)
    venv = workdir / "peer-venv"
    if args.peer:
        peer_mod.ensure_venv(venv)
        started = time.perf_counter()
        load_info["peer"] = peer_mod.load(
            catalog=catalog,
            admin_dsn=with_db(libpq(env["DATABASE_URL"]), "postgres"),
            dbname=args.peer_db,
            venv=venv,
            workdir=workdir,
            force=args.reload,
        )
        load_info["peer"]["total_s"] = round(time.perf_counter() - started, 1)
    if args.load_only:
        return 0

    tokens = issue_tokens()
    principals = {
        key: {"readable": set(user["readable"]), "owner": set(user["owner"])} for key, user in accounts["users"].items()
    }
    queries = build_queries(catalog, args.variants, args.seed)
    add_id_queries(
        queries, catalog, principals["acme"]["readable"], principals["acme"]["owner"], args.variants, args.seed
    )

    server = peer_server = None
    results: dict[str, Any] = {}
    try:
        port = args.url_port or args.port
        if not args.url_port:
            ensure_free(port)
            server = start_gunicorn(env, port, workdir / "gunicorn.log")
        wait_for(port, "/")
        headers = {"Content-Type": "application/vnd.api+json", "Accept": "application/vnd.api+json"}
        clients = {key: Client(port, {**headers, "Authorization": f"Bearer {token}"}) for key, token in tokens.items()}
        sides = [Side("ours", clients, API)]
        peer_timings = None
        if args.peer:
            ensure_free(args.peer_port)
            peer_server = peer_mod.start_server(
                venv=venv,
                admin_dsn=with_db(libpq(env["DATABASE_URL"]), "postgres"),
                dbname=args.peer_db,
                port=args.peer_port,
                logfile=workdir / "peer-uvicorn.log",
            )
            wait_for(args.peer_port, "/_mgmt/ping")
            peer_client = Client(args.peer_port, {"Content-Type": "application/json"})
            sides.append(Side("peer", {"acme": peer_client, "globex": peer_client}, "", peer_dsn=peer_dsn))
        warm_up(sides, queries)
        loadavg = {"before": os.getloadavg()[0]}
        measured = run_sides(sides, queries, samples=args.samples, budget_s=args.budget)
        loadavg["after"] = os.getloadavg()[0]
        ours, ours_firsts = measured["ours"]
        correctness = check_answers(catalog, queries, ours_firsts, principals, args.check)
        if args.peer:
            peer_timings, peer_firsts = measured["peer"]
            correctness += check_peer_data(catalog, queries, peer_firsts)
        table, summary = report(ours, peer_timings)
        print()
        print(f"{args.images:,} images, seed {args.seed}; times in ms over HTTP (client to full body)")
        print(table)
        met = targets(summary, bool(args.peer))
        failures = [c for c in correctness if not c["ok"]]
        print(f"correctness: {len(correctness) - len(failures)}/{len(correctness)} sampled answers equal brute force")
        print("1-minute load average (other work on the machine):", json.dumps(loadavg))
        print("targets:", json.dumps(met))
        with psycopg.connect(dsn) as conn:
            settings_rows = conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', "
                "'effective_cache_size', 'max_parallel_workers_per_gather', 'random_page_cost', 'jit', "
                "'server_version')"
            ).fetchall()
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        results = {
            "images": args.images,
            "seed": args.seed,
            "samples": args.samples,
            "variants": args.variants,
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git": git.stdout.strip(),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "postgres": dict(settings_rows),
            "load": load_info,
            "loadavg": loadavg,
            "results": summary,
            "targets": met,
            "correctness": {"checked": len(correctness), "failed": failures},
            "raw_ms": {
                "ours": {k: [round(v, 2) for v in vs] for k, vs in ours.items()},
                "peer": {k: [round(v, 2) for v in vs] for k, vs in (peer_timings or {}).items()},
            },
        }
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"search-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{args.images}.json"
        path.write_text(json.dumps(results, indent=1) + "\n")
        log(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        return 1 if failures else 0
    finally:
        stop(server)
        stop(peer_server)


if __name__ == "__main__":
    sys.exit(main())
