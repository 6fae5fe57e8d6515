"""Authentication backends: django-axes in front of Django's model backend (login rate limiting)."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend


class LoginRateLimitBackend(AxesStandaloneBackend):
    """Counts and locks failed logins that come from a web request (the UI and admin login forms).

    `authenticate()` without a request (Django's test client `login()`, scripts inside the server) is not
    reachable from the network, so there is nothing to rate-limit; axes would raise, we step aside and let
    the model backend answer.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
