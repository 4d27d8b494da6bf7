"""A server process's event loop and garbage collector, set from server settings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROBE = """
import asyncio, gc, json, sys
from chatconnect.runtime.server import run_on_loop
from chatconnect.runtime.settings import ServerConfig

async def probe():
    return {
        "young_threshold": gc.get_threshold()[0],
        "frozen": gc.get_freeze_count(),
        "loop": type(asyncio.get_running_loop()).__module__,
    }

config = ServerConfig(event_loop=sys.argv[1], gc_young_threshold=int(sys.argv[2]))
print(json.dumps(run_on_loop(probe(), config)))
"""


@pytest.mark.parametrize(("event_loop", "module"), [("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_the_process_runs_on_the_chosen_loop_with_the_collector_tuned(
    event_loop: str, module: str
) -> None:
    # A fresh interpreter: freezing and re-tuning the collector is for a whole process.
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, event_loop, "12345"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    seen = json.loads(out)
    assert seen["young_threshold"] == 12345
    assert seen["frozen"] > 1000  # the modules and objects alive at start are frozen
    assert seen["loop"].startswith(module)
