from django.apps import AppConfig


class ImageryConfig(AppConfig):
    """Images: footprints, attributes, search and summaries."""

    name = "imagery"
