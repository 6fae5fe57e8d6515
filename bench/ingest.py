"""Ingest benchmark: upload→success latency and pipeline throughput, against the bare COG conversion.

    .venv/bin/python bench/ingest.py                 # defaults: 5 pairs, 6 big images, 5 latency samples
    .venv/bin/python bench/ingest.py --pairs 8 --images 10 --latency-samples 10

What it does, in one run on this machine:
1. writes the test rasters into a scratch directory: a 4-band uint16 2048x2048 GeoTIFF (smooth terrain-like
   bands plus sensor noise, DEFLATE, tiled) and a small one (tests/data/rgb-byte-tenth.tif);
2. measures the floor: the bare conversion of the big file to a COG with overviews [2, 4, 8] (AVERAGE,
   DEFLATE, 512 blocks) by rio-cogeo's `cog_translate` and by GDAL's COG driver (what ingest calls) —
   each the median of several runs, in this process, warm;
3. creates a throw-away test database (Django's test-database machinery, migrated), starts one real
   worker process (`manage.py rundramatiq --processes 1 --threads 1`) on its own queue names, and drives
   the real upload protocol through Django's test client (create, streamed PUT, PATCH pending);
4. latency: for the small file, from the first request to the moment `success` is visible, with the
   worker idle in between (median of --latency-samples);
5. pairs (robust to the load of a shared machine): --pairs times, the bare conversions immediately followed
   by one big upload from `pending` to visible `success`; the median of the per-pair ratios is reported;
6. throughput: --images uploads of the big file enqueued at once; pipeline time per image = wall time
   from the first `pending` to the last `success` divided by the count; images/minute/worker process.
Prints a table and writes JSON to bench/results/ingest-<timestamp>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIG_SIZE = 2048
OVERVIEWS = [2, 4, 8]


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def service_env() -> dict[str, str]:
    """DATABASE_URL / REDIS_URL: from the environment, else from `bin/services.sh env`."""
    env = {}
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        out = subprocess.run([str(ROOT / "bin" / "services.sh"), "env"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            line = line.removeprefix("export ").strip()
            if "=" in line:
                key, value = line.split("=", 1)
                env[key] = value.strip("'\"")
    found = {key: os.environ.get(key) or env.get(key, "") for key in ("DATABASE_URL", "REDIS_URL")}
    # Django's test-database machinery creates test_<name>; a name of our own never collides with test runs.
    if found["DATABASE_URL"]:
        found["DATABASE_URL"] = found["DATABASE_URL"].rsplit("/", 1)[0] + "/tessera_bench_ingest"
    return found


def make_big_raster(path: Path) -> None:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(42)
    yy, xx = np.mgrid[0:BIG_SIZE, 0:BIG_SIZE].astype("float32")
    bands = []
    for band in range(4):
        terrain = (np.sin(xx / (60 + 7 * band)) + np.cos(yy / (85 - 5 * band)) + np.sin((xx + yy) / 400)) * 6000
        bands.append((terrain + 22000 + rng.normal(0, 250, terrain.shape)).astype("uint16"))
    profile = {
        "driver": "GTiff",
        "width": BIG_SIZE,
        "height": BIG_SIZE,
        "count": 4,
        "dtype": "uint16",
        "crs": "EPSG:32618",
        "transform": from_origin(500000, 4500000, 10, 10),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.stack(bands))


def measure_floor(source: Path, scratch: Path, runs: int) -> dict[str, float]:
    """Median seconds of the bare conversion by rio-cogeo and by GDAL's COG driver (ingest's settings)."""
    import rasterio
    import rasterio.shutil
    from rio_cogeo.cogeo import cog_translate
    from rio_cogeo.profiles import cog_profiles

    timings: dict[str, list[float]] = {"rio_cogeo": [], "gdal_cog": []}
    with rasterio.Env(GDAL_NUM_THREADS=1, GDAL_CACHEMAX=256):
        for run in range(runs + 1):  # the first round warms caches and is discarded
            target = scratch / f"floor-{run}.tif"
            started = time.perf_counter()
            cog_translate(
                str(source),
                str(target),
                cog_profiles.get("deflate"),
                overview_level=len(OVERVIEWS),
                overview_resampling="average",
                quiet=True,
                config={"GDAL_NUM_THREADS": 1},
            )
            rio = time.perf_counter() - started
            target.unlink()
            started = time.perf_counter()
            with rasterio.open(source, driver="GTiff") as src:
                rasterio.shutil.copy(
                    src,
                    target,
                    driver="COG",
                    COMPRESS="DEFLATE",
                    BLOCKSIZE=512,
                    NUM_THREADS=1,
                    OVERVIEWS="IGNORE_EXISTING",
                    OVERVIEW_COUNT=len(OVERVIEWS),
                    OVERVIEW_RESAMPLING="AVERAGE",
                )
            gdal = time.perf_counter() - started
            target.unlink()
            if run:
                timings["rio_cogeo"].append(rio)
                timings["gdal_cog"].append(gdal)
    return {name: statistics.median(values) for name, values in timings.items()}


class Bench:
    """The Django side: a migrated throw-away database, a user with a product, the upload protocol."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}-"
        os.environ.update(
            {
                "TESSERA_TESTING": "1",
                "DRAMATIQ_QUEUE_PREFIX": self.prefix,
                "MEDIA_ROOT": str(scratch / "media"),
                "UPLOAD_SPOOL_DIR": str(scratch / "spool"),
                "INGEST_WORK_DIR": str(scratch / "work"),
                "INGEST_REAPER_AUTOSTART": "false",
                "DJANGO_SETTINGS_MODULE": "catalogsite.settings",
                "LOG_LEVEL": "WARNING",
            }
        )
        import django

        django.setup()
        from django.test.utils import setup_databases, setup_test_environment

        setup_test_environment()
        self.old_config = setup_databases(verbosity=0, interactive=False, keepdb=False)
        from django.db import connection

        self.database = connection.settings_dict["NAME"]
        self.worker: subprocess.Popen | None = None

    def start_worker(self) -> None:
        from django.db import connection

        from uploads.tasks import INGEST_QUEUE

        params = connection.settings_dict
        password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
        # An idle dramatiq consumer polls Redis with a backoff of up to dramatiq_worker_timeout ms (default
        # 1000): that is pickup latency. Ingest workers are meant to run with 100 (see bench/README.md).
        env = {
            **os.environ,
            "dramatiq_worker_timeout": os.environ.get("dramatiq_worker_timeout", "100"),
            "DATABASE_URL": f"postgis://{params['USER']}{password}@{params['HOST'] or '127.0.0.1'}:"
            f"{params['PORT'] or 5432}/{self.database}",
        }
        self.worker_log = open(self.scratch / "worker.log", "wb")  # noqa: SIM115 - closed in close()
        self.worker = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "rundramatiq",
                "--processes",
                "1",
                "--threads",
                "1",
                "--skip-checks",
                "--queues",
                INGEST_QUEUE,
            ],
            cwd=ROOT,
            env=env,
            stdout=self.worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        time.sleep(3)  # let it import and connect; the first upload would otherwise pay for it

    def client(self):
        from django.conf import settings
        from django.db import transaction
        from rest_framework.test import APIClient

        from accounts.tokens import issue_access_token
        from products.services import band_create, product_create
        from tests.factories import make_user

        user = make_user("bench", org="bench")
        self.products = {}
        with transaction.atomic():
            self._products(user, product_create, band_create)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_access_token(user=user)}")
        self.api = client
        self.prefix_url = f"/{settings.CATALOG_URL_PREFIX}"

    def _products(self, user, product_create, band_create) -> None:
        for name, bands in (
            ("big", [(f"b{i}", "UInt16", i) for i in range(4)]),
            ("small", [(n, "Byte", i) for i, n in enumerate(("red", "green", "blue"))]),
        ):
            product = product_create(user=user, requested_id=f"bench-{name}", attributes={"name": name})
            for band_name, data_type, index in bands:
                band_create(
                    user=user,
                    attributes={
                        "product_id": product.pk,
                        "name": band_name,
                        "type": "spectral",
                        "data_type": data_type,
                        "band_index": index,
                    },
                )
            self.products[name] = product.pk

    def upload(self, product: str, name: str, payload: bytes, options: dict[str, Any]) -> str:
        from django.test import Client

        attributes = {"name": name, "product_id": self.products[product], "acquired": "2024-01-01"}
        body = {
            "data": {
                "type": "image_upload",
                "attributes": {
                    "image": {
                        "data": {"type": "image", "id": f"{self.products[product]}:{name}", "attributes": attributes}
                    },
                    "image_id": f"{self.products[product]}:{name}",
                    "image_upload_options": {"upload_type": "file", "image_files": [f"/tmp/{name}.tif"], **options},
                },
            }
        }
        created = self.api.post(f"{self.prefix_url}/uploads_v2?include=events", body, format="json")
        assert created.status_code == 201, created.content
        data = created.json()["data"]
        url = urlsplit(data["attributes"]["resumable_urls"][0])
        put = Client().generic("PUT", f"{url.path}?{url.query}", data=payload, content_type="application/octet-stream")
        assert put.status_code == 200, put.content
        return data["id"]

    def pending(self, upload_id: str) -> None:
        body = {"data": {"type": "image_upload", "id": upload_id, "attributes": {"status": "pending"}}}
        response = self.api.patch(f"{self.prefix_url}/uploads_v2/{upload_id}?include=events", body, format="json")
        assert response.status_code == 200, response.content

    def wait(self, upload_ids: list[str], timeout: float = 600) -> dict[str, float]:
        """Poll until every upload is terminal; returns the monotonic time each reached success."""
        from uploads.models import ImageUpload

        done: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(done) < len(upload_ids):
            rows = ImageUpload.objects.filter(pk__in=[u for u in upload_ids if u not in done]).values_list(
                "pk", "status"
            )
            for pk, status in rows:
                if status == "failure":
                    messages = list(ImageUpload.objects.get(pk=pk).events.values_list("message", flat=True))
                    raise RuntimeError(f"upload {pk} failed: {messages}")
                if status == "success":
                    done[pk] = time.monotonic()
            if time.monotonic() > deadline:
                raise RuntimeError("timed out waiting for uploads")
            time.sleep(0.01)
        return done

    def run_seconds(self, upload_ids: list[str]) -> list[float]:
        """Per upload: run→complete (the worker's share) and the child's own conversion time."""
        from uploads.models import ImageUploadEvent

        out = []
        for upload_id in upload_ids:
            events = {e.event_type: e for e in ImageUploadEvent.objects.filter(upload_id=upload_id)}
            out.append((events["complete"].event_datetime - events["run"].event_datetime).total_seconds())
        return out

    def close(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)
            try:
                self.worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker_log.close()
        import dramatiq

        from uploads.tasks import INGEST_QUEUE

        dramatiq.get_broker().flush(INGEST_QUEUE)
        from django.db import connections
        from django.test.utils import teardown_databases

        connections.close_all()
        teardown_databases(self.old_config, verbosity=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=6, help="big uploads for the throughput run")
    parser.add_argument("--latency-samples", type=int, default=5)
    parser.add_argument("--floor-runs", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=5, help="bare conversion / single pipeline image pairs")
    args = parser.parse_args()
    os.environ.update({k: v for k, v in service_env().items() if v})
    scratch = Path(tempfile.mkdtemp(prefix="tessera-bench-ingest-"))
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "started": dt.datetime.now(dt.UTC).isoformat(),
    }
    bench = None
    try:
        big = scratch / "big.tif"
        log(f"writing a 4-band uint16 {BIG_SIZE}x{BIG_SIZE} GeoTIFF")
        make_big_raster(big)
        small = ROOT / "tests" / "data" / "rgb-byte-tenth.tif"
        results["files"] = {"big_bytes": big.stat().st_size, "small_bytes": small.stat().st_size}

        log("floor: bare conversion (rio-cogeo and GDAL COG driver)")
        floor_before = measure_floor(big, scratch, args.floor_runs)

        bench = Bench(scratch)
        bench.client()
        bench.start_worker()

        log(f"latency: {args.latency_samples} small uploads, one at a time, idle worker")
        latencies = []
        small_bytes = small.read_bytes()
        for index in range(args.latency_samples):
            time.sleep(1.0)  # the worker is idle when the upload starts
            started = time.monotonic()
            upload_id = bench.upload("small", f"small-{index}", small_bytes, {})
            bench.pending(upload_id)
            finished = bench.wait([upload_id])[upload_id]
            latencies.append(finished - started)

        big_bytes = big.read_bytes()
        overview_options = {"overviews": OVERVIEWS, "overview_resampler": "average"}
        log(f"paired: {args.pairs} x (bare conversions, then one pipeline image with the worker idle)")
        pairs = []
        for index in range(args.pairs):
            floor = measure_floor(big, scratch, 1)
            upload_id = bench.upload("big", f"pair-{index}", big_bytes, overview_options)
            time.sleep(1.0)
            started = time.monotonic()
            bench.pending(upload_id)
            seconds = bench.wait([upload_id])[upload_id] - started
            pairs.append({"rio_cogeo": floor["rio_cogeo"], "gdal_cog": floor["gdal_cog"], "pipeline": seconds})

        log(f"throughput: {args.images} big uploads enqueued together, one worker process")
        ids = [bench.upload("big", f"big-{index}", big_bytes, overview_options) for index in range(args.images)]
        started = time.monotonic()
        for upload_id in ids:
            bench.pending(upload_id)
        done = bench.wait(ids)
        wall = max(done.values()) - started
        per_image = wall / len(ids)
        run_seconds = bench.run_seconds(ids)

        log("floor again (after the pipeline runs, to catch drift)")
        floor_after = measure_floor(big, scratch, args.floor_runs)
        floor = {
            name: statistics.median([floor_before[name], floor_after[name], *[p[name] for p in pairs]])
            for name in floor_before
        }
        paired_rio = statistics.median(p["pipeline"] / p["rio_cogeo"] for p in pairs)
        paired_gdal = statistics.median(p["pipeline"] / p["gdal_cog"] for p in pairs)

        results.update(
            {
                "floor_seconds": floor,
                "floor_before": floor_before,
                "floor_after": floor_after,
                "pairs": pairs,
                "latency_small_seconds": {
                    "median": statistics.median(latencies),
                    "max": max(latencies),
                    "samples": latencies,
                },
                "pipeline_single_image_seconds": statistics.median(p["pipeline"] for p in pairs),
                "ratio_paired_pipeline_to_rio_cogeo": paired_rio,
                "ratio_paired_pipeline_to_gdal_cog": paired_gdal,
                "throughput": {
                    "images": len(ids),
                    "wall_seconds": wall,
                    "seconds_per_image": per_image,
                    "images_per_minute_per_worker": 60 / per_image,
                    "worker_run_to_complete_median": statistics.median(run_seconds),
                },
                "ratio_batch_to_gdal_cog": per_image / floor["gdal_cog"],
                "ratio_batch_to_rio_cogeo": per_image / floor["rio_cogeo"],
            }
        )
    finally:
        if bench is not None:
            bench.close()
        shutil.rmtree(scratch, ignore_errors=True)

    print()
    print(f"{'measure':<52}{'value':>12}")
    rows = [
        ("bare conversion, rio-cogeo cog_translate (s)", results["floor_seconds"]["rio_cogeo"]),
        ("bare conversion, GDAL COG driver (s)", results["floor_seconds"]["gdal_cog"]),
        ("pipeline, one image, idle worker (s)", results["pipeline_single_image_seconds"]),
        ("  paired ratio to rio-cogeo (target <= 1.3)", results["ratio_paired_pipeline_to_rio_cogeo"]),
        ("  paired ratio to GDAL COG (target <= 1.3)", results["ratio_paired_pipeline_to_gdal_cog"]),
        ("pipeline, batch, per image, 1 worker process (s)", results["throughput"]["seconds_per_image"]),
        ("  batch ratio to rio-cogeo", results["ratio_batch_to_rio_cogeo"]),
        ("  batch ratio to GDAL COG", results["ratio_batch_to_gdal_cog"]),
        ("throughput (images/minute/worker process)", results["throughput"]["images_per_minute_per_worker"]),
        ("small file upload->success, median (s, target < 2)", results["latency_small_seconds"]["median"]),
        ("small file upload->success, max (s)", results["latency_small_seconds"]["max"]),
    ]
    for label, value in rows:
        print(f"{label:<52}{value:>12.3f}")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"ingest-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    log(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
