"""The unmodified descarteslabs 3.2.2 client reading pixels from a live server (part of `make test`).

Reuses the compatibility suite's live server and flow runner (tests/compat/conftest.py) with this app's flow
scripts (tests/raster/flows/), and the upload tests' ingest worker, so the images are real ingested COGs.
"""

from __future__ import annotations

import pytest

import tests.compat.conftest as compat
from tests.compat.conftest import compat_server, exchange_log, live_server, run_flow  # noqa: F401 - fixtures
from tests.factories import make_user
from tests.raster.helpers import RGB
from tests.uploads.conftest import ingest_worker, session_ingest_worker  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db(transaction=True)]

FLOWS = compat.Path(__file__).resolve().parent / "flows"


@pytest.fixture
def pixel_flows(monkeypatch, settings, tmp_path, ingest_worker):  # noqa: F811 - the imported fixture
    """`run_flow` on this app's flows, with ingest scratch space in tmp_path."""
    monkeypatch.setattr(compat, "FLOWS_DIR", FLOWS)
    settings.UPLOAD_SPOOL_DIR = str(tmp_path / "spool")
    settings.INGEST_WORK_DIR = str(tmp_path / "work")
    return tmp_path


def test_pixels_with_the_real_client(run_flow, pixel_flows):  # noqa: F811
    alice = make_user("alice", org="pixel-org")
    workdir = pixel_flows / "flow"
    workdir.mkdir()
    run_flow("pixels", alice, COMPAT_RGB=str(RGB), COMPAT_WORKDIR=str(workdir), timeout=240).assert_ok()
