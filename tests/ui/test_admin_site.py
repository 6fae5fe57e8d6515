"""The Django admin for power users: every model registered, with filters/search, inlines and the actions."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from tests.factories import make_user

APPS = ("accounts", "products", "imagery", "uploads")


def test_every_model_is_registered_with_filters_or_search():
    for label in APPS:
        for model in apps.get_app_config(label).get_models():
            assert model in admin.site._registry, f"{model.__name__} is not in the admin"
            model_admin = admin.site._registry[model]
            if model._meta.model_name != "reaperstate":  # a singleton row: nothing to filter
                assert model_admin.list_filter or model_admin.search_fields, model.__name__


def test_inlines_and_actions_of_the_power_user_tasks():
    from products.models import Product
    from uploads.models import ImageUpload

    product_admin = admin.site._registry[Product]
    assert "BandInline" in [inline.__name__ for inline in product_admin.inlines]
    assert "reapply_acls" in product_admin.actions
    upload_admin = admin.site._registry[ImageUpload]
    assert "ImageUploadEventInline" in [inline.__name__ for inline in upload_admin.inlines]
    assert {"cancel_uploads", "retry_uploads"} <= set(upload_admin.actions)


@pytest.mark.django_db
def test_every_changelist_and_add_page_loads_for_a_superuser():
    from accounts.services import user_create_or_update

    root = user_create_or_update(username="root", email="root@example.org", is_staff=True, is_superuser=True)
    make_user("alice", org="acme")
    client = Client()
    client.force_login(root)
    for label in APPS:
        for model in apps.get_app_config(label).get_models():
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            assert client.get(url).status_code == 200, url
            assert client.get(url, {"q": "x"}).status_code == 200, url
