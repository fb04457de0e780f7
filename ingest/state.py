"""Small files the ingest process keeps across restarts, under ``OLLYSTACK_VAR_DIR/ingest/``.

``config-snapshot.json`` (ingest keys and tenant policies, ``ingest.auth``) and ``usage.json`` (today's
quota usage of the in-process quota store, ``ingest.quotas``). Both are written whole to a temporary file,
fsynced and renamed over the old one, so a reader or a crash never sees half a file.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

CONFIG_SNAPSHOT_FILE = "config-snapshot.json"
USAGE_FILE = "usage.json"


def state_dir() -> Path:
    from django.conf import settings

    return Path(settings.VAR_DIR) / "ingest"


def write_json_atomic(path: Path, data: Any, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # O_CREAT's mode is filtered by the umask
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
