"""`manage.py create_org SLUG [--name NAME]`: create (or rename) an organization."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import organization_create


class Command(BaseCommand):
    help = "Create an organization (the namespace of its product ids); if it exists, update its name. Prints the slug."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="lowercase letters, digits, '-', '_' and '.'")
        parser.add_argument("--name", default="", help="display name")

    def handle(self, *args, slug, name, **options):
        try:
            organization = organization_create(slug=slug, name=name)
        except ValidationError as exc:
            raise CommandError(f"Cannot create organization {slug!r}: {'; '.join(exc.messages)}") from exc
        self.stdout.write(organization.slug)
