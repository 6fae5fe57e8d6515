"""The unmodified descarteslabs 3.2.2 client runs the user guide's upload flows against a live server + worker.

The live server and its exchange log are the compatibility suite's fixtures (tests/compat); the flow
script runs in its own process, configured by environment variables only, like a user's shell.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compat.conftest import compat_server, exchange_log, live_server  # noqa: F401 - fixtures reused
from tests.factories import make_user
from tests.uploads.helpers import DATA

pytestmark = pytest.mark.django_db(transaction=True)
FLOWS = Path(__file__).parent / "flows"


def run_flow(name: str, *, server, token: str, home: Path, timeout: float = 400) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DESCARTESLABS_") and key not in ("CLIENT_ID", "CLIENT_SECRET")
    }
    environment.update(
        {
            "HOME": str(home),
            "DESCARTESLABS_CATALOG_V2_URL": server.catalog_url,
            "DESCARTESLABS_RASTER_URL": server.raster_url,
            "DESCARTESLABS_IAM_URL": server.url,
            "DESCARTESLABS_NO_JWT_CACHE": "true",
            "DESCARTESLABS_TOKEN": token,
            "UPLOAD_DATA": str(DATA),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return subprocess.run(
        [sys.executable, str(FLOWS / f"{name}.py")],
        cwd=home,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_seed_upload_flows_with_the_real_client(
    compat_server,  # noqa: F811 - the fixture imported above
    exchange_log,  # noqa: F811
    ingest_worker,
    token_for,  # noqa: F811
    tmp_path,
):
    alice = make_user("alice", org="upload-flows")
    result = run_flow("seed_uploads", server=compat_server, token=token_for(alice), home=tmp_path)
    report = "\n".join(
        [
            f"exit {result.returncode}",
            "--- stdout ---",
            result.stdout,
            "--- stderr ---",
            result.stderr[-6000:],
            exchange_log.report(),
        ]
    )
    assert result.returncode == 0 and result.stdout.rstrip().endswith("FLOW OK"), report
    # the transfers went through the unauthenticated capability URLs
    puts = [e for e in exchange_log.exchanges if e.method == "PUT" and "/files/" in e.path]
    assert puts and all(e.status == 200 for e in puts), report
    assert not exchange_log.server_errors(), report
