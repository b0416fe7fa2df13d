"""Test settings: the standalone settings, plus the test database from ORCHESTRA_TEST_DATABASE_URL.

SQLite tests use a file (not :memory:) so threads share one database, as in production.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("ORCHESTRA_HOME", str(Path(tempfile.gettempdir()) / f"orchestra-test-{os.getpid()}"))
os.environ.setdefault("ORCHESTRA_SECRET_KEY", "test-secret-key-not-for-production")

from orchestra.settings import *  # noqa: E402,F403
from orchestra.settings import ORCHESTRA_HOME, database_from_url  # noqa: E402

_test_url = os.environ.get("ORCHESTRA_TEST_DATABASE_URL")
DATABASES = {"default": database_from_url(_test_url)}
if not _test_url:
    DATABASES["default"]["TEST"] = {"NAME": str(ORCHESTRA_HOME / "test.sqlite3")}

ORCHESTRA_EXECUTOR = "eager"
ORCHESTRA_URL = "http://testserver"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = ORCHESTRA_HOME / "media"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGGING = {"version": 1, "disable_existing_loggers": False}
