"""Shared fixtures: paths, process management, brokers and workers.

Every process a test starts is registered with a finalizer that stops it by
pid (SIGTERM, bounded wait, then SIGKILL of its own process group), so a
failing test never leaves processes behind. Every wait is bounded.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Iterator

import pytest

HERE = pathlib.Path(__file__).resolve().parent
PKG_ROOT = HERE.parent
REPO = PKG_ROOT.parent.parent
VECTORS = REPO / "tests" / "vectors"
EXAMPLES = REPO / "examples" / "python"
sys.path.insert(0, str(PKG_ROOT))  # test the working tree without installing

import troupe  # noqa: E402

# The suite with CURVE on (TROUPE_TEST_CURVE=1, docs/security.md): keys made
# with pyzmq's zmq.auth, so troupe is shown to read what pyzmq writes, for the
# broker and for one peer key in every role directory. Every client and worker
# the tests start finds its keys in the environment; the broker fixture gives
# the broker its own.
CURVE_DIR: pathlib.Path | None = None
if os.environ.get("TROUPE_TEST_CURVE") == "1":
    import atexit

    import zmq.auth

    CURVE_DIR = pathlib.Path(tempfile.mkdtemp(prefix="trp-curve-"))
    atexit.register(shutil.rmtree, CURVE_DIR, True)
    zmq.auth.create_certificates(CURVE_DIR, "broker")
    zmq.auth.create_certificates(CURVE_DIR, "peer")
    for role in ["workers", "clients", "admins"]:
        (CURVE_DIR / role).mkdir()
        shutil.copy(CURVE_DIR / "peer.key", CURVE_DIR / role / "peer.key")
    os.environ["TROUPE_CURVE_SECRET"] = str(CURVE_DIR / "peer.key_secret")
    os.environ["TROUPE_BROKER_KEY"] = str(CURVE_DIR / "broker.key")


def curve_broker_flags() -> list[str]:
    """The broker's CURVE flags in a CURVE run of the suite, else none."""
    if CURVE_DIR is None:
        return []
    return ["--curve-secret", str(CURVE_DIR / "broker.key_secret"), "--workers-keys", str(CURVE_DIR / "workers"),
            "--clients-keys", str(CURVE_DIR / "clients"), "--admins-keys", str(CURVE_DIR / "admins")]

BIN_DIR = pathlib.Path(os.environ.get("TROUPE_BIN_DIR") or REPO / "build" / "bin")
TROUPE = BIN_DIR / "troupe"
EXAMPLES_WORKER = BIN_DIR / "troupe-examples-worker"
EXAMPLES_CLIENT = BIN_DIR / "troupe-examples-client"


def child_env() -> dict[str, str]:
    """Environment for spawned Python processes: this package importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PKG_ROOT), str(HERE), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("TROUPE_BROKER", None)
    return env


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    """Poll ``predicate`` until it returns a truthy value, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # e.g. DeadlineExceeded while a broker starts
            last_exc = exc
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last error: {last_exc!r})")


class Proc:
    """A spawned process with its output captured to files."""

    def __init__(self, argv: list[str], workdir: pathlib.Path, label: str, env: dict[str, str] | None) -> None:
        self.argv = argv
        self.stdout_path = workdir / f"{label}.out"
        self.stderr_path = workdir / f"{label}.err"
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        # Own session: the finalizer can kill anything this process forked
        # (e.g. a worker pool) through its process group, and only that.
        self.popen = subprocess.Popen(argv, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                      env=env, start_new_session=True)
        self.pid = self.popen.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.argv[0]} (pid {self.pid}) did not exit within {timeout} s")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, wait bounded, then SIGKILL the process and its group."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)  # stragglers it forked; pgid == our child's pid
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)
        self._out.close()
        self._err.close()

    def describe(self) -> str:
        return f"$ {' '.join(self.argv)}\n--- stdout\n{self.stdout()}\n--- stderr\n{self.stderr()}"


@pytest.fixture
def workdir() -> Iterator[pathlib.Path]:
    """A short temp dir (ipc:// paths must stay under ~100 bytes)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="trp-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def spawn(workdir: pathlib.Path, request: pytest.FixtureRequest) -> Callable[..., Proc]:
    """``spawn(argv, label=..., env=...)`` starts a process stopped at teardown."""
    procs: list[Proc] = []

    def start(argv: list[str], label: str | None = None, env: dict[str, str] | None = None) -> Proc:
        proc = Proc([str(a) for a in argv], workdir, label or f"proc{len(procs)}", env if env is not None else child_env())
        procs.append(proc)
        return proc

    def cleanup() -> None:
        for proc in reversed(procs):
            proc.stop()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            for proc in procs:
                print(proc.describe())

    request.addfinalizer(cleanup)
    return start


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def endpoint(workdir: pathlib.Path) -> str:
    return f"ipc://{workdir}/broker.sock"


def python_worker_argv(endpoint: str, *modules: str, credits: int = 4, name: str | None = None,
                       extra: list[str] | None = None) -> list[str]:
    argv = ["/usr/bin/python3", "-m", "troupe.worker", *modules, "--broker", endpoint,
            "--credits", str(credits)]
    if name:
        argv += ["--name", name]
    return argv + (extra or [])


needs_cpp = pytest.mark.skipif(
    not (TROUPE.is_file() and EXAMPLES_WORKER.is_file()),
    reason=f"C++ binaries not built: need {TROUPE} and {EXAMPLES_WORKER} (set TROUPE_BIN_DIR or build first)")


@pytest.fixture
def broker(spawn: Callable[..., Proc], endpoint: str) -> Callable[..., Proc]:
    """``broker(*flags)`` starts the real C++ broker on ``endpoint`` and
    waits (bounded) until it answers ``$broker.ping``."""

    def start(*flags: str) -> Proc:
        proc = spawn([TROUPE, "broker", "--listen", endpoint, *curve_broker_flags(), *flags], label="broker")
        with troupe.Client(endpoint, timeout=0.5, grace=0.2) as c:
            wait_until(lambda: proc.alive() and c.ping() == "pong", 10, "broker to answer ping")
        return proc

    return start


def wait_for_workers(endpoint: str, actor: str, count: int, timeout: float = 10.0) -> list[dict]:
    """Wait until at least ``count`` ready workers host ``actor``; returns them."""
    with troupe.Client(endpoint, timeout=1.0, grace=0.5) as c:
        def hosting() -> list[dict]:
            ws = [w for w in c.workers() if actor in w.get("actors", []) and w.get("state", "ready") == "ready"]
            return ws if len(ws) >= count else []
        return wait_until(hosting, timeout, f"{count} worker(s) hosting {actor!r}")  # type: ignore[return-value]


def ask_in_thread(endpoint: str, *call: Any, timeout: float = 10.0) -> tuple[threading.Thread, dict[str, Any]]:
    """An ask in a thread; the dict gets 'value' or 'error', and 'at' (when it ended)."""
    out: dict[str, Any] = {}

    def run() -> None:
        with troupe.Client(endpoint, timeout=timeout) as c:
            try:
                out["value"] = c.ask(*call)
            except troupe.TroupeError as exc:
                out["error"] = exc
            out["at"] = time.monotonic()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out
