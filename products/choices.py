from django.db import models


class BandType(models.TextChoices):
    SPECTRAL = "spectral"
    MICROWAVE = "microwave"
    MASK = "mask"
    CLASS = "class"
    GENERIC = "generic"


class DataType(models.TextChoices):
    BYTE = "Byte"
    UINT16 = "UInt16"
    INT16 = "Int16"
    UINT32 = "UInt32"
    INT32 = "Int32"
    FLOAT32 = "Float32"
    FLOAT64 = "Float64"


class ResolutionUnit(models.TextChoices):
    METERS = "meters"
    DEGREES = "degrees"


class Colormap(models.TextChoices):
    MAGMA = "magma"
    INFERNO = "inferno"
    PLASMA = "plasma"
    VIRIDIS = "viridis"
    COOL = "cool"
    HOT = "hot"
    COOLWARM = "coolwarm"
    BWR = "bwr"
    GIST_EARTH = "gist_earth"
    TERRAIN = "terrain"
    CDL = "cdl"


class TaskKind(models.TextChoices):
    DELETE_RELATED = "delete_related_objects", "Delete related objects"
    UPDATE_ACLS = "update_related_objects_acls", "Update related objects ACLs"


class TaskState(models.TextChoices):
    """The client's TaskState values (protocol §2.2)."""

    NONE = "NONE"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
