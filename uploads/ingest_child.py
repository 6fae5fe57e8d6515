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
    raw = sys.stdin.read()
    try:
        from uploads import ingest

        request = ingest.IngestRequest.from_dict(json.loads(raw))
        result = ingest.run(request)
        document = {"ok": True, "result": result.to_dict()}
    except MemoryError:
        document = {"ok": False, "kind": "resource",
                    "message": "processing the file needs more memory than the ingest limit allows."}
    except Exception as exc:  # noqa: BLE001 - every outcome must reach the parent as one JSON document
        from uploads.ingest import InvalidRaster, RasterTooLarge

        if isinstance(exc, RasterTooLarge):
            document = {"ok": False, "kind": "resource", "message": str(exc)}
        elif isinstance(exc, InvalidRaster):
            document = {"ok": False, "kind": "invalid", "message": str(exc)}
        else:
            traceback.print_exc(file=sys.stderr)
            document = {"ok": False, "kind": "internal",
                        "message": f"unexpected {type(exc).__name__} while processing the file."}
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
