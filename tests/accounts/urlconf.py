"""A self-contained URLconf for the accounts tests: the token endpoint, the admin and one authenticated API view.

The site URLconf also mounts the catalog apps; these tests must not depend on them.
"""

from django.contrib import admin
from django.urls import include, path
from rest_framework.decorators import api_view
from rest_framework.response import Response

from accounts.principals import principals_for


@api_view(["GET"])
def whoami(request):
    principals = principals_for(request.user)
    return Response(
        {"username": request.user.username, "readable": sorted(principals.readable), "owner": sorted(principals.owner)}
    )


urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("whoami", whoami, name="whoami"),
]
