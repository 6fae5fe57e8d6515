"""`POST /token`, and the web UI pages of the accounts app (login, organization admin, personal tokens).

`POST /token` is the refresh-token grant the descarteslabs client uses to get access tokens (protocol §6.1).
It is a plain Django view, not DRF: its errors are OAuth 2.0 documents (`error`, `error_description`), not the
JSON:API documents of the catalog, and it must not be reachable through session authentication or CSRF checks.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import services
from .forms import GroupForm, GroupMembersForm, LoginForm, MembershipRoleForm, RefreshTokenForm, organization_users
from .models import Group, Membership, RefreshToken
from .snippets import client_environment_snippet
from .tokens import InvalidRefreshToken, refresh_token_create, refresh_token_exchange, refresh_token_revoke

GRANT_TYPE_REFRESH_TOKEN = "refresh_token"
MAX_CLIENT_ID_LENGTH = 200
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class _TokenRequestError(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _oauth_response(payload: dict[str, Any], *, status: int = 200) -> JsonResponse:
    response = JsonResponse(payload, status=status)
    # RFC 6749 §5.1: responses carrying tokens must not be cached.
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _read_parameters(request: HttpRequest) -> dict[str, Any]:
    """The request's parameters: a JSON object (what the client sends) or an RFC 6749 form body."""
    content_type = (request.content_type or "").lower()
    try:
        if content_type == FORM_CONTENT_TYPE:
            return request.POST.dict()
        body = request.body
    except RequestDataTooBig as exc:
        raise _TokenRequestError(400, "invalid_request", "The request body is too large.") from exc
    try:
        parameters = json.loads(body.decode("utf-8")) if body.strip() else {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise _TokenRequestError(400, "invalid_request", f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(parameters, dict):
        raise _TokenRequestError(400, "invalid_request", "The request body must be a JSON object.")
    return parameters


def _string_parameter(parameters: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = parameters.get(name)
    if value is None or value == "":
        if required:
            raise _TokenRequestError(400, "invalid_request", f"The parameter {name!r} is required.")
        return ""
    if not isinstance(value, str):
        raise _TokenRequestError(400, "invalid_request", f"The parameter {name!r} must be a string.")
    return value


@csrf_exempt
def token(request: HttpRequest) -> JsonResponse:
    """Exchange a refresh token for an access token whose `aud` is the caller's client id."""
    if request.method != "POST":
        response = _oauth_response({"error": "invalid_request", "error_description": "Use POST."}, status=405)
        response["Allow"] = "POST"
        return response
    try:
        parameters = _read_parameters(request)
        grant_type = _string_parameter(parameters, "grant_type")
        if grant_type != GRANT_TYPE_REFRESH_TOKEN:
            raise _TokenRequestError(
                400, "unsupported_grant_type", f"Only grant_type={GRANT_TYPE_REFRESH_TOKEN!r} is supported."
            )
        client_id = _string_parameter(parameters, "client_id")
        if len(client_id) > MAX_CLIENT_ID_LENGTH:
            raise _TokenRequestError(
                400, "invalid_request", f"The parameter 'client_id' is longer than {MAX_CLIENT_ID_LENGTH} characters."
            )
        raw_refresh_token = _string_parameter(parameters, "refresh_token")
        # `scope` is accepted for compatibility; access is decided by the database, not by scopes.
        _string_parameter(parameters, "scope", required=False)
        access_token = refresh_token_exchange(raw=raw_refresh_token, client_id=client_id)
    except _TokenRequestError as exc:
        return _oauth_response({"error": exc.error, "error_description": exc.description}, status=exc.status)
    except InvalidRefreshToken as exc:
        return _oauth_response({"error": "invalid_grant", "error_description": str(exc)}, status=401)
    return _oauth_response(
        {
            "access_token": access_token,
            # Legacy clients read `id_token` instead of `access_token` (protocol §6.1).
            "id_token": access_token,
            "token_type": "Bearer",
            "expires_in": settings.JWT_ACCESS_TOKEN_LIFETIME,
        }
    )


# ==== Web UI ================================================================================================
class LoginView(auth_views.LoginView):
    """Session login for the web UI; django-axes counts the failures (see settings)."""

    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """Log out with a POST (Django 5 refuses GET logouts, so a link or image cannot log anyone out)."""


def _membership(request: HttpRequest) -> Membership | None:
    return Membership.objects.select_related("organization").filter(user=request.user).first()


def _admin_membership(request: HttpRequest) -> Membership:
    """The caller's membership if they administer their organization; 403 for members, 404 without one."""
    membership = _membership(request)
    if membership is None:
        raise Http404("You belong to no organization.")
    if not membership.is_admin:
        raise PermissionDenied("Only organization admins can change members and groups.")
    return membership


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@login_required
def organization_detail(request: HttpRequest) -> HttpResponse:
    """Members, roles and groups of the caller's organization; admins can change them here."""
    membership = _membership(request)
    if membership is None:
        return render(request, "accounts/organization_detail.html", {"membership": None})
    organization = membership.organization
    members = Membership.objects.filter(organization=organization).select_related("user").order_by("user__username")
    groups = Group.objects.filter(organization=organization).prefetch_related("members").order_by("name")
    context = {
        "membership": membership,
        "organization": organization,
        "members": [
            (member, MembershipRoleForm(initial={"role": member.role}, prefix=f"m{member.pk}")) for member in members
        ],
        "groups": groups,
        "group_form": GroupForm(),
        "is_admin": membership.is_admin,
    }
    return render(request, "accounts/organization_detail.html", context)


@login_required
@require_POST
def membership_edit(request: HttpRequest, pk: int) -> HttpResponse:
    admin = _admin_membership(request)
    member = (
        Membership.objects.select_related("user", "organization").filter(pk=pk, organization=admin.organization).first()
    )
    if member is None:
        raise Http404("No such member in your organization.")
    form = MembershipRoleForm(request.POST, prefix=f"m{member.pk}")
    if not form.is_valid():
        messages.error(request, "Choose a role.")
    else:
        try:
            services.membership_change_role(membership=member, role=form.cleaned_data["role"])
        except ValidationError as exc:
            messages.error(request, _errors(exc))
        else:
            messages.success(request, f"{member.user.username} is now {member.get_role_display().lower()}.")
    return redirect("accounts:organization_detail")


@login_required
@require_POST
def group_add(request: HttpRequest) -> HttpResponse:
    admin = _admin_membership(request)
    form = GroupForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("name", ["Enter a group name."])))
        return redirect("accounts:organization_detail")
    try:
        group = services.group_create(organization=admin.organization, name=form.cleaned_data["name"])
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("accounts:organization_detail")
    messages.success(request, f"Group {group.qualified_name} is ready; choose its members.")
    return redirect("accounts:group_edit", pk=group.pk)


def _group_of_my_organization(request: HttpRequest, pk: int) -> tuple[Group, Membership]:
    membership = _membership(request)
    group = None
    if membership is not None:
        group = Group.objects.select_related("organization").filter(pk=pk, organization=membership.organization).first()
    if group is None:
        raise Http404("No such group in your organization.")
    return group, membership


@login_required
def group_edit(request: HttpRequest, pk: int) -> HttpResponse:
    group, membership = _group_of_my_organization(request, pk)
    if request.method == "POST":
        if not membership.is_admin:
            raise PermissionDenied("Only organization admins can change groups.")
        form = GroupMembersForm(request.POST, group=group)
        if form.is_valid():
            try:
                services.group_set_members(group=group, users=form.cleaned_data["members"])
            except ValidationError as exc:
                form.add_error(None, _errors(exc))
            else:
                messages.success(request, f"Members of {group.qualified_name} saved.")
                return redirect("accounts:organization_detail")
    else:
        form = GroupMembersForm(group=group)
    context = {
        "group": group,
        "form": form,
        "is_admin": membership.is_admin,
        "member_count": organization_users(group.organization).count(),
    }
    return render(request, "accounts/group_edit.html", context)


@login_required
@require_POST
def group_delete(request: HttpRequest, pk: int) -> HttpResponse:
    group, membership = _group_of_my_organization(request, pk)
    if not membership.is_admin:
        raise PermissionDenied("Only organization admins can delete groups.")
    name = group.qualified_name
    services.group_delete(group=group)
    messages.success(request, f"Group {name} deleted; ACL entries group:{name} no longer match anyone.")
    return redirect("accounts:organization_detail")


def _token_page(
    request: HttpRequest,
    *,
    form: RefreshTokenForm,
    created: RefreshToken | None = None,
    secret: str = "",
    status: int = 200,
) -> HttpResponse:
    tokens = RefreshToken.objects.filter(user=request.user).order_by("revoked_at", "-created")
    context = {"form": form, "tokens": tokens, "created": created, "secret": secret, "snippet": ""}
    if secret:
        base_url = request.build_absolute_uri("/").rstrip("/")
        context["snippet"] = client_environment_snippet(
            base_url=base_url, client_id=settings.UI_CLIENT_ID, refresh_token=secret
        )
    response = render(request, "accounts/refresh_token_list.html", context, status=status)
    # The page may show a secret: never keep it in a cache.
    response["Cache-Control"] = "no-store"
    return response


@login_required
def refresh_token_list(request: HttpRequest) -> HttpResponse:
    """Personal refresh tokens for the descarteslabs client: create, see when they were used, revoke."""
    return _token_page(request, form=RefreshTokenForm())


@login_required
@require_POST
def refresh_token_add(request: HttpRequest) -> HttpResponse:
    """Create a token and show its secret once, with the environment snippet, on this response only."""
    form = RefreshTokenForm(request.POST)
    if not form.is_valid():
        return _token_page(request, form=form, status=400)
    days = form.cleaned_data["expires_in_days"]
    token, secret = refresh_token_create(
        user=request.user, name=form.cleaned_data["name"], expires_in=days * 24 * 3600 if days else None
    )
    return _token_page(request, form=RefreshTokenForm(), created=token, secret=secret)


@login_required
@require_POST
def refresh_token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    token = RefreshToken.objects.filter(pk=pk, user=request.user).first()
    if token is None:
        raise Http404("No such token of yours.")
    refresh_token_revoke(token=token)
    messages.success(request, f"Token {token.prefix}… revoked; clients using it can no longer get access tokens.")
    return redirect("accounts:refresh_token_list")
