"""Fixtures shared by every app's tests: API clients and access tokens."""

import pytest


@pytest.fixture
def api_client():
    """An unauthenticated DRF test client."""
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def token_for(db):
    """Issue an access token: `token_for(user, audience=None, expires_in=None) -> str`."""
    from accounts.tokens import issue_access_token

    def issue(user, **kwargs) -> str:
        return issue_access_token(user=user, **kwargs)

    return issue


@pytest.fixture
def auth_client(token_for):
    """A DRF test client sending `Authorization: Bearer <token>`: `auth_client(user) -> APIClient`."""
    from rest_framework.test import APIClient

    def make(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
        return client

    return make


def pytest_configure(config):
    """WhiteNoise warns on every request when STATIC_ROOT is missing (collectstatic creates it in `make run`)."""
    import os

    from django.conf import settings

    if settings.configured and settings.STATIC_ROOT:
        os.makedirs(settings.STATIC_ROOT, exist_ok=True)
