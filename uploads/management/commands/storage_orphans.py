"""`manage.py storage_orphans [--delete]`: stored objects no database row needs any more."""

from django.core.management.base import BaseCommand

from uploads.orphans import find_orphans
from uploads.storage import delete_keys


class Command(BaseCommand):
    help = (
        "List objects under staging/ and rasters/ in imagery storage that no upload or image references "
        "(left behind by crashes or failed deletions); --delete removes them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--delete", action="store_true", help="Delete the orphans instead of only listing them.")

    def handle(self, *args, **options):
        orphans = find_orphans()
        for key in orphans:
            self.stdout.write(key)
        if options["delete"] and orphans:
            failed = delete_keys(orphans)
            for key in failed:
                self.stderr.write(f"could not delete {key}")
            self.stdout.write(f"storage_orphans: deleted {len(orphans) - len(failed)} of {len(orphans)} orphan(s)")
        else:
            self.stdout.write(
                f"storage_orphans: {len(orphans)} orphan(s)" + (" (use --delete to remove them)" if orphans else "")
            )
