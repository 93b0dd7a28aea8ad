"""The package installs the way docs/python.md says, offline, and works.

Installs a copy of clients/python into a fresh virtual environment that sees
Debian's pyzmq and msgpack, then runs the installed package from outside the
source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from conftest import PKG_ROOT

TIMEOUT = 120  # seconds for any one step; a normal run takes a few


def run(argv: list[str], cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_INDEX_URL")}
    env["PIP_NO_INDEX"] = "1"  # never reach for the network: everything is local
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def test_installs_into_a_venv_and_runs_from_anywhere(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(PKG_ROOT, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    installed = run([str(venv / "bin" / "pip"), "install", "--no-build-isolation", str(source)], cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    probe = run(
        [str(venv / "bin" / "python"), "-c", "import troupe; print(troupe.__file__); print(troupe.Client.__name__)"],
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    where, client = probe.stdout.split()
    assert where.startswith(str(venv)), where  # the installed copy, not the source tree
    assert client == "Client"

    module = [str(venv / "bin" / "python"), "-m", "troupe.worker", "--help"]
    script = [str(venv / "bin" / "troupe-py-worker"), "--help"]
    for argv in (module, script):
        helped = run(argv, cwd=tmp_path)
        assert helped.returncode == 0, helped.stderr
        assert "--broker" in helped.stdout
