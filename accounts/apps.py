from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Organizations, memberships, groups, verified emails and API tokens."""

    name = "accounts"
