"""Database backend: GeoDjango's PostGIS backend with a health check that costs no round trip (base.py)."""
