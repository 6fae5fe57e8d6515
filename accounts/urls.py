"""Routes of the accounts app.

`urlpatterns` is mounted at the site root: the token endpoint lives at `/token` (protocol §6.1).
`ui_urlpatterns` are the web UI pages, mounted by catalogsite.ui_urls under the `accounts` namespace.
"""

from django.urls import path

from . import views

urlpatterns = [
    path("token", views.token, name="token"),
]

ui_urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("organization/", views.organization_detail, name="organization_detail"),
    path("organization/members/<int:pk>/role/", views.membership_edit, name="membership_edit"),
    path("organization/groups/add/", views.group_add, name="group_add"),
    path("organization/groups/<int:pk>/", views.group_edit, name="group_edit"),
    path("organization/groups/<int:pk>/delete/", views.group_delete, name="group_delete"),
    path("account/tokens/", views.refresh_token_list, name="refresh_token_list"),
    path("account/tokens/add/", views.refresh_token_add, name="refresh_token_add"),
    path("account/tokens/<int:pk>/revoke/", views.refresh_token_revoke_view, name="refresh_token_revoke"),
]
