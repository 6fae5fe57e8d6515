from django.db import models


class StorageState(models.TextChoices):
    AVAILABLE = "available"
    REMOTE = "remote"


class SummaryInterval(models.TextChoices):
    YEAR = "year"
    QUARTER = "quarter"
    MONTH = "month"
    WEEK = "week"
    DAY = "day"
    HOUR = "hour"
    MINUTE = "minute"


class AggregateDateField(models.TextChoices):
    ACQUIRED = "acquired"
    CREATED = "created"
    MODIFIED = "modified"
    PUBLISHED = "published"
