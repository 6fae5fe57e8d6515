"""Routes of the accounts app, mounted at the site root: the token endpoint lives at `/token` (protocol §6.1)."""

from django.urls import path

from . import views

urlpatterns = [
    path("token", views.token, name="token"),
]
