from django.apps import AppConfig


class CatalogsiteConfig(AppConfig):
    """Project package: shared base classes, permissions, the JSON:API layer and the filter language."""

    name = "catalogsite"
    verbose_name = "Tessera"

    def ready(self) -> None:
        from . import schema  # noqa: F401 - registers the OpenAPI authentication extension
