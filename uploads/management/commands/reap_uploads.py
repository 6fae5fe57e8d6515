"""`manage.py reap_uploads`: one reaper pass, for cron/systemd timers (the workers also run it periodically)."""

from django.core.management.base import BaseCommand

from uploads.selectors import image_upload_status_counts, image_uploads_stuck
from uploads.services import image_uploads_reap


class Command(BaseCommand):
    help = (
        "Re-enqueue lost pending uploads, recover running uploads whose worker died, cancel expired "
        "transfers and remove leftover staged bytes and scratch directories; then print the counts a "
        "monitor should watch."
    )

    def handle(self, *args, **options):
        report = image_uploads_reap()
        self.stdout.write(f"reap_uploads: {report}")
        counts = ", ".join(f"{status}: {count}" for status, count in image_upload_status_counts().items())
        self.stdout.write(f"uploads by status: {counts}")
        stuck = ", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in image_uploads_stuck().items())
        self.stdout.write(f"needing attention: {stuck}")
