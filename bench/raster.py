"""Pixel service benchmark: tiles and npz reads of one COG, against rasterio directly and against titiler.

    .venv/bin/python bench/raster.py                   # needs `make services`; titiler is optional
    .venv/bin/python bench/raster.py --requests 100 --titiler-venv var/bench/titiler-venv

Steps: create and migrate the benchmark database (default `tessera_rasterbench` on the server of
DATABASE_URL or `bin/services.sh env`); write a 4096 × 4096 3-band uint8 COG (RGB.byte.tif resampled, DEFLATE,
512 blocks, 3 overviews — what ingest writes) into the "imagery" storage under var/bench/raster-media and
register it as an image; start our gunicorn (1 sync worker) and, when --titiler-venv has titiler, titiler's
uvicorn (1 worker) on the same COG; then, in the same run, measure p50/p95 of

* 256 × 256 PNG tiles (z 10, through the overviews, and z 12, full resolution): ours vs titiler;
* a 1024 × 1024 3-band npz read at native resolution: ours over HTTP vs the floor of reading the same window
  with rasterio in-process plus the same blosc compression (no HTTP, no JSON, no database);
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
def start_ours(env: dict[str, str], port: int, logfile: Path) -> subprocess.Popen:
    server_env = {**os.environ, **env, "DEBUG": "false"}
    server_env.pop("TESSERA_TESTING", None)
    return subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "catalogsite.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
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


def measure(client: Client, requests: list[tuple[str, str, bytes | None]], rounds: int) -> list[float]:
    for method, path, body in requests[:3]:  # warm-up: imports, GDAL caches, connection
        _, status, raw = client.request(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path} -> {status}: {raw[:300]!r}")
    times = []
    for index in range(rounds):
        method, path, body = requests[index % len(requests)]
        elapsed, status, raw = client.request(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path} -> {status}: {raw[:300]!r}")
        times.append(elapsed)
    return times


# ---- the workloads -------------------------------------------------------------------------------------
def interior_tiles(image, zoom: int, count: int) -> list[tuple[int, int, int]]:
    """Tiles well inside the image's valid area (so both servers read full tiles)."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    centroid = image.geometry.centroid
    center = tms.tile(centroid.x, centroid.y, zoom)
    tiles = [(zoom, center.x + dx, center.y + dy) for dy in range(-2, 3) for dx in range(-2, 3)]
    return tiles[:count]


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


def direct_floor(path: str, rounds: int) -> list[float]:
    """Open the COG, read the same 1024 × 1024 window of 3 bands, compute the mask, blosc it in 512 blocks."""
    import rasterio
    from rasterio.windows import Window

    from raster.encoding import block_offsets, compress

    offset = (SIZE - NPZ_WINDOW) // 2
    times = []
    for _ in range(rounds + 3):
        started = time.perf_counter()
        with rasterio.open(path) as src:
            data = src.read(window=Window(offset, offset, NPZ_WINDOW, NPZ_WINDOW))
        mask = data == 0
        for y, x, h, w in block_offsets(NPZ_WINDOW, NPZ_WINDOW):
            compress(data[:, y : y + h, x : x + w])
            compress(mask[:, y : y + h, x : x + w])
        times.append((time.perf_counter() - started) * 1000)
    return times[3:]


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

    ours = titiler = None
    results: dict[str, Any] = {}
    try:
        ours = start_ours(env, args.port, work / "gunicorn.log")
        titiler = start_titiler(args.titiler_venv, args.titiler_port, work / "titiler.log")
        wait_for(args.port, "/raster/v2/npz")
        if titiler is not None:
            wait_for(args.titiler_port, "/healthz")
        client = Client(args.port, {"Authorization": f"Bearer {catalog['token']}", "Content-Type": "application/json"})
        peer = Client(args.titiler_port) if titiler is not None else None
        for zoom in TILE_ZOOMS:
            tiles = interior_tiles(image, zoom, 16)
            mine = [
                (
                    "GET",
                    f"/raster/v2/tiles/{z}/{x}/{y}.png?" + urlencode({"image": image.pk, "bands": "red,green,blue"}),
                    None,
                )
                for z, x, y in tiles
            ]
            log(f"tiles z{zoom}: ours")
            results[f"tile_z{zoom}_ours"] = summary(measure(client, mine, args.requests))
            if peer is not None:
                theirs = [
                    ("GET", f"/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url={quote(path)}&bidx=1&bidx=2&bidx=3", None)
                    for z, x, y in tiles
                ]
                log(f"tiles z{zoom}: titiler")
                results[f"tile_z{zoom}_titiler"] = summary(measure(peer, theirs, args.requests))
        log("npz 1024 x 1024 x 3: ours (native grid)")
        results["npz_native_ours"] = summary(
            measure(client, [("POST", "/raster/v2/npz", npz_body(image, reproject=False))], args.requests)
        )
        log("npz 1024 x 1024 x 3: rasterio window read + blosc (floor)")
        results["npz_native_floor"] = summary(direct_floor(path, args.requests))
        log("npz 1024 x 1024 x 3 reprojected to EPSG:4326, bilinear: ours")
        results["npz_reprojected_ours"] = summary(
            measure(client, [("POST", "/raster/v2/npz", npz_body(image, reproject=True))], args.requests)
        )
    finally:
        stop(ours)
        stop(titiler)

    print()
    print(f"{'workload':<34}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for name, stats in results.items():
        print(f"{name:<34}{stats['p50']:>10.2f}{stats['p95']:>10.2f}{stats['mean']:>10.2f}")
    ratios = {}
    for zoom in TILE_ZOOMS:
        if f"tile_z{zoom}_titiler" in results:
            ratios[f"tile_z{zoom}_ours/titiler_p50"] = round(
                results[f"tile_z{zoom}_ours"]["p50"] / results[f"tile_z{zoom}_titiler"]["p50"], 2
            )
    ratios["npz_ours/floor_p50"] = round(results["npz_native_ours"]["p50"] / results["npz_native_floor"]["p50"], 2)
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
            },
            indent=2,
        )
    )
    log(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
