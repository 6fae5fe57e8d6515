"""dramatiq middleware: every worker process kicks the periodic reaper chain when it boots.

The kick is cheap and safe to repeat: `services.reaper_tick` starts a chain only when none is alive, so
many workers (or restarts) still leave exactly one chain running.
"""

from __future__ import annotations

import logging

import dramatiq
from django.conf import settings

logger = logging.getLogger(__name__)


class ReaperKickMiddleware(dramatiq.Middleware):
    def after_worker_boot(self, broker, worker) -> None:
        if not settings.INGEST_REAPER_AUTOSTART:
            return
        from .tasks import MAINTENANCE_QUEUE, reap_image_uploads

        whitelist = getattr(worker, "consumer_whitelist", None)
        if whitelist and MAINTENANCE_QUEUE not in whitelist:
            return  # a worker that does not run maintenance jobs does not start them either
        try:
            reap_image_uploads.send()
        except Exception:  # noqa: BLE001 - a broker hiccup at boot must not stop the worker; cron/command remain
            logger.exception("Could not kick the upload reaper")
