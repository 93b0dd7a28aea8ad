"""Helper for the examples: use a running broker, or start a private one.

With ``--broker ENDPOINT`` the examples use that broker and its workers.
Without it they start ``troupe broker`` and ``troupe-examples-worker
--processes N`` from ``$TROUPE_BIN_DIR`` (default ``<repo>/build/bin``) on an
ipc:// endpoint in a temp dir, and stop both (by pid) when done.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Iterator

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "clients" / "python"))  # run from a checkout without installing

import troupe  # noqa: E402

BIN_DIR = pathlib.Path(os.environ.get("TROUPE_BIN_DIR") or REPO / "build" / "bin")


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--broker", help="use this running broker instead of starting one")
    parser.add_argument("--processes", type=int, default=3, help="C++ worker processes to start (default 3)")
    return parser.parse_args()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # graceful: workers destroy their instances
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def pool(endpoint: str | None, processes: int) -> Iterator[str]:
    """Yield a broker endpoint whose workers host the C++ example actors."""
    if endpoint:
        yield endpoint
        return
    tmp = tempfile.mkdtemp(prefix="troupe-ex-")
    endpoint = f"ipc://{tmp}/broker.sock"
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen([str(BIN_DIR / "troupe"), "broker", "--listen", endpoint],
                                      stdout=subprocess.DEVNULL))
        procs.append(subprocess.Popen([str(BIN_DIR / "troupe-examples-worker"), "--broker", endpoint,
                                       "--processes", str(processes)]))
        with troupe.Client(endpoint, timeout=0.5, grace=0.2) as client:
            deadline = time.monotonic() + 15
            while True:  # bounded wait until every worker process has registered
                with contextlib.suppress(troupe.TroupeError):
                    if len([w for w in client.workers() if "squares" in w["actors"]]) >= processes:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("workers did not register within 15 s")
                time.sleep(0.1)
        yield endpoint
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
