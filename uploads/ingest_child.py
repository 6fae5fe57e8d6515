"""Entry point of the sandboxed ingest child: `python -m uploads.ingest_child` (JSON request on stdin).

The parent (`uploads.sandbox`) starts this with resource limits, a minimal environment (the GDAL
settings of security notes §2.5, no database, broker or storage credentials) and, where the kernel
allows it, without network. It prints exactly one JSON document on stdout:

    {"ok": true, "result": {...}}                       the upload was converted
    {"ok": false, "kind": "invalid", "message": "..."}  the content is unusable (permanent)
    {"ok": false, "kind": "resource", "message": ...}   a limit was hit (permanent)
    {"ok": false, "kind": "internal", "message": ...}   an unexpected error (logged by the parent)

Django is never imported here.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    ingest = None
    import_error: BaseException | None = None
    try:
        # Loaded before the request is read: a pre-started child has GDAL ready when its job arrives.
        from uploads import ingest
    except (Exception, MemoryError) as exc:  # noqa: BLE001 - reported as the job's outcome, below
        import_error = exc
        traceback.print_exc(file=sys.stderr)
    raw = sys.stdin.read()
    if ingest is None:
        kind = "resource" if isinstance(import_error, MemoryError) else "internal"
        document = {
            "ok": False,
            "kind": kind,
            "message": "the raster libraries could not be loaded within the ingest limits.",
        }
    else:
        document = _run(ingest, raw)
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()
    return 0


def _run(ingest, raw: str) -> dict:
    try:
        result = ingest.run(ingest.IngestRequest.from_dict(json.loads(raw)))
        return {"ok": True, "result": result.to_dict()}
    except MemoryError:
        return {
            "ok": False,
            "kind": "resource",
            "message": "processing the file needs more memory than the ingest limit allows.",
        }
    except ingest.RasterTooLarge as exc:
        return {"ok": False, "kind": "resource", "message": str(exc)}
    except ingest.InvalidRaster as exc:
        return {"ok": False, "kind": "invalid", "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - every outcome must reach the parent as one JSON document
        traceback.print_exc(file=sys.stderr)
        return {
            "ok": False,
            "kind": "internal",
            "message": f"unexpected {type(exc).__name__} while processing the file.",
        }


if __name__ == "__main__":
    sys.exit(main())
