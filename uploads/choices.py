"""Enumerations of the upload protocol (protocol §4.5); nothing compares against their string literals."""

from django.db import models


class ImageUploadStatus(models.TextChoices):
    """transferring → pending → running → success | failure; canceled from transferring or pending."""

    TRANSFERRING = "transferring"
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELED = "canceled"


TERMINAL_STATUSES = (ImageUploadStatus.SUCCESS, ImageUploadStatus.FAILURE, ImageUploadStatus.CANCELED)
CANCELABLE_STATUSES = (ImageUploadStatus.TRANSFERRING, ImageUploadStatus.PENDING)


class ImageUploadType(models.TextChoices):
    FILE = "file"
    NDARRAY = "ndarray"


class ImageUploadEventType(models.TextChoices):
    QUEUE = "queue"
    CANCEL = "cancel"
    RUN = "run"
    COMPLETE = "complete"
    ERROR = "error"
    TIMEOUT = "timeout"
    LOG = "log"
    USAGE = "usage"


class ImageUploadEventSeverity(models.TextChoices):
    CRITICAL = "CRITICAL"
    ERROR = "ERROR"
    WARNING = "WARNING"
    INFO = "INFO"
    DEBUG = "DEBUG"


class OverviewResampler(models.TextChoices):
    """The client's OverviewResampler values; `gdal_name` maps each to a GDAL overview resampling."""

    NEAREST = "nearest"
    AVERAGE = "average"
    GAUSS = "gauss"
    CUBIC = "cubic"
    CUBICSPLINE = "cubicspline"
    LANCZOS = "lanczos"
    AVERAGE_MP = "average_mp"
    AVERAGE_MAGPHASE = "average_magphase"
    MODE = "mode"


class EventComponent(models.TextChoices):
    """Which part of Tessera wrote an event (the protocol leaves the names to the server)."""

    API = "tessera-api"
    INGEST = "tessera-ingest"
    REAPER = "tessera-reaper"
    ADMIN = "tessera-admin"
