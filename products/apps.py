from django.apps import AppConfig


class ProductsConfig(AppConfig):
    """Products, their declared bands and the standard derived bands."""

    name = "products"
