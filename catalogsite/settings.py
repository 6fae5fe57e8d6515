"""Tessera settings, read from the environment (see .env.example).

DEBUG is off unless asked for; outside DEBUG the secret key, database and broker must be configured
explicitly, so a production instance never runs on a guessable fallback.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
TESTING = env.bool("TESSERA_TESTING", default=False)


def _required(name: str, dev_default: str) -> str:
    """A setting that must be given in production; DEBUG and test runs get a local default."""
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG or TESTING:
        return dev_default
    raise ImproperlyConfigured(f"Set {name} in the environment (see .env.example); it is required when DEBUG is off.")


SECRET_KEY = _required("SECRET_KEY", "insecure-development-key-do-not-use-in-production")
# Tokens are signed with their own key so rotating it logs out API clients without touching sessions.
JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default="") or SECRET_KEY
JWT_ACCESS_TOKEN_LIFETIME = env.int("JWT_ACCESS_TOKEN_LIFETIME", default=3600)
JWT_ISSUER = env.str("JWT_ISSUER", default="tessera")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if (DEBUG or TESTING) else [])
if not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_dramatiq",
    "catalogsite",
    "accounts",
    "products",
    "imagery",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "catalogsite.urls"
WSGI_APPLICATION = "catalogsite.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/admin/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": environ.Env.db_url_config(
        _required("DATABASE_URL", "postgis://postgres@127.0.0.1:5432/tessera"),
        engine="django.contrib.gis.db.backends.postgis",
    )
}
# Whatever scheme was given, the catalog needs PostGIS.
DATABASES["default"]["ENGINE"] = "catalogsite.db"  # PostGIS, with a health check without a round trip
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Planner settings of our sessions (EXPLAIN ANALYZE evidence in bench/README.md):
# - no JIT: PostGIS functions carry large planner costs, so PostgreSQL JIT-compiled plain index searches,
#   spending 40+ ms compiling a query that runs in 3;
# - no parallel workers by default: searches are short index scans, for which starting workers costs more
#   than it saves (a large-polygon search: 50-80 ms in parallel, 13-20 ms without) and takes cores from the
#   other requests. Summaries, which scan many rows, turn them back on (imagery/selectors.py);
# - random_page_cost 1.1 (the usual value for SSDs or a cached working set, instead of 4 for spinning disks):
#   with 4 the planner preferred bitmap scans that fetch fewer heap pages over index scans in sort order.
# DB_PLANNER_OPTIONS replaces these (e.g. "" for the server's own settings).
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
_planner = env.str(
    "DB_PLANNER_OPTIONS", default="-c jit=off -c max_parallel_workers_per_gather=0 -c random_page_cost=1.1"
)
_db_options["options"] = f"{_db_options.get('options', '')} {_planner}".strip()

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "var" / "static")))
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
if TESTING:
    # Fast hashing keeps the many user fixtures cheap; never used outside test runs.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Request bodies: the catalog API takes JSON documents only; 10 MiB is far above any legitimate document.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)

# Where the Catalog v2 API lives; the descarteslabs client is pointed at <origin>/<prefix>.
CATALOG_URL_PREFIX = env.str("CATALOG_URL_PREFIX", default="metadata/v1/catalog/v2").strip("/")
CATALOG_PAGE_SIZE = env.int("CATALOG_PAGE_SIZE", default=100)
CATALOG_MAX_PAGE_SIZE = env.int("CATALOG_MAX_PAGE_SIZE", default=1000)
CATALOG_MAX_GET_MANY = env.int("CATALOG_MAX_GET_MANY", default=1000)
CATALOG_MAX_SUMMARY_BUCKETS = env.int("CATALOG_MAX_SUMMARY_BUCKETS", default=10000)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["catalogsite.jsonapi.JSONAPIParser"],
    "DEFAULT_RENDERER_CLASSES": ["catalogsite.jsonapi.JSONAPIRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "catalogsite.jsonapi.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tessera Catalog API",
    "DESCRIPTION": "Catalog v2 protocol (wire-compatible with the descarteslabs 3.2.2 client).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"BandTypeEnum": "products.choices.BandType"},
}

# Broker: Redis by default; a RabbitMQ URL (amqp://) in BROKER_URL selects RabbitMQ.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
BROKER_URL = env.str("BROKER_URL", default="") or REDIS_URL
if BROKER_URL.startswith("amqp"):
    _broker = {"BROKER": "dramatiq.brokers.rabbitmq.RabbitmqBroker", "OPTIONS": {"url": BROKER_URL}}
else:
    _broker = {"BROKER": "dramatiq.brokers.redis.RedisBroker", "OPTIONS": {"url": BROKER_URL}}
DRAMATIQ_BROKER = {
    **_broker,
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Retries",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
    ],
}
# Queue names get a prefix so parallel test runs (and several instances on one Redis) never share queues.
DRAMATIQ_QUEUE_PREFIX = env.str("DRAMATIQ_QUEUE_PREFIX", default="")
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

SESSION_COOKIE_HTTPONLY = True
# Off by default because `make run` serves plain http on localhost; set SECURE_COOKIES=true behind TLS.
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# GeoDjango warns that Debian 12's GDAL 3.6 cannot block file/network access from spatial references.
# Tessera never hands untrusted SRS strings to GeoDjango's GDAL: footprints arrive as GeoJSON in EPSG:4326
# (parsed by GEOS/shapely), and rasters are parsed by rasterio's own GDAL in a sandboxed child process.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

# ==== Uploads and ingest (uploads/) =====================================================================
# Everything below belongs to the upload channel and the ingest worker; all values come from the
# environment with defaults that are safe for a single machine.
import uuid as _uuid  # noqa: E402 - kept inside the block it serves

INSTALLED_APPS += ["uploads"]

# Per-file byte cap of a resumable upload URL (files, and the sum of ndarray bytes + header).
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=4 * 1024**3)
# Lifetime of a resumable URL; the capability is never valid for more than an hour (security notes §2.8).
UPLOAD_URL_TTL = min(env.int("UPLOAD_URL_TTL", default=3600), 3600)
# Files per upload (one band per file is the most an image needs).
UPLOAD_MAX_FILES = env.int("UPLOAD_MAX_FILES", default=64)
# `transferring` uploads older than this are canceled by the reaper and their staged bytes removed.
UPLOAD_TRANSFER_TIMEOUT = env.int("UPLOAD_TRANSFER_TIMEOUT", default=24 * 3600)
# Staged bytes of failed uploads are kept this long (seconds) so an administrator can retry them; 0 = none.
UPLOAD_FAILED_STAGING_RETENTION = env.int("UPLOAD_FAILED_STAGING_RETENTION", default=0)
# Where PUT bodies are spooled (hashing on the way) before they go to storage.
UPLOAD_SPOOL_DIR = env.str("UPLOAD_SPOOL_DIR", default=str(BASE_DIR / "var" / "upload-spool"))

# Declared raster size limits, checked before a single pixel is decoded (security notes §0.4).
INGEST_MAX_PIXELS = env.int("INGEST_MAX_PIXELS", default=2_000_000_000)  # width * height * bands
INGEST_MAX_DIMENSION = env.int("INGEST_MAX_DIMENSION", default=200_000)  # width or height
INGEST_MAX_BANDS = env.int("INGEST_MAX_BANDS", default=512)
# The sandboxed parser/converter child: wall clock (s), address space (bytes), output file size (bytes).
INGEST_CHILD_TIMEOUT = env.int("INGEST_CHILD_TIMEOUT", default=1800)
INGEST_CHILD_MEMORY = env.int("INGEST_CHILD_MEMORY", default=3 * 1024**3)
INGEST_CHILD_MAX_OUTPUT = env.int("INGEST_CHILD_MAX_OUTPUT", default=16 * 1024**3)
# Scratch space of the ingest worker (per-job directories, removed after each job and by the reaper).
# Under var/ by default: the same filesystem as local storage, so staged files are hard-linked, not copied.
INGEST_WORK_DIR = env.str("INGEST_WORK_DIR", default=str(BASE_DIR / "var" / "ingest"))
# Bounded ingest: a file that crashed or timed out the worker this many times fails for good.
INGEST_MAX_ATTEMPTS = env.int("INGEST_MAX_ATTEMPTS", default=3)
# A running upload's lease; the worker renews it while the child runs, the reaper recovers expired ones.
INGEST_LEASE_SECONDS = env.int("INGEST_LEASE_SECONDS", default=120)
# A pending upload not started within this many seconds is re-enqueued by the reaper.
INGEST_PENDING_GRACE = env.int("INGEST_PENDING_GRACE", default=300)
# Seconds between reaper runs (the periodic reaper chain started by every ingest worker).
INGEST_REAPER_INTERVAL = env.int("INGEST_REAPER_INTERVAL", default=60)
INGEST_REAPER_AUTOSTART = env.bool("INGEST_REAPER_AUTOSTART", default=True)
# COG encoding of stored rasters and the preview size.
INGEST_COG_COMPRESSION = env.str("INGEST_COG_COMPRESSION", default="DEFLATE")
INGEST_COG_BLOCKSIZE = env.int("INGEST_COG_BLOCKSIZE", default=512)
INGEST_PREVIEW_SIZE = env.int("INGEST_PREVIEW_SIZE", default=256)

# Raster storage ("imagery" alias): the local filesystem unless STORAGE_BACKEND=s3.
STORAGE_BACKEND = env.str("STORAGE_BACKEND", default="local").lower()
if STORAGE_BACKEND == "s3":
    STORAGES["imagery"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": _required("AWS_STORAGE_BUCKET_NAME", "tessera"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
            # Keys are server-generated and unique, so an existing key is never meant to be replaced.
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
        },
    }
elif STORAGE_BACKEND == "local":
    STORAGES["imagery"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT / "imagery"), "base_url": None},
    }
else:
    raise ImproperlyConfigured(f"STORAGE_BACKEND must be 'local' or 's3', not {STORAGE_BACKEND!r}.")

# One periodic reaper chain per deployment, kicked by every worker at boot (uploads.middleware).
DRAMATIQ_BROKER["MIDDLEWARE"].append("uploads.middleware.ReaperKickMiddleware")
# Test runs get their own queue names, so a stray worker on the same Redis never steals their messages.
if TESTING and not env.str("DRAMATIQ_QUEUE_PREFIX", default=""):
    DRAMATIQ_QUEUE_PREFIX = f"test-{_uuid.uuid4().hex[:10]}-"
# ==== end of uploads and ingest =========================================================================

# ==== Web UI (templates/, catalogsite/static/, login, security headers) ==================================
# The server-rendered pages for data stewards. Everything here only adds to the settings above: the API keeps
# its JWT + session authentication, and `/token` and the resumable-upload PUT stay CSRF-exempt (they are
# decorated with csrf_exempt and never reach a login form).
from datetime import timedelta as _timedelta  # noqa: E402 - kept inside the block it serves
from urllib.parse import urlsplit as _urlsplit  # noqa: E402

from csp.constants import NONE as _CSP_NONE  # noqa: E402
from csp.constants import SELF as _CSP_SELF  # noqa: E402

INSTALLED_APPS += ["axes", "csp"]
# CSP headers are added to every response, also the ones produced by middleware further down.
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "csp.middleware.CSPMiddleware")
# django-axes must see the response of the login view it locks, so it is the last middleware (its docs).
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
AUTHENTICATION_BACKENDS = [
    # Counts failed logins on every form that passes the request (the UI login, the admin login).
    "accounts.backends.LoginRateLimitBackend",
    "django.contrib.auth.backends.ModelBackend",
]
TEMPLATES[0]["OPTIONS"]["context_processors"].append("catalogsite.context_processors.ui")

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

# Login rate limiting: a username tried from one address is locked for a finite cool-off (security notes §0.11),
# so a guessing attacker is slowed down without letting anyone lock a user out from everywhere.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = _timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/lockout.html"
# Lockouts are recorded in the database (admin: Access attempts); no log line on every start-up.
AXES_VERBOSE = False
# The address is REMOTE_ADDR (gunicorn's peer); behind a proxy the username part still limits guessing.

# The map's background tiles. OpenStreetMap's by default; empty for none. Footprints are drawn either way,
# on a plain background when the tiles cannot be loaded (offline, blocked).
BASEMAP_URL = env.str("BASEMAP_URL", default="https://tile.openstreetmap.org/{z}/{x}/{y}.png")
BASEMAP_ATTRIBUTION = env.str(
    "BASEMAP_ATTRIBUTION", default='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>'
)
_basemap = _urlsplit(BASEMAP_URL.replace("{s}", "a")) if BASEMAP_URL else None
BASEMAP_ORIGIN = f"{_basemap.scheme}://{_basemap.netloc}" if _basemap and _basemap.netloc else ""
if BASEMAP_ORIGIN and "{s}" in BASEMAP_URL:
    # Subdomain placeholders ({s}.tile.example.org) need a wildcard source.
    BASEMAP_ORIGIN = f"{_basemap.scheme}://*.{_basemap.netloc.split('.', 1)[1]}"

# Content Security Policy (django-csp 4): scripts only from our own static files, never inline, so an
# injected <script> or event handler attribute does nothing. Map tiles may come from the basemap origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_CSP_SELF],
        "script-src": [_CSP_SELF],
        "style-src": [_CSP_SELF],
        "img-src": [_CSP_SELF, "data:", *([BASEMAP_ORIGIN] if BASEMAP_ORIGIN else [])],
        "font-src": [_CSP_SELF],
        "connect-src": [_CSP_SELF],
        "object-src": [_CSP_NONE],
        "base-uri": [_CSP_SELF],
        "form-action": [_CSP_SELF],
        "frame-ancestors": [_CSP_NONE],
    },
}

# Production over https (SECURE_COOKIES=true): redirect http to https, HSTS, and trust the proxy's
# X-Forwarded-Proto when told to. Off by default, like SECURE_COOKIES, because `make run` serves plain http.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SESSION_COOKIE_SECURE)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if SESSION_COOKIE_SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SESSION_COOKIE_SECURE)
# The preload directive only states consent to the browsers' HSTS preload list; set SECURE_HSTS_PRELOAD=false to
# withhold it (check --deploy then warns).
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=SESSION_COOKIE_SECURE)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Sessions of the web UI end after two weeks of inactivity, or when the browser closes if asked to.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
# The bands, images and footprints pages show this many rows per page / footprints per map.
UI_PAGE_SIZE = env.int("UI_PAGE_SIZE", default=25)
UI_MAP_MAX_FEATURES = env.int("UI_MAP_MAX_FEATURES", default=1000)
# The client id the UI's environment snippet tells the descarteslabs client to send (it becomes `aud`).
UI_CLIENT_ID = env.str("UI_CLIENT_ID", default="tessera")
# ==== end of web UI =====================================================================================

# ==== Pixel service (raster/: POST /raster/v2/npz, exports, XYZ tiles) ===================================
# Limits are checked before any pixel is read or array allocated; a request beyond them is a 400 that says
# what fits. Defaults suit a 2-core / 24 GiB machine running a few gunicorn workers.
INSTALLED_APPS += ["raster"]
# Output values per request: width × height × (bands + source bands of derived bands). 64 Mi values is at most
# ~0.6 GiB of arrays (Float64 + mask), e.g. 3 bands of 4,600² or one band of 8,000².
RASTER_MAX_PIXELS = env.int("RASTER_MAX_PIXELS", default=64 * 1024 * 1024)
# Longest output side in pixels (also keeps PNG/JPEG exports within what those formats hold).
RASTER_MAX_DIMENSION = env.int("RASTER_MAX_DIMENSION", default=32768)
# Source values one warp may read from one image (at the chosen COG overview): bounds the time a request over
# a large image without coarse enough overviews can take. GDAL's warper streams them in chunks.
RASTER_MAX_SOURCE_PIXELS = env.int("RASTER_MAX_SOURCE_PIXELS", default=512 * 1024 * 1024)
# Images per request (a mosaic of ids) and bands per request.
RASTER_MAX_IMAGES = env.int("RASTER_MAX_IMAGES", default=500)
RASTER_MAX_BANDS = env.int("RASTER_MAX_BANDS", default=64)
# Open datasets kept per web thread, and for how long (seconds): neighbouring tiles of one file reuse the
# open handle and GDAL's cache of its decoded blocks (raster.sources.open_dataset). 0 opens every time.
RASTER_DATASET_CACHE_SIZE = env.int("RASTER_DATASET_CACHE_SIZE", default=16)
RASTER_DATASET_CACHE_SECONDS = env.int("RASTER_DATASET_CACHE_SECONDS", default=60)
# GDAL warp working memory per read (MiB).
RASTER_WARP_MEMORY_MB = env.int("RASTER_WARP_MEMORY_MB", default=128)
# PNG/JPEG exports without resolution or size fit this many pixels on their longer side.
RASTER_EXPORT_DEFAULT_SIZE = env.int("RASTER_EXPORT_DEFAULT_SIZE", default=1024)
# Tiles: deepest zoom, images composited per product-mosaic tile (newest first), browser cache lifetime (s).
RASTER_TILE_MAX_ZOOM = env.int("RASTER_TILE_MAX_ZOOM", default=24)
RASTER_TILE_MAX_IMAGES = env.int("RASTER_TILE_MAX_IMAGES", default=20)
RASTER_TILE_MAX_AGE = env.int("RASTER_TILE_MAX_AGE", default=300)
# Tile encoding. PNG deflate level 1 (GDAL's default is 6): measured on 256² RGBA tiles of a Landsat-like scene,
# 6.7 ms instead of 25.2 ms per tile for 8 % more bytes (136 KB vs 126 KB); JPEG quality as GDAL's default.
RASTER_TILE_PNG_ZLEVEL = env.int("RASTER_TILE_PNG_ZLEVEL", default=1)
RASTER_TILE_JPEG_QUALITY = env.int("RASTER_TILE_JPEG_QUALITY", default=75)
# glibc thresholds for the web processes (catalogsite.allocator): keep freed array memory up to the trim
# threshold for reuse instead of faulting fresh pages in on every pixel request; 0 leaves glibc's defaults.
WEB_MALLOC_MMAP_THRESHOLD_MB = env.int("WEB_MALLOC_MMAP_THRESHOLD_MB", default=64)
WEB_MALLOC_TRIM_THRESHOLD_MB = env.int("WEB_MALLOC_TRIM_THRESHOLD_MB", default=256)
# ==== end of pixel service ===============================================================================
