"""A stand-in for the ingest child that reports what it can see: environment, limits, network, its pid."""

import json
import os
import resource
import socket
import sys

request = json.loads(sys.stdin.read() or "{}")
try:
    with socket.create_connection(("127.0.0.1", int(request.get("port", 1))), timeout=2):
        network = "connected"
except OSError as exc:
    network = f"refused: {exc.errno}"
report = {
    "environment": dict(os.environ),
    "limits": {
        name: resource.getrlimit(getattr(resource, name))[0]
        for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_CORE")
    },
    "network": network,
    "pid": os.getpid(),
}
sys.stdout.write(json.dumps({"ok": True, "result": report}) + "\n")
