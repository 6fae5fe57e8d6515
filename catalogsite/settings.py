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
DATABASES["default"]["ENGINE"] = "django.contrib.gis.db.backends.postgis"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

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
