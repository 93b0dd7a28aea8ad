"""A PEP 517 build backend for the troupe package, with no dependencies.

Why not setuptools: pip builds a package in an isolated environment into
which it downloads the backend named in pyproject.toml. troupe's users are
often on machines with no package index (Debian hosts, CI runners, clusters),
so `pip install clients/python` must work offline. This backend needs only
the standard library. It builds a pure-Python wheel (py3-none-any) of the
`troupe` directory, an editable wheel (PEP 660, a .pth file), and an sdist,
with the metadata read from pyproject.toml's [project] table.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import pathlib
import tarfile
import tomllib
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = "troupe"
SDIST_FILES = ["pyproject.toml", "README.md", "build_backend/troupe_build.py"]


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _metadata(project: dict) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project.get('description', '')}",
        f"Requires-Python: {project['requires-python']}",
    ]
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    readme = project.get("readme")
    body = ""
    if readme:
        lines.append("Description-Content-Type: text/markdown")
        body = (ROOT / readme).read_text(encoding="utf-8")
    return "\n".join(lines) + "\n\n" + body


def _entry_points(project: dict) -> str:
    scripts = project.get("scripts", {})
    if not scripts:
        return ""
    return "[console_scripts]\n" + "".join(f"{name} = {target}\n" for name, target in scripts.items())


def _dist_info(project: dict) -> str:
    return f"{project['name']}-{project['version']}.dist-info"


def _wheel_name(project: dict) -> str:
    return f"{project['name']}-{project['version']}-py3-none-any.whl"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _package_files() -> list[tuple[str, bytes]]:
    files = []
    for path in sorted((ROOT / PACKAGE).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.append((path.relative_to(ROOT).as_posix(), path.read_bytes()))
    return files


def _write_wheel(directory: str, contents: list[tuple[str, bytes]]) -> str:
    project = _project()
    info = _dist_info(project)
    contents = list(contents) + [
        (f"{info}/METADATA", _metadata(project).encode()),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: troupe_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    ]
    entry_points = _entry_points(project)
    if entry_points:
        contents.append((f"{info}/entry_points.txt", entry_points.encode()))
    record = "".join(_record_line(path, data) + "\n" for path, data in contents) + f"{info}/RECORD,,\n"
    contents.append((f"{info}/RECORD", record.encode()))
    name = _wheel_name(project)
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in contents:
            entry = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            wheel.writestr(entry, data, compress_type=zipfile.ZIP_DEFLATED)  # a ZipInfo ignores the archive's default
    return name


# ---- the PEP 517 / PEP 660 hooks ----------------------------------------------


def get_requires_for_build_wheel(config_settings=None) -> list[str]:
    return []


def get_requires_for_build_editable(config_settings=None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings=None) -> list[str]:
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None) -> str:
    return _write_wheel(wheel_directory, _package_files())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None) -> str:
    # The source tree goes on sys.path through a .pth file: edits show at once.
    return _write_wheel(wheel_directory, [(f"_{PACKAGE}_editable.pth", (str(ROOT) + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None) -> str:
    project = _project()
    base = f"{project['name']}-{project['version']}"
    files = [(rel, (ROOT / rel).read_bytes()) for rel in SDIST_FILES] + _package_files()
    files.append(("PKG-INFO", _metadata(project).encode()))
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as sdist:
        for rel, data in files:
            entry = tarfile.TarInfo(f"{base}/{rel}")
            entry.size, entry.mode = len(data), 0o644
            sdist.addfile(entry, io.BytesIO(data))
    return name
