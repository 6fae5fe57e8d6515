"""Fixtures of the raster tests: storage in tmp_path, two organizations, an RGB product and its image."""

from __future__ import annotations

import pytest

from tests.factories import make_user
from tests.raster.helpers import make_image, make_product, rgb_bands, rgb_source


@pytest.fixture(autouse=True)
def raster_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "imagery": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media" / "imagery"), "base_url": None},
        },
    }
    yield settings
    from raster.sources import close_cached_datasets

    close_cached_datasets()  # handles on this test's files must not outlive its tmp_path


@pytest.fixture
def alice(db):
    return make_user("alice", org="rasterorg")


@pytest.fixture
def bob(db):
    return make_user("bob", org="otherorg")


@pytest.fixture
def rgb_product(alice):
    return make_product(alice, "rgb", rgb_bands())


@pytest.fixture
def rgb_image(alice, rgb_product, tmp_path):
    data, transform, crs = rgb_source()
    return make_image(alice, rgb_product, "scene", data, crs=crs, transform=transform, tmp_path=tmp_path)


@pytest.fixture
def alice_client(auth_client, alice):
    return auth_client(alice)
