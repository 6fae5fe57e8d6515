"""A synthetic but realistic image catalog, generated deterministically from a seed.

Everything about image `i` is a pure function of `(seed, n)`, held in numpy arrays (`Catalog`), so the
same data can be written three ways without storing it: COPY text for Tessera's `imagery_image`, STAC
items (ndjson) for pgstac, and a brute-force evaluator (`Catalog.select`) that answers the benchmark's
filters in plain numpy/shapely to check the servers' answers (issue item 6).

Shape of the data (defaults for 1,000,000 images):
- 10 products of 3 organizations with skewed sizes (one Landsat-like product holds 40%);
- acquisitions spread over 10 years (2015–2024), rows physically in acquisition order (as ingest does);
- footprints: rotated scene-sized rectangles (0.15° to 10° across), 70% over land masses, 30% anywhere
  between 60°S and 72°N; scenes that cross ±180° are split into a MultiPolygon exactly as the API does;
- cloud_fraction (2% null), 0–4 tags from an 8-word vocabulary, provider_id, files with sizes;
- five ACL patterns per product (see ACL_PATTERNS), so one organization's reader sees a fraction.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

EPOCH_START = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
EPOCH_END = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
ORGS = ("acme", "globex", "initech")
TAGS = ("qa:pass", "qa:fail", "level:l1", "level:l2", "ard", "campaign:floods-2019", "tier:1", "tier:2")
TAG_PROBABILITY = (0.55, 0.08, 0.5, 0.3, 0.2, 0.03, 0.4, 0.1)


@dataclass(frozen=True)
class ProductSpec:
    id: str
    org: str
    weight: float
    scene_km: tuple[float, float]  # width, height of a scene
    providers: tuple[str, ...]
    prefix: str
    tilted: bool = True
    bytes_per_image: int = 800_000_000
    land_only: bool = False


PRODUCTS = (
    ProductSpec(
        "acme:landsat-8-l1", "acme", 0.40, (185, 180), ("landsat-8", "landsat-9"), "LC08", bytes_per_image=900_000_000
    ),
    ProductSpec("acme:sentinel-2-l1c", "acme", 0.18, (110, 110), ("sentinel-2a", "sentinel-2b"), "S2"),
    ProductSpec("acme:modis-daily", "acme", 0.05, (1100, 1000), ("terra", "aqua"), "MOD"),
    ProductSpec("acme:planetscope", "acme", 0.10, (25, 12), ("ps2", "psb-sd"), "PS", bytes_per_image=60_000_000),
    ProductSpec("globex:sentinel-1-grd", "globex", 0.08, (250, 170), ("sentinel-1a", "sentinel-1b"), "S1"),
    ProductSpec("globex:naip", "globex", 0.06, (7, 7), ("naip",), "NAIP", tilted=False, land_only=True),
    ProductSpec("globex:spot-6", "globex", 0.04, (60, 60), ("spot-6", "spot-7"), "SPOT"),
    ProductSpec(
        "initech:worldview-3", "initech", 0.04, (13, 13), ("wv03", "wv02"), "WV", bytes_per_image=2_000_000_000
    ),
    ProductSpec("initech:pleiades", "initech", 0.03, (20, 20), ("phr1a", "phr1b"), "PHR"),
    ProductSpec("initech:dem-tiles", "initech", 0.02, (111, 111), ("srtm",), "DEM", tilted=False, land_only=True),
)

# (lon0, lat0, lon1, lat1, weight): rough land masses; boxes past 180° produce antimeridian scenes.
LAND = (
    (-125, 25, -68, 50, 8),
    (-135, 50, -60, 68, 4),
    (-110, 10, -80, 25, 2),
    (-80, -40, -38, 5, 6),
    (-10, 36, 30, 60, 7),
    (-17, 5, 35, 32, 6),
    (12, -34, 40, 5, 5),
    (35, 15, 60, 38, 3),
    (40, 48, 140, 70, 8),
    (68, 8, 90, 30, 5),
    (95, 20, 122, 45, 6),
    (95, -8, 125, 20, 3),
    (114, -38, 153, -12, 4),
    (166, -47, 179, -34, 1),
    (172, -22, 188, -12, 1),
    (170, 55, 192, 68, 1),
)


def acl_patterns(org: str, owner_ns: str) -> list[tuple[list[str], list[str], list[str], float]]:
    """(owners, readers, writers, share) of the images of a product of `org`, owned by user `owner_ns`.

    0 org-wide read (75%); 1 also shared with the next organization (10%); 2 restricted to the org's
    `analysts` group (7%); 3 org members may write (5%); 4 shared with one partner email (3%).
    """
    other = ORGS[(ORGS.index(org) + 1) % len(ORGS)]
    owners = [f"org:{org}", f"user:{owner_ns}"]
    return [
        (owners, [f"org:{org}"], [], 0.75),
        (owners, [f"org:{org}", f"org:{other}"], [], 0.10),
        (owners, [f"group:{org}:analysts"], [], 0.07),
        (owners, [], [f"org:{org}"], 0.05),
        (owners, ["email:partner@example.net"], [], 0.03),
    ]


def pg_array(values: list[str]) -> str:
    return "{" + ",".join(f'"{v}"' for v in values) + "}"


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pg_ts(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def _ring_wkt(ring) -> str:
    return ",".join(f"{x!r} {y!r}" for x, y in ring)


@dataclass
class Catalog:
    """The generated images as columns (index i = image i)."""

    n: int
    seed: int
    product: np.ndarray  # int8 index into PRODUCTS
    seq: np.ndarray  # number of the image within its product
    acquired: np.ndarray  # float64 epoch seconds (whole microseconds)
    corners: np.ndarray  # (n, 4, 2) float64 footprint corners, longitudes unwrapped (may pass ±180)
    cloud: np.ndarray  # float64, NaN = null
    tags: np.ndarray  # uint8 bitmask over TAGS
    provider: np.ndarray  # int8 index into the product's providers
    acl: np.ndarray  # int8 index into acl_patterns
    size: np.ndarray  # int64 bytes
    owner_ns: dict[str, str] = field(default_factory=dict)  # org -> namespace of its product owner

    # ---- generation ---------------------------------------------------------------------------------
    @classmethod
    def generate(cls, n: int, seed: int = 42, owner_ns: dict[str, str] | None = None) -> Catalog:
        rng = np.random.default_rng(seed)
        weights = np.array([p.weight for p in PRODUCTS])
        product = rng.choice(len(PRODUCTS), size=n, p=weights / weights.sum()).astype(np.int8)
        start, end = EPOCH_START.timestamp(), EPOCH_END.timestamp()
        acquired = np.round(rng.uniform(start, end, n), 6)
        # DEM tiles are a handful of releases, not a time series.
        dem = product == len(PRODUCTS) - 1
        acquired[dem] = rng.choice(
            [dt.datetime(y, 6, 1, tzinfo=dt.UTC).timestamp() for y in (2015, 2018, 2021)], dem.sum()
        )
        order = np.lexsort((product, acquired))  # physical order = ingest order = acquisition time
        product, acquired = product[order], acquired[order]
        seq = np.zeros(n, dtype=np.int64)
        for p in range(len(PRODUCTS)):
            mask = product == p
            seq[mask] = np.arange(mask.sum())

        # Centres: 70% over land boxes (by weight), 30% anywhere between 60°S and 72°N.
        land = np.array(LAND, dtype=np.float64)
        which = rng.choice(len(LAND), size=n, p=land[:, 4] / land[:, 4].sum())
        cx = rng.uniform(land[which, 0], land[which, 2])
        cy = rng.uniform(land[which, 1], land[which, 3])
        anywhere = rng.random(n) < 0.30
        land_only = np.array([p.land_only for p in PRODUCTS])[product]
        anywhere &= ~land_only
        cx[anywhere] = rng.uniform(-180, 180, anywhere.sum())
        cy[anywhere] = rng.uniform(-60, 72, anywhere.sum())
        cx = np.where(cx > 180, cx - 360, cx)
        size_km = np.array([p.scene_km for p in PRODUCTS])[product] * rng.uniform(0.9, 1.1, (n, 1))
        half_h = size_km[:, 1] / 2 / 111.32
        half_w = size_km[:, 0] / 2 / (111.32 * np.cos(np.radians(cy)))
        tilted = np.array([p.tilted for p in PRODUCTS])[product]
        angle = np.where(tilted, np.radians(rng.uniform(-14, 14, n)), 0.0)
        # DEM tiles: axis-aligned 1° cells on integer degrees.
        cx[dem], cy[dem] = np.floor(cx[dem]) + 0.5, np.floor(cy[dem]) + 0.5
        half_w[dem], half_h[dem] = 0.5, 0.5
        unit = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)  # counter-clockwise
        dx = unit[None, :, 0] * half_w[:, None]
        dy = unit[None, :, 1] * half_h[:, None]
        cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
        corners = np.empty((n, 4, 2))
        corners[:, :, 0] = np.round(cx[:, None] + dx * cos - dy * sin, 6)
        corners[:, :, 1] = np.clip(np.round(cy[:, None] + dx * sin + dy * cos, 6), -89.9, 89.9)

        cloud = np.round(rng.beta(0.55, 1.4, n), 4)
        cloud[rng.random(n) < 0.02] = np.nan
        tag_bits = np.zeros(n, dtype=np.uint8)
        for bit, probability in enumerate(TAG_PROBABILITY):
            tag_bits |= (rng.random(n) < probability).astype(np.uint8) << bit
        n_providers = np.array([len(p.providers) for p in PRODUCTS])[product]
        provider = (rng.random(n) * n_providers).astype(np.int8)
        shares = np.array([share for *_, share in acl_patterns("acme", "x")])
        acl = rng.choice(len(shares), size=n, p=shares).astype(np.int8)
        base = np.array([p.bytes_per_image for p in PRODUCTS])[product]
        size = (base * rng.uniform(0.5, 1.5, n)).astype(np.int64)
        return cls(
            n=n,
            seed=seed,
            product=product,
            seq=seq,
            acquired=acquired,
            corners=corners,
            cloud=cloud,
            tags=tag_bits,
            provider=provider,
            acl=acl,
            size=size,
            owner_ns=dict(owner_ns or {}),
        )

    # ---- per-image attributes -----------------------------------------------------------------------
    def product_id(self, i: int) -> str:
        return PRODUCTS[self.product[i]].id

    def name(self, i: int) -> str:
        spec = PRODUCTS[self.product[i]]
        day = dt.datetime.fromtimestamp(self.acquired[i], dt.UTC).strftime("%Y%m%d")
        return f"{spec.prefix}_{day}_{self.seq[i]:07d}"

    def image_id(self, i: int) -> str:
        return f"{self.product_id(i)}:{self.name(i)}"

    def tag_list(self, i: int) -> list[str]:
        bits = int(self.tags[i])
        return [tag for bit, tag in enumerate(TAGS) if bits >> bit & 1]

    def provider_id(self, i: int) -> str:
        return PRODUCTS[self.product[i]].providers[self.provider[i]]

    def acl_of(self, i: int) -> tuple[list[str], list[str], list[str]]:
        spec = PRODUCTS[self.product[i]]
        owners, readers, writers, _ = acl_patterns(spec.org, self.owner_ns.get(spec.org, spec.org))[self.acl[i]]
        return owners, readers, writers

    def crosses(self) -> np.ndarray:
        xs = self.corners[:, :, 0]
        return (xs.max(axis=1) > 180) | (xs.min(axis=1) < -180)

    def geometry(self, i: int) -> Polygon | MultiPolygon:
        """The stored footprint: the rectangle, or its pieces on both sides of ±180° (as catalogsite.geo)."""
        ring = [tuple(c) for c in self.corners[i]]
        polygon = Polygon(ring)
        minx, _, maxx, _ = polygon.bounds
        if minx >= -180 and maxx <= 180:
            return polygon
        pieces = []
        for shift in (-1, 0, 1):
            part = polygon.intersection(box(-180 + 360 * shift, -90, 180 + 360 * shift, 90))
            if not part.is_empty and part.area > 0:
                pieces.append(shapely.affinity.translate(part, xoff=-360 * shift))
        return MultiPolygon(pieces)

    def geometry_wkt(self, i: int, crossing: bool) -> str:
        if not crossing:
            ring = [*self.corners[i].tolist(), self.corners[i][0].tolist()]
            return f"SRID=4326;POLYGON(({_ring_wkt(ring)}))"
        return "SRID=4326;" + self.geometry(i).wkt

    def geojson(self, i: int, crossing: bool) -> dict:
        if not crossing:
            ring = [*self.corners[i].tolist(), self.corners[i][0].tolist()]
            return {"type": "Polygon", "coordinates": [ring]}
        return shapely.geometry.mapping(self.geometry(i))

    def files(self, i: int) -> list[dict]:
        total = int(self.size[i])
        spec = PRODUCTS[self.product[i]]
        count = 1 + int(self.seq[i] % 3)
        sizes = [total // count] * count
        sizes[0] += total - sum(sizes)
        return [
            {
                "href": f"gs://tessera-bench/{spec.prefix.lower()}/{self.name(i)}/b{k}.tif",
                "size_bytes": int(s),
                "hash": f"{(i * 2654435761 + k) & 0xFFFFFFFFFFFFFFFF:032x}",
            }
            for k, s in enumerate(sizes)
        ]

    # ---- Tessera rows (COPY text format) --------------------------------------------------------------
    COPY_COLUMNS = (
        "id",
        "product_id",
        "name",
        "geometry",
        "cs_code",
        "geotrans",
        "x_pixels",
        "y_pixels",
        "acquired",
        "published",
        "storage_state",
        "files",
        "size_bytes",
        "cloud_fraction",
        "provider_id",
        "satellite_id",
        "tags",
        "extra_properties",
        "owners",
        "readers",
        "writers",
        "created",
        "modified",
    )

    def copy_lines(self, start: int, stop: int, now: str) -> str:
        if getattr(self, "_crossing", None) is None:
            self._crossing = self.crosses()
        crossing = self._crossing
        out = []
        for i in range(start, stop):
            owners, readers, writers = self.acl_of(i)
            cloud = "\\N" if math.isnan(self.cloud[i]) else repr(float(self.cloud[i]))
            zone = 32600 + int((self.corners[i, 0, 0] + 180) // 6) % 60 + 1
            published = pg_ts(self.acquired[i] + 86400 * 3)
            extra = json.dumps({"path": int(self.seq[i] % 233), "row": int(self.seq[i] % 248)}, separators=(",", ":"))
            files = json.dumps(self.files(i), separators=(",", ":"))
            out.append(
                "\t".join(
                    (
                        self.image_id(i),
                        self.product_id(i),
                        self.name(i),
                        self.geometry_wkt(i, bool(crossing[i])),
                        f"EPSG:{zone}",
                        "{300000.0,30.0,0.0,4500000.0,0.0,-30.0}",
                        "7801",
                        "7711",
                        pg_ts(self.acquired[i]),
                        published,
                        "available",
                        files,
                        str(int(self.size[i])),
                        cloud,
                        self.provider_id(i),
                        self.provider_id(i).upper(),
                        pg_array(self.tag_list(i)),
                        extra,
                        pg_array(owners),
                        pg_array(readers),
                        pg_array(writers),
                        now,
                        now,
                    )
                )
            )
        return "\n".join(out) + "\n" if out else ""

    # ---- STAC items for the peer -----------------------------------------------------------------------
    def stac_item(self, i: int, crossing: bool) -> dict:
        geometry = self.geojson(i, crossing)
        if crossing:
            minx, miny, maxx, maxy = self.geometry(i).bounds
        else:
            xs, ys = self.corners[i, :, 0], self.corners[i, :, 1]
            minx, miny, maxx, maxy = float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())
        properties = {
            "datetime": iso(self.acquired[i]),
            "published": iso(self.acquired[i] + 86400 * 3),
            "cloud_fraction": None if math.isnan(self.cloud[i]) else float(self.cloud[i]),
            "tags": self.tag_list(i),
            "provider_id": self.provider_id(i),
            "platform": self.provider_id(i),
            "proj:epsg": 32600 + int((self.corners[i, 0, 0] + 180) // 6) % 60 + 1,
            "size_bytes": int(self.size[i]),
        }
        if properties["cloud_fraction"] is None:
            del properties["cloud_fraction"]
        assets = {
            f"b{k}": {"href": f["href"], "type": "image/tiff; application=geotiff", "file:size": f["size_bytes"]}
            for k, f in enumerate(self.files(i))
        }
        return {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": self.image_id(i),
            "collection": self.product_id(i),
            "geometry": geometry,
            "bbox": [minx, miny, maxx, maxy],
            "properties": properties,
            "links": [],
            "assets": assets,
        }

    # ---- brute force --------------------------------------------------------------------------------
    def visible(self, readable: set[str], owner: set[str]) -> np.ndarray:
        """The ACL rule of protocol §7.1 evaluated per (product, pattern): owners ∩ owner principals,
        or readers/writers ∩ readable principals. Independent of catalogsite.permissions."""
        allowed = np.zeros((len(PRODUCTS), 8), dtype=bool)
        for p, spec in enumerate(PRODUCTS):
            for a, (owners, readers, writers, _) in enumerate(acl_patterns(spec.org, self.owner_ns.get(spec.org, ""))):
                allowed[p, a] = bool(set(owners) & owner or set(readers) & readable or set(writers) & readable)
        return allowed[self.product, self.acl]

    def select(
        self,
        *,
        readable: set[str],
        owner: set[str],
        product: str | None = None,
        ids: list[str] | None = None,
        acquired_gte: float | None = None,
        acquired_lt: float | None = None,
        cloud_lt: float | None = None,
        tag: str | None = None,
        provider: str | None = None,
        intersects=None,
    ) -> np.ndarray:
        """Indices of the images matching the filter, for the user with these principals."""
        mask = np.array(self.visible(readable, owner), dtype=bool)  # a copy: narrowed in place below
        if product is not None:
            mask &= self.product == [p.id for p in PRODUCTS].index(product)
        if acquired_gte is not None:
            mask &= self.acquired >= acquired_gte
        if acquired_lt is not None:
            mask &= self.acquired < acquired_lt
        if cloud_lt is not None:
            with np.errstate(invalid="ignore"):
                mask &= self.cloud < cloud_lt  # NaN (null) never matches, as in SQL
        if tag is not None:
            mask &= (self.tags >> TAGS.index(tag) & 1).astype(bool)
        if provider is not None:
            per_product = np.array(
                [spec.providers.index(provider) if provider in spec.providers else -1 for spec in PRODUCTS]
            )
            mask &= self.provider == per_product[self.product]
        if intersects is not None:
            minx, miny, maxx, maxy = intersects.bounds
            xs, ys = self.corners[:, :, 0], self.corners[:, :, 1]
            near = (ys.max(axis=1) >= miny) & (ys.min(axis=1) <= maxy)
            near &= ((xs.max(axis=1) >= minx) & (xs.min(axis=1) <= maxx)) | self.crosses()
            candidates = np.flatnonzero(mask & near)
            hits = shapely.intersects(np.array([self.geometry(i) for i in candidates], dtype=object), intersects)
            mask[:] = False
            mask[candidates[hits]] = True
        selected = np.flatnonzero(mask)
        if ids is not None:
            wanted = set(ids)
            selected = np.array([i for i in selected if self.image_id(i) in wanted], dtype=np.int64)
        return selected

    def order_by_id(self, indices: np.ndarray) -> list[str]:
        return sorted(self.image_id(i) for i in indices)

    def order_by_cloud(self, indices: np.ndarray, descending: bool = False) -> list[str]:
        """ASC NULLS LAST, id ASC  /  DESC NULLS FIRST, id DESC (catalogsite.pagination)."""
        keyed = [
            (math.isnan(self.cloud[i]), 0.0 if math.isnan(self.cloud[i]) else float(self.cloud[i]), self.image_id(i))
            for i in indices
        ]
        keyed.sort(reverse=descending)
        return [key[2] for key in keyed]
