"""Admin for users, organizations, memberships, groups, email addresses and refresh tokens.

Superusers see everything. Other staff see only the rows of their own organization, cannot grant admin rights,
cannot mark addresses verified (a verified address is an ACL principal) and cannot touch superusers' accounts.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.utils import timezone

from .choices import MembershipRole
from .models import EmailAddress, Group, Membership, Organization, RefreshToken, User
from .principals import principals_for
from .services import membership_set, validate_group_name, validate_organization_slug
from .tokens import refresh_token_create, refresh_token_revoke


def _staff_organization_slug(request) -> str | None:
    """The organization a non-superuser staff member administers, read from their live membership."""
    return principals_for(request.user).organization


def _scoped_choices(model, request) -> QuerySet | None:
    """Choices for a foreign key or many-to-many field shown to non-superuser staff, or None to keep the default."""
    slug = _staff_organization_slug(request)
    if model is Organization:
        return Organization.objects.filter(slug=slug) if slug else Organization.objects.none()
    if model is User:
        if not slug:
            return User.objects.none()
        return User.objects.filter(membership__organization__slug=slug, is_superuser=False)
    return None


class OrganizationScopedAdminMixin:
    """Limits rows and choices to the staff user's organization unless they are a superuser.

    A subclass that passes its own, narrower `queryset` to `formfield_for_*` keeps it.
    """

    # Lookup from the model to the slug of the organization it belongs to.
    organization_lookup = "organization__slug"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        slug = _staff_organization_slug(request)
        if not slug:
            return queryset.none()
        return queryset.filter(**{self.organization_lookup: slug})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            choices = _scoped_choices(db_field.related_model, request)
            if choices is not None:
                kwargs.setdefault("queryset", choices)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            choices = _scoped_choices(db_field.related_model, request)
            if choices is not None:
                kwargs.setdefault("queryset", choices)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class EmailAddressInline(admin.TabularInline):
    model = EmailAddress
    extra = 0
    fields = ("email", "is_verified", "is_primary", "created")
    readonly_fields = ("created",)

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else (*fields, "is_verified")


@admin.register(User)
class UserAdmin(OrganizationScopedAdminMixin, DjangoUserAdmin):
    organization_lookup = "membership__organization__slug"
    list_display = ("username", "email", "organization", "is_staff", "is_superuser", "is_active")
    list_select_related = ("membership__organization",)
    list_filter = (*DjangoUserAdmin.list_filter, "membership__organization")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Catalog identity", {"fields": ("subject", "namespace")}))
    readonly_fields = ("subject", "namespace")
    inlines = [EmailAddressInline]

    @admin.display(description="Namespace (sha1 of subject)")
    def namespace(self, obj: User) -> str:
        return obj.namespace

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        # Staff who could edit a superuser could set its password and become one.
        return queryset if request.user.is_superuser else queryset.filter(is_superuser=False)

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return (*fields, "is_staff", "is_superuser", "groups", "user_permissions")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change and not request.user.is_superuser:
            # Otherwise the new account would belong to no organization and vanish from this staff member's view.
            organization = Organization.objects.filter(slug=_staff_organization_slug(request)).first()
            if organization is not None:
                membership_set(user=obj, organization=organization, role=MembershipRole.MEMBER)


class OrganizationAdminForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ("slug", "name")

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and cleaned.get("slug"):
            try:
                validate_organization_slug(cleaned["slug"])
            except ValidationError as exc:
                self.add_error(None, exc)
        return cleaned


class MembershipInline(OrganizationScopedAdminMixin, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created")
    readonly_fields = ("created",)


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdminMixin, admin.ModelAdmin):
    form = OrganizationAdminForm
    organization_lookup = "slug"
    list_display = ("slug", "name", "member_count", "group_count", "created")
    search_fields = ("slug", "name")
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(member_count=Count("memberships", distinct=True), group_count=Count("groups", distinct=True))
        )

    def get_readonly_fields(self, request, obj=None):
        # The slug prefixes product ids and `org:` ACL entries; renaming it would orphan both.
        return ("slug", "created") if obj is not None else ("created",)

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, obj: Organization) -> int:
        return obj.member_count

    @admin.display(description="Groups", ordering="group_count")
    def group_count(self, obj: Organization) -> int:
        return obj.group_count


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdminMixin, admin.ModelAdmin):
    list_display = ("user", "organization", "role", "created")
    list_filter = ("role", "organization")
    list_select_related = ("user", "organization")
    search_fields = ("user__username", "user__email", "organization__slug")

    def get_readonly_fields(self, request, obj=None):
        return ("user", "created") if obj is not None else ("created",)

    def save_model(self, request, obj, form, change):
        # Through the service, so moving a user also removes them from their old organization's groups.
        saved = membership_set(user=obj.user, organization=obj.organization, role=obj.role)
        obj.pk = saved.pk
        obj.created = saved.created


class GroupAdminForm(forms.ModelForm):
    class Meta:
        model = Group
        fields = ("organization", "name", "members")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("name"):
            try:
                validate_group_name(cleaned["name"])
            except ValidationError as exc:
                self.add_error(None, exc)
        organization = cleaned.get("organization") or getattr(self.instance, "organization", None)
        members = cleaned.get("members")
        if organization is not None and members is not None:
            # A member from elsewhere would gain `group:<org>:<name>` access to this organization's data.
            outsiders = sorted(
                members.exclude(membership__organization=organization).values_list("username", flat=True)
            )
            if outsiders:
                self.add_error("members", f"Not members of {organization.slug}: {', '.join(outsiders)}.")
        return cleaned


@admin.register(Group)
class GroupAdmin(OrganizationScopedAdminMixin, admin.ModelAdmin):
    form = GroupAdminForm
    list_display = ("name", "organization", "member_count", "created")
    list_filter = ("organization",)
    list_select_related = ("organization",)
    search_fields = ("name", "organization__slug")
    filter_horizontal = ("members",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members", distinct=True))

    def get_readonly_fields(self, request, obj=None):
        # The qualified name `<org>:<name>` is what ACL entries refer to.
        return ("organization", "name", "created") if obj is not None else ("created",)

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, obj: Group) -> int:
        return obj.member_count


@admin.register(EmailAddress)
class EmailAddressAdmin(OrganizationScopedAdminMixin, admin.ModelAdmin):
    organization_lookup = "user__membership__organization__slug"
    list_display = ("email", "user", "is_verified", "is_primary", "created")
    list_filter = ("is_verified", "is_primary")
    list_select_related = ("user",)
    search_fields = ("email", "user__username")

    def get_readonly_fields(self, request, obj=None):
        return ("created",) if request.user.is_superuser else ("created", "is_verified")


class RefreshTokenAddForm(forms.ModelForm):
    class Meta:
        model = RefreshToken
        fields = ("user", "name", "expires_at")

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise ValidationError("Choose a time in the future, or leave empty for a token that does not expire.")
        return expires_at


@admin.register(RefreshToken)
class RefreshTokenAdmin(OrganizationScopedAdminMixin, admin.ModelAdmin):
    organization_lookup = "user__membership__organization__slug"
    list_display = ("prefix", "name", "user", "created", "last_used_at", "expires_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "created")
    list_select_related = ("user",)
    search_fields = ("prefix", "name", "user__username")
    actions = ["revoke_selected"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = RefreshTokenAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name", "expires_at")
        return ("user", "name", "prefix", "token_hash", "created", "expires_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("user", "prefix", "token_hash", "created", "expires_at", "last_used_at", "revoked_at")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            # A token for someone else would let its creator act as them.
            kwargs["queryset"] = User.objects.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        expires_in = None
        if obj.expires_at is not None:
            expires_in = max(1, int((obj.expires_at - timezone.now()).total_seconds()))
        token, raw = refresh_token_create(user=obj.user, name=obj.name, expires_in=expires_in)
        obj.pk = token.pk
        obj.prefix = token.prefix
        obj.created = token.created
        self.message_user(
            request,
            f"Refresh token for {obj.user}: {raw} — copy it now, it is stored only as a hash and is not shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_selected(self, request, queryset):
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            refresh_token_revoke(token=token)
        self.message_user(request, f"Revoked {len(tokens)} token(s).", messages.SUCCESS)
