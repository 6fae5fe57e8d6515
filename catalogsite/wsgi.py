"""WSGI entry point (gunicorn catalogsite.wsgi)."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from catalogsite.allocator import tune_allocator

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalogsite.settings")
application = get_wsgi_application()
tune_allocator(
    mmap_threshold_mb=settings.WEB_MALLOC_MMAP_THRESHOLD_MB, trim_threshold_mb=settings.WEB_MALLOC_TRIM_THRESHOLD_MB
)
