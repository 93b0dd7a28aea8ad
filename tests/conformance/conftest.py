"""The conformance suite shares the Python suite's process handling
(clients/python/tests/conftest.py: spawn by pid, bounded waits, cleanup),
loaded here under its own name so the two conftest modules do not clash."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

_PATH = pathlib.Path(__file__).resolve().parents[2] / "clients" / "python" / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("troupe_test_support", _PATH)
assert _spec is not None and _spec.loader is not None
support = importlib.util.module_from_spec(_spec)
sys.modules["troupe_test_support"] = support
_spec.loader.exec_module(support)

# The fixtures and the report hook, registered for this directory too.
workdir = support.workdir
spawn = support.spawn
endpoint = support.endpoint
pytest_runtest_makereport = support.pytest_runtest_makereport
