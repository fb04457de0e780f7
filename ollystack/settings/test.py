"""Test profile: the embedded profile with a throw-away var/ and fast password hashing."""

import os
import tempfile

os.environ.setdefault("OLLYSTACK_VAR_DIR", tempfile.mkdtemp(prefix="ollystack-test-"))

from ollystack.settings.embedded import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 (whitenoise warns about a missing root)
