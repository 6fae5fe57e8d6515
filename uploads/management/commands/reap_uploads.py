"""`manage.py reap_uploads`: one reaper pass, for cron/systemd timers (the workers also run it periodically)."""

from django.core.management.base import BaseCommand

from uploads.services import image_uploads_reap


class Command(BaseCommand):
    help = ("Re-enqueue lost pending uploads, recover running uploads whose worker died, cancel expired "
            "transfers and remove leftover staged bytes and scratch directories.")

    def handle(self, *args, **options):
        report = image_uploads_reap()
        self.stdout.write(f"reap_uploads: {report}")
