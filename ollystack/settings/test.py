"""Test profile: the embedded profile with a throw-away var/ and fast password hashing."""

import os
import tempfile

os.environ.setdefault("OLLYSTACK_VAR_DIR", tempfile.mkdtemp(prefix="ollystack-test-"))

from ollystack.settings.embedded import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
