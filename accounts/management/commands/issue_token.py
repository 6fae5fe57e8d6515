"""`manage.py issue_token USERNAME [--expires-in SECONDS]`: print an access token and nothing else."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.tokens import MAX_ACCESS_TOKEN_LIFETIME, issue_access_token


class Command(BaseCommand):
    help = (
        "Print a signed access token (JWT) for USERNAME, alone on stdout, "
        "e.g. export DESCARTESLABS_TOKEN=$(python manage.py issue_token alice)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--expires-in",
            type=int,
            default=None,
            metavar="SECONDS",
            help=f"lifetime in seconds (default JWT_ACCESS_TOKEN_LIFETIME, at most {MAX_ACCESS_TOKEN_LIFETIME})",
        )

    def handle(self, *args, username, expires_in, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"User {username!r} does not exist.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive; its tokens would be refused.")
        try:
            token = issue_access_token(user=user, expires_in=expires_in)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(token)
