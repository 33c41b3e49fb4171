"""Settings of the refunds example. The gateway is configured from the environment:
``GENESYS_GATEWAY_BASE_URL`` (or ``GENESYSCLOUD_REGION``) and ``GENESYSCLOUD_ACCESS_TOKEN``
(or ``GENESYSCLOUD_OAUTHCLIENT_ID``/``_SECRET``); the tests point it at an emulator."""

import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "refunds.urls"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "genesys_gateway.contrib.django", "refunds"]
MIDDLEWARE: list[str] = []
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3",
    "OPTIONS": {"timeout": 30},
    # a file, so that the tests' concurrent requests (threads) share the test database
    "TEST": {"NAME": os.path.join(tempfile.gettempdir(), f"refunds-test-{os.getpid()}.sqlite3")},
}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

_gateway = {"TOOLS": "refunds.tools:registry", "MAX_ITERATIONS": 5}
if os.environ.get("GENESYS_GATEWAY_BASE_URL"):
    _gateway["BASE_URL"] = os.environ["GENESYS_GATEWAY_BASE_URL"]
else:
    _gateway["REGION"] = os.environ.get("GENESYSCLOUD_REGION", "us-east-1")
if os.environ.get("GENESYSCLOUD_ACCESS_TOKEN"):
    _gateway["ACCESS_TOKEN"] = os.environ["GENESYSCLOUD_ACCESS_TOKEN"]
else:
    _gateway["CLIENT_ID"] = os.environ.get("GENESYSCLOUD_OAUTHCLIENT_ID", "unset")
    _gateway["CLIENT_SECRET"] = os.environ.get("GENESYSCLOUD_OAUTHCLIENT_SECRET", "unset")
GENESYS_GATEWAY = _gateway

#: History kept per model call (an estimate, in tokens).
REFUNDS_MAX_HISTORY_TOKENS = 8000
