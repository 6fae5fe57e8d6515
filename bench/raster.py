"""Pixel service benchmark: tiles and npz reads of one COG, against rasterio directly and against titiler.

    .venv/bin/python bench/raster.py                   # needs `make services`; titiler is optional
    .venv/bin/python bench/raster.py --requests 100 --titiler-venv var/bench/titiler-venv

Steps: create and migrate the benchmark database (default `tessera_rasterbench` on the server of
DATABASE_URL or `bin/services.sh env`); write a 4096 × 4096 3-band uint8 COG (RGB.byte.tif resampled, DEFLATE,
512 blocks, 3 overviews — what ingest writes) into the "imagery" storage under var/bench/raster-media and
register it as an image; start three gunicorns configured as `make run` starts ours (gthread, one worker
here): ours, ours with RASTER_DATASET_CACHE_SIZE=0 (every read opens the file, as titiler does), and a bare
WSGI app serving the npz floor (bench/raster_floor_app.py); and, when --titiler-venv has titiler, titiler's
uvicorn (1 worker) on the same COG. Then, in the same run and interleaved request by request, measure p50/p95 of

* 256 × 256 PNG tiles at z10 (through the overviews) and z12 (full resolution): the same list of distinct tiles
  inside the image for every server, each requested once (z10 has only 30, so they repeat);
* a 1024 × 1024 3-band npz read at native resolution, against three floors: rasterio in-process opening the
  file for each read plus the same blosc encoding (`floor`), the same with the dataset kept open
  (`floor_warm`), and the cold floor served over HTTP by the bare app (`floor_http`);
* the same npz read reprojected to EPSG:4326 with bilinear resampling (ours only, for reference).

Results: a table on stdout and JSON in bench/results/raster-<timestamp>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.search import django_setup, ensure_database, migrate, service_env, stop, wait_for, with_db  # noqa: E402

SIZE = 4096
NPZ_WINDOW = 1024
TILE_ZOOMS = (10, 12)
RESULTS = ROOT / "bench" / "results"


def log(message: str) -> None:
    print(f"[raster-bench] {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "mean": round(statistics.fmean(values), 2),
        "n": len(values),
    }


# ---- the COG and its image ---------------------------------------------------------------------------
def write_cog(path: Path) -> None:
    """RGB.byte.tif resampled to SIZE × SIZE over the same bounds, written as ingest writes COGs."""
    import rasterio
    import rasterio.shutil
    from rasterio.enums import Resampling
    from rasterio.transform import from_bounds

    source = ROOT / "tests" / "data" / "RGB.byte.tif"
    with rasterio.open(source) as src:
        data = src.read(out_shape=(3, SIZE, SIZE), resampling=Resampling.nearest)
        profile = {
            "driver": "GTiff",
            "width": SIZE,
            "height": SIZE,
            "count": 3,
            "dtype": "uint8",
            "crs": src.crs,
            "transform": from_bounds(*src.bounds, SIZE, SIZE),
            "nodata": 0,
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
        }
    plain = path.with_suffix(".plain.tif")
    with rasterio.open(plain, "w", **profile) as dst:
        dst.write(data)
    with rasterio.open(plain) as src:
        rasterio.shutil.copy(
            src,
            path,
            driver="COG",
            COMPRESS="DEFLATE",
            BLOCKSIZE=512,
            OVERVIEWS="IGNORE_EXISTING",
            OVERVIEW_COUNT=3,
            NUM_THREADS=1,
        )
    plain.unlink()


def setup_catalog(work: Path) -> dict[str, Any]:
    """A user, a product with red/green/blue bands and the image of the COG; returns ids, token and paths."""
    from django.db import transaction

    from accounts.models import User
    from accounts.tokens import issue_access_token
    from catalogsite.geo import parse_geometry
    from imagery.models import Image
    from imagery.services import image_create
    from products.models import Product
    from products.services import band_create, product_create
    from tests.factories import make_user
    from tests.raster.helpers import footprint, store_file

    user = User.objects.filter(username="rasterbench").first() or make_user("rasterbench", org="rasterbench")
    product = Product.objects.filter(pk="rasterbench:cog").first()
    if product is None:
        with transaction.atomic():
            product = product_create(user=user, requested_id="cog", attributes={"name": "raster bench"})
            for index, name in enumerate(("red", "green", "blue")):
                band_create(
                    user=user,
                    attributes={
                        "product_id": product.pk,
                        "name": name,
                        "type": "spectral",
                        "data_type": "Byte",
                        "band_index": index,
                        "nodata": 0,
                        "data_range": [0, 255],
                        "display_range": [0, 255],
                    },
                )
    image = Image.objects.filter(pk=f"{product.pk}:scene").first()
    if image is None:
        import rasterio

        cog = work / "scene.tif"
        log(f"writing a {SIZE} x {SIZE} 3-band COG")
        write_cog(cog)
        with rasterio.open(cog) as src:
            transform, crs = src.transform, src.crs.to_string()
        files = [store_file(cog, namespace="rasterbench")]
        with transaction.atomic():
            image = image_create(
                user=user,
                attributes={
                    "product_id": product.pk,
                    "name": "scene",
                    "cs_code": crs,
                    "geotrans": list(transform.to_gdal()),
                    "x_pixels": SIZE,
                    "y_pixels": SIZE,
                    "files": files,
                    "storage_state": "available",
                    "geometry": parse_geometry(footprint(crs, transform, SIZE, SIZE)),
                    "acquired": "2020-01-01T00:00:00Z",
                },
            )
    from raster.sources import locate

    return {"image": image, "token": issue_access_token(user=user, expires_in=24 * 3600), "path": locate(image, 0).path}


# ---- servers -----------------------------------------------------------------------------------------
def start_ours(
    env: dict[str, str], port: int, logfile: Path, app: str = "catalogsite.wsgi:application"
) -> subprocess.Popen:
    """Our gunicorn as `make run` starts it (catalogsite.wsgi with its allocator tuning, gthread), one worker."""
    server_env = {**os.environ, **env, "DEBUG": "false"}
    server_env.pop("TESSERA_TESTING", None)
    return subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--timeout",
            "120",
            "--keep-alive",
            "5",
        ],
        cwd=ROOT,
        env=server_env,
        stdout=logfile.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_titiler(venv: Path, port: int, logfile: Path) -> subprocess.Popen | None:
    uvicorn = venv / "bin" / "uvicorn"
    if not uvicorn.exists():
        log(
            f"no titiler at {venv} (create it: python3 -m venv {venv} && {venv}/bin/pip install "
            "titiler.application uvicorn); tiles are measured without the peer"
        )
        return None
    env = {**os.environ, "GDAL_CACHEMAX": "200", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif"}
    return subprocess.Popen(
        [
            str(uvicorn),
            "titiler.application.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=logfile.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


class Client:
    def __init__(self, port: int, headers: dict[str, str] | None = None):
        self.port = port
        self.headers = headers or {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[float, int, bytes]:
        for attempt in range(2):
            try:
                started = time.perf_counter()
                self.conn.request(method, path, body=body, headers=self.headers)
                response = self.conn.getresponse()
                raw = response.read()
                elapsed = (time.perf_counter() - started) * 1000
                if response.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                return elapsed, response.status, raw
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                if attempt:
                    raise
        raise RuntimeError("unreachable")


def check(client: Client, method: str, path: str, body: bytes | None) -> float:
    elapsed, status, raw = client.request(method, path, body)
    if status != 200:
        raise RuntimeError(f"{method} {path} -> {status}: {raw[:300]!r}")
    return elapsed


def measure_interleaved(workloads: dict[str, Any], rounds: int) -> dict[str, list[float]]:
    """Request i of every workload in turn, round after round, so drift in the machine's speed hits all alike.

    A workload is (Client, requests) — requests cycle when there are fewer than rounds — or a callable
    (index → elapsed ms) for the in-process floors.
    """

    def run(workload, index: int) -> float:
        if callable(workload):
            return workload(index)
        client, requests = workload
        return check(client, *requests[index % len(requests)])

    for index in range(3):  # warm-up: imports, GDAL caches, connections (requests beyond the measured ones)
        for workload in workloads.values():
            run(workload, rounds + index)
    times: dict[str, list[float]] = {name: [] for name in workloads}
    for index in range(rounds):
        for name, workload in workloads.items():
            times[name].append(run(workload, index))
    return times


# ---- the workloads -------------------------------------------------------------------------------------
def interior_tiles(image, zoom: int, count: int) -> list[tuple[int, int, int]]:
    """Up to `count` distinct tiles inside the image's footprint, nearest the centre first (a map view's
    neighbourhood); both servers get the same list, and each tile is requested once unless there are fewer."""
    import morecantile
    from django.contrib.gis.geos import Polygon

    tms = morecantile.tms.get("WebMercatorQuad")
    footprint = image.geometry
    center = tms.tile(footprint.centroid.x, footprint.centroid.y, zoom)
    inside = []
    for tile in tms.tiles(*footprint.extent, zooms=[zoom]):
        b = tms.bounds(tile)
        if footprint.contains(Polygon.from_bbox((b.left, b.bottom, b.right, b.top))):
            inside.append((max(abs(tile.x - center.x), abs(tile.y - center.y)), tile.y, tile.x))
    return [(zoom, x, y) for _, y, x in sorted(inside)[:count]]


def npz_body(image, *, reproject: bool) -> bytes:
    gt = image.geotrans
    x0 = gt[0] + gt[1] * ((SIZE - NPZ_WINDOW) // 2)
    y0 = gt[3] + gt[5] * ((SIZE - NPZ_WINDOW) // 2)
    bounds = [x0, y0 + gt[5] * NPZ_WINDOW, x0 + gt[1] * NPZ_WINDOW, y0]
    body: dict[str, Any] = {
        "ids": [image.pk],
        "bands": ["red", "green", "blue"],
        "scales": None,
        "ot": "Byte",
        "srs": image.cs_code,
        "resolution": None,
        "outputBounds": bounds,
        "outputBoundsSRS": image.cs_code,
        "outsize": [NPZ_WINDOW, NPZ_WINDOW],
        "resampleAlg": "near",
        "of": "blosc",
        "mask_nodata": True,
    }
    if reproject:
        body.update(srs="EPSG:4326", resampleAlg="bilinear")
    return json.dumps(body).encode()


def direct_floor(path: str, *, warm: bool):
    """In-process floor: read the same 1024 × 1024 window of 3 bands with rasterio, compute the nodata mask and
    blosc it in 512 blocks (no HTTP, no Django, no database). Cold opens the file for every read; warm keeps
    one dataset open (its decoded blocks stay in GDAL's cache), as our server's dataset cache does."""
    import rasterio
    from rasterio.windows import Window

    from raster.encoding import block_offsets, compress

    offset = (SIZE - NPZ_WINDOW) // 2
    window = Window(offset, offset, NPZ_WINDOW, NPZ_WINDOW)
    kept = rasterio.open(path) if warm else None

    def read(_index: int) -> float:
        started = time.perf_counter()
        if kept is not None:
            data = kept.read(window=window)
        else:
            with rasterio.open(path) as src:
                data = src.read(window=window)
        mask = data == 0
        for y, x, h, w in block_offsets(NPZ_WINDOW, NPZ_WINDOW):
            compress(data[:, y : y + h, x : x + w])
            compress(mask[:, y : y + h, x : x + w])
        return (time.perf_counter() - started) * 1000

    return read


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="tessera_rasterbench")
    parser.add_argument("--requests", type=int, default=60, help="measured requests per workload")
    parser.add_argument("--port", type=int, default=8775, help="our gunicorn (started and stopped here)")
    parser.add_argument("--titiler-port", type=int, default=8776)
    parser.add_argument("--titiler-venv", type=Path, default=ROOT / "var" / "bench" / "titiler-venv")
    args = parser.parse_args(argv)

    env = service_env()
    if "DATABASE_URL" not in env:
        log("no DATABASE_URL and bin/services.sh env printed none: start the services (make services)")
        return 2
    work = ROOT / "var" / "bench" / "raster"
    work.mkdir(parents=True, exist_ok=True)
    database_url = with_db(env["DATABASE_URL"], args.database)
    env = {
        **env,
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(work / "media"),
        "SECRET_KEY": "tessera-bench-secret-key-not-for-production",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    os.environ.update({"MEDIA_ROOT": env["MEDIA_ROOT"]})
    ensure_database(env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres", args.database)
    migrate(env)
    django_setup(database_url, env.get("REDIS_URL", ""))
    catalog = setup_catalog(work)
    image, path = catalog["image"], catalog["path"]

    from django.conf import settings as django_settings

    from catalogsite.allocator import tune_allocator

    # The floors run in this process: give them the allocator settings our web processes use (catalogsite.wsgi).
    tune_allocator(
        mmap_threshold_mb=django_settings.WEB_MALLOC_MMAP_THRESHOLD_MB,
        trim_threshold_mb=django_settings.WEB_MALLOC_TRIM_THRESHOLD_MB,
    )
    servers: list[subprocess.Popen | None] = []
    results: dict[str, Any] = {}
    try:
        servers.append(start_ours(env, args.port, work / "gunicorn.log"))
        # The same server with RASTER_DATASET_CACHE_SIZE=0: every read opens the file, as titiler does.
        nocache_port = args.port + 2
        servers.append(start_ours({**env, "RASTER_DATASET_CACHE_SIZE": "0"}, nocache_port, work / "gunicorn-nc.log"))
        # The floor behind the same gunicorn: HTTP transport without Django, database or access control.
        floor_port = args.port + 4
        offset = (SIZE - NPZ_WINDOW) // 2
        floor_env = {**env, "RASTER_FLOOR_PATH": path, "RASTER_FLOOR_WINDOW": f"{offset},{offset},{NPZ_WINDOW}"}
        servers.append(
            start_ours(floor_env, floor_port, work / "gunicorn-floor.log", app="bench.raster_floor_app:application")
        )
        titiler = start_titiler(args.titiler_venv, args.titiler_port, work / "titiler.log")
        servers.append(titiler)
        wait_for(args.port, "/raster/v2/npz")
        wait_for(nocache_port, "/raster/v2/npz")
        wait_for(floor_port, "/")
        if titiler is not None:
            wait_for(args.titiler_port, "/healthz")
        headers = {"Authorization": f"Bearer {catalog['token']}", "Content-Type": "application/json"}
        client, nocache = Client(args.port, headers), Client(nocache_port, headers)
        peer = Client(args.titiler_port) if titiler is not None else None
        for zoom in TILE_ZOOMS:
            tiles = interior_tiles(image, zoom, args.requests)
            log(f"tiles z{zoom}: {len(tiles)} distinct interior tiles, {args.requests} requests per server")
            mine = [
                (
                    "GET",
                    f"/raster/v2/tiles/{z}/{x}/{y}.png?" + urlencode({"image": image.pk, "bands": "red,green,blue"}),
                    None,
                )
                for z, x, y in tiles
            ]
            workloads: dict[str, Any] = {"ours": (client, mine), "ours_nocache": (nocache, mine)}
            if peer is not None:
                theirs = [
                    ("GET", f"/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url={quote(path)}&bidx=1&bidx=2&bidx=3", None)
                    for z, x, y in tiles
                ]
                workloads["titiler"] = (peer, theirs)
            for name, times in measure_interleaved(workloads, args.requests).items():
                results[f"tile_z{zoom}_{name}"] = summary(times)
        log("npz 1024 x 1024 x 3 at the native grid: ours, ours without dataset cache, floors cold and warm")
        native = [("POST", "/raster/v2/npz", npz_body(image, reproject=False))]
        npz_times = measure_interleaved(
            {
                "ours": (client, native),
                "ours_nocache": (nocache, native),
                "floor": direct_floor(path, warm=False),
                "floor_http": (Client(floor_port), [("POST", "/", b"{}")]),
                "floor_warm": direct_floor(path, warm=True),
            },
            args.requests,
        )
        for name, times in npz_times.items():
            results[f"npz_native_{name}"] = summary(times)
        log("npz 1024 x 1024 x 3 reprojected to EPSG:4326, bilinear: ours")
        reprojected = [("POST", "/raster/v2/npz", npz_body(image, reproject=True))]
        results["npz_reprojected_ours"] = summary(
            measure_interleaved({"ours": (client, reprojected)}, args.requests)["ours"]
        )
    finally:
        for server in servers:
            stop(server)

    print()
    print(f"{'workload':<34}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for name, stats in results.items():
        print(f"{name:<34}{stats['p50']:>10.2f}{stats['p95']:>10.2f}{stats['mean']:>10.2f}")
    ratios = {}
    for zoom in TILE_ZOOMS:
        if f"tile_z{zoom}_titiler" in results:
            for name in ("ours", "ours_nocache"):
                ratios[f"tile_z{zoom}_{name}/titiler_p50"] = round(
                    results[f"tile_z{zoom}_{name}"]["p50"] / results[f"tile_z{zoom}_titiler"]["p50"], 2
                )
    ratios["npz_ours/floor_warm_p50"] = round(
        results["npz_native_ours"]["p50"] / results["npz_native_floor_warm"]["p50"], 2
    )
    ratios["npz_floor_http/floor_p50"] = round(
        results["npz_native_floor_http"]["p50"] / results["npz_native_floor"]["p50"], 2
    )
    ratios["npz_ours_nocache/floor_http_p50"] = round(
        results["npz_native_ours_nocache"]["p50"] / results["npz_native_floor_http"]["p50"], 2
    )
    ratios["npz_ours_nocache/floor_p50"] = round(
        results["npz_native_ours_nocache"]["p50"] / results["npz_native_floor"]["p50"], 2
    )
    print()
    for name, value in ratios.items():
        print(f"{name:<34}{value:>10.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"raster-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "results": results,
                "ratios": ratios,
                "requests": args.requests,
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                "cog": {"size": SIZE, "bands": 3, "dtype": "uint8", "block": 512, "overviews": 3},
                "config": {
                    name: getattr(django_settings, name)
                    for name in ("RASTER_TILE_PNG_ZLEVEL", "RASTER_DATASET_CACHE_SIZE", "WEB_MALLOC_MMAP_THRESHOLD_MB")
                },
            },
            indent=2,
        )
    )
    log(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
