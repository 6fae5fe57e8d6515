from django.db import models


class Action(models.TextChoices):
    """What a caller wants to do with a catalog object (protocol §7.1)."""

    VIEW = "view", "Read"
    CHANGE = "change", "Modify attributes"
    DELETE = "delete", "Delete"
    SHARE = "share", "Change ACLs"
