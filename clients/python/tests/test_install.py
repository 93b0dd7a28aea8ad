"""`pip install clients/python` works offline, the way docs/python.md says.

Each test installs a copy of clients/python into a fresh virtual environment
that sees Debian's pyzmq and msgpack, with no package index and no local
wheel directory, then runs the installed package from outside the source
tree. The build backend is the package's own (build_backend/troupe_build.py):
pip must not need to download setuptools.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tarfile

import pytest

from conftest import PKG_ROOT

TIMEOUT = 120  # seconds for any one step; a normal one takes a few


def run(argv: list[str], cwd: pathlib.Path) -> subprocess.CompletedProcess:
    drop = ("PYTHONPATH", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PIP_NO_INDEX"] = "1"  # as on a machine with no package index
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture
def source(tmp_path: pathlib.Path) -> pathlib.Path:
    copy = tmp_path / "src"
    shutil.copytree(PKG_ROOT, copy, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    return copy


def make_venv(where: pathlib.Path) -> pathlib.Path:
    made = run([sys.executable, "-m", "venv", "--system-site-packages", str(where)], cwd=where.parent)
    assert made.returncode == 0, made.stderr
    return where / "bin"


def pip_install(bin_dir: pathlib.Path, *args: str) -> None:
    done = run([str(bin_dir / "pip"), "install", *args], cwd=bin_dir.parent.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def imported_from(bin_dir: pathlib.Path) -> pathlib.Path:
    probe = run([str(bin_dir / "python"), "-c", "import troupe; print(troupe.__file__); troupe.Client"],
                cwd=bin_dir.parent.parent)
    assert probe.returncode == 0, probe.stderr
    return pathlib.Path(probe.stdout.strip())


def assert_worker_runs(bin_dir: pathlib.Path) -> None:
    module = [str(bin_dir / "python"), "-m", "troupe.worker", "--help"]
    script = [str(bin_dir / "troupe-py-worker"), "--help"]
    for argv in (module, script):
        helped = run(argv, cwd=bin_dir.parent.parent)
        assert helped.returncode == 0, helped.stderr
        assert "--broker" in helped.stdout


def test_pip_install_offline(tmp_path, source):
    bin_dir = make_venv(tmp_path / "venv")
    pip_install(bin_dir, str(source))
    assert imported_from(bin_dir).is_relative_to(tmp_path / "venv")  # the installed copy
    assert_worker_runs(bin_dir)
    assert not (source / "build").exists()  # the source tree stays clean


def test_editable_install_runs_the_source_tree(tmp_path, source):
    bin_dir = make_venv(tmp_path / "venv")
    pip_install(bin_dir, "-e", str(source))
    assert imported_from(bin_dir) == source / "troupe" / "__init__.py"
    assert_worker_runs(bin_dir)


def test_sdist_is_complete_enough_to_install(tmp_path, source):
    out = tmp_path / "dist"
    out.mkdir()
    hook = "import sys, troupe_build; print(troupe_build.build_sdist(sys.argv[1]))"
    build = run([sys.executable, "-c", hook, str(out)], cwd=source / "build_backend")
    assert build.returncode == 0, build.stderr
    sdist = out / build.stdout.strip()
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    assert "troupe-0.1.0/PKG-INFO" in names and "troupe-0.1.0/troupe/worker.py" in names
    bin_dir = make_venv(tmp_path / "venv")
    pip_install(bin_dir, str(sdist))
    assert imported_from(bin_dir).is_relative_to(tmp_path / "venv")
    assert_worker_runs(bin_dir)
