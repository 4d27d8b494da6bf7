"""Where the real test servers are (started by `tools/testenv up`, which `make test` runs).

A test that needs a server and cannot find it fails with what to do: it is never skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
ENV_FILE = CACHE / "chatconnect" / "testenv" / "env"


def _setting(name: str) -> str:
    if name in os.environ:
        return os.environ[name]
    if ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == name:
                return value.strip()
    pytest.fail(
        f"{name} is not set and {ENV_FILE} does not name it: start the test servers with "
        "`tools/testenv up` (make test does this)"
    )


def redis_url() -> str:
    """The URL of the test Redis."""
    return _setting("CHATCONNECT_TEST_REDIS_URL")


def cassandra_contact() -> str:
    """host:port of the test Cassandra."""
    return _setting("CHATCONNECT_TEST_CASSANDRA")
