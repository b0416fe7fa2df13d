"""Every script in benchmarks/ runs to the end at a tiny size, and its checks of what it measured pass.

The figures themselves are not asserted (see BENCHMARKS.md); this catches a script that the code has left
behind (a form it no longer fills, a column it does not write), which would otherwise surface only when
someone next measures. Each script makes its own SQLite database, so this runs once, in the SQLite pass.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection

from tests.support.processes import REPO

SCRIPTS = {
    "engine": (["--projects", "2", "--floor"], "SQLite floor"),
    "http_api": (
        ["--requests", "20", "--warmup", "2", "--rounds", "2", "--threads", "2", "--floor"],
        "Failed requests: 0",
    ),
    "events": (["--projects", "2", "--rounds", "1", "--deliveries", "20", "--history", "0"], "exactly once, in order"),
    "dashboard": (
        ["--tasks", "300", "--assignments", "20", "--requests", "2", "--warmup", "1"],
        "Every response was checked",
    ),
    "execution": (
        ["--executors", "local", "--only", "noop", "--noop-projects", "2"],
        "no-op steps/s",
    ),
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_script_runs(script, tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("the scripts make their own SQLite database: they run in the SQLite pass")
    args, expected = SCRIPTS[script]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRA_") and k != "DJANGO_SETTINGS_MODULE"}
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert expected in done.stdout, done.stdout[-3000:]
