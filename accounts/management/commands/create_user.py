"""`manage.py create_user USERNAME --email E [--org SLUG] [--org-admin] [--group G ...] [--password P]`."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from accounts.services import user_create_or_update


class Command(BaseCommand):
    help = (
        "Create or update a user. The email is recorded as verified (administrator-created accounts are trusted). "
        "Without --password a new user cannot log in to the admin and uses API tokens only. Prints the username."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", required=True)
        parser.add_argument("--org", dest="organization", help="slug of an existing organization to join")
        parser.add_argument("--org-admin", action="store_true", help="make the user an admin of the organization")
        parser.add_argument(
            "--group",
            dest="groups",
            action="append",
            default=[],
            metavar="GROUP",
            help="join this group of the user's organization (created if needed); repeatable",
        )
        parser.add_argument("--password", help="admin login password (checked against the password validators)")

    def handle(self, *args, username, email, organization, org_admin, groups, password, **options):
        org = None
        if organization:
            org = Organization.objects.filter(slug=organization).first()
            if org is None:
                raise CommandError(f"Organization {organization!r} does not exist; create it with create_org first.")
        try:
            user = user_create_or_update(
                username=username,
                email=email,
                organization=org,
                is_org_admin=org_admin,
                groups=groups,
                password=password,
            )
        except ValidationError as exc:
            raise CommandError(f"Cannot create user {username!r}: {'; '.join(exc.messages)}") from exc
        self.stdout.write(user.username)
