"""Web UI forms: login, organization administration (roles, groups) and personal refresh tokens."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from .choices import MembershipRole
from .models import Group, Organization, User


class LoginForm(AuthenticationForm):
    """Django's login form with the browser hints password managers expect."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})


class MembershipRoleForm(forms.Form):
    role = forms.ChoiceField(choices=MembershipRole.choices)


class GroupForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="Lowercase letters, digits, '-', '_', '.'. Its principal is group:<organization>:<name>.",
    )


class GroupMembersForm(forms.Form):
    """Who is in a group; only members of the group's organization can be chosen."""

    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, group: Group, **kwargs):
        kwargs.setdefault("initial", {"members": list(group.members.all())})
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = organization_users(group.organization)
        self.fields["members"].label_from_instance = (
            lambda user: f"{user.username} ({user.email})" if user.email else user.username
        )


def organization_users(organization: Organization):
    return User.objects.filter(membership__organization=organization, is_active=True).order_by("username")


class RefreshTokenForm(forms.Form):
    name = forms.CharField(
        max_length=200,
        required=False,
        help_text="What the token is for, e.g. 'laptop notebook'.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    expires_in_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        label="Expires after",
        help_text="days; empty: never (revoke it when no longer needed)",
    )
