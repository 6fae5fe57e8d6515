"""Syntactic checks shared by the API (at upload creation) and the ingest child (before GDAL sees a value).

Nothing here imports GDAL: a coordinate system string from a client is only handed to PROJ/GDAL after
it passed these checks, and only as an explicit EPSG/ESRI code, PROJ string or WKT, never through
"user input" parsing (which also accepts file names and URLs).
"""

from __future__ import annotations

import re

CS_CODE_RE = re.compile(r"^(EPSG|ESRI):(\d{1,9})$", re.IGNORECASE)
WKT_KEYWORDS = (
    "PROJCS[",
    "GEOGCS[",
    "GEOCCS[",
    "COMPD_CS[",
    "VERT_CS[",
    "LOCAL_CS[",
    "PROJCRS[",
    "GEOGCRS[",
    "GEODCRS[",
    "GEODETICCRS[",
    "BOUNDCRS[",
    "COMPOUNDCRS[",
    "VERTCRS[",
    "ENGCRS[",
    "DERIVEDPROJCRS[",
)
# PROJ parameters that load resources (init files, grids) by name: never accepted from a client.
PROJ_RESOURCE_PARAMETERS = {
    "init",
    "nadgrids",
    "geoidgrids",
    "hgridshift",
    "vgridshift",
    "grids",
    "file",
    "xy_grids",
    "z_grids",
    "t_grids",
    "tinshift",
}
MAX_PROJECTION_LENGTH = 20_000
PROJ_TOKEN_RE = re.compile(r"^\+[A-Za-z_][A-Za-z0-9_]*(=[A-Za-z0-9_.,:+\-]*)?$")


class InvalidCoordinateSystem(ValueError):
    """A cs_code or projection that is not acceptable; the message says why."""


def projection_kind(value: str) -> str:
    """Classify a client projection string as "proj4" or "wkt", or raise InvalidCoordinateSystem."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidCoordinateSystem("projection must be a non-empty PROJ string or WKT.")
    if len(value) > MAX_PROJECTION_LENGTH:
        raise InvalidCoordinateSystem(f"projection is longer than {MAX_PROJECTION_LENGTH} characters.")
    text = value.strip()
    if "\x00" in text:
        raise InvalidCoordinateSystem("projection must not contain NUL characters.")
    if text.startswith("+"):
        for token in text.split():
            if not PROJ_TOKEN_RE.match(token):
                raise InvalidCoordinateSystem(f"projection: {token[:40]!r} is not a +key=value PROJ parameter.")
            key = token[1:].split("=", 1)[0].lower()
            if key in PROJ_RESOURCE_PARAMETERS:
                raise InvalidCoordinateSystem(
                    f"projection: the PROJ parameter +{key} (external resources) is not "
                    "allowed; give the parameters explicitly or use cs_code."
                )
        return "proj4"
    upper = text.upper()
    if upper.startswith(WKT_KEYWORDS):
        return "wkt"
    raise InvalidCoordinateSystem(
        "projection must be a PROJ string (starting with '+proj=') or WKT "
        "(e.g. 'PROJCS[...]'); use cs_code for EPSG codes."
    )


def normalize_cs_code(value: str) -> str:
    """`epsg:4326` → `EPSG:4326`; anything but an EPSG or ESRI code raises InvalidCoordinateSystem."""
    if not isinstance(value, str):
        raise InvalidCoordinateSystem("cs_code must be a string such as 'EPSG:4326'.")
    match = CS_CODE_RE.match(value.strip())
    if not match:
        raise InvalidCoordinateSystem(f"cs_code {value[:40]!r} is not an EPSG or ESRI code such as 'EPSG:4326'.")
    return f"{match.group(1).upper()}:{int(match.group(2))}"


def safe_basename(path: str) -> str:
    """The last component of a client-side path, for display only (never a filesystem path here)."""
    name = re.split(r"[\\/]", path or "")[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:200]
    return name.strip("._") or "file"
