"""One Django configuration for every test module that uses Django.

Settings can be configured once per process, and pytest imports (collects) every test
module before running any, so each module calls :func:`configure` at import and gets
the same settings whichever comes first: the app, a local-memory cache, the placeholder
``GENESYS_GATEWAY`` and the databases of the conversation-store tests:

* ``default``: SQLite; its test database is created by tests/test_conversation_stores.py
  (a file, so that threads and child processes share it);
* ``broken``: SQLite in a directory that does not exist (every query fails);
* ``no_tables``: an in-memory SQLite database nobody migrated;
* ``postgres`` / ``postgres_down``: filled in by the PostgreSQL fixture
  (tests/fixtures_postgres.py) with a real server / a port nobody listens on.
"""

from __future__ import annotations

SECRET = "s3cr3t-django-value"
PLACEHOLDER = {  # valid at start-up (ready() validates); tests override it with an emulator
    "BASE_URL": "http://127.0.0.1:9",
    "CLIENT_ID": "django-client",
    "CLIENT_SECRET": SECRET,
}

_POSTGRES = {"ENGINE": "django.db.backends.postgresql", "NAME": "postgres", "USER": "postgres",
             "HOST": "127.0.0.1", "PORT": "", "OPTIONS": {"connect_timeout": 5}}

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:",
                "OPTIONS": {"timeout": 30}},
    "broken": {"ENGINE": "django.db.backends.sqlite3",
               "NAME": "/nonexistent-genesys-gateway-dir/db.sqlite3"},
    "no_tables": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    "postgres": dict(_POSTGRES),
    "postgres_down": dict(_POSTGRES),
}


def configure(root_urlconf: str | None = None) -> None:
    """Configure Django once (and point ``ROOT_URLCONF`` at ``root_urlconf`` if given)."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test-only",
            ALLOWED_HOSTS=["testserver"],
            INSTALLED_APPS=["django.contrib.contenttypes", "genesys_gateway.contrib.django"],
            DATABASES=DATABASES,
            MIDDLEWARE=[],
            ROOT_URLCONF=root_urlconf,
            USE_TZ=True,
            CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
            GENESYS_GATEWAY=PLACEHOLDER,
        )
        django.setup()
    elif root_urlconf is not None:
        settings.ROOT_URLCONF = root_urlconf
