"""bench/run.py section `curve` (issue 10): what CURVE costs.

B1 (window 1, latency) and B2 (window 1000, throughput) for four systems in
the same run, alternating round by round: the floor and troupe, each
plaintext and with CURVE, over tcp loopback. With CURVE every process holds
keys made by `troupe keygen`: troupe's broker authenticates every peer
through its ZAP handler (one key per role directory); the floor's forwarder
is a CURVE server without ZAP (bench_common.hpp, curve_server_from_env), so
the floor pays the encryption and nothing else. Then
troupe-bench-curve-frames measures ZeroMQ alone: the CPU of a round trip of
1, 3 and 4 frames of the same bytes, plaintext and CURVE, which says what
one frame costs to encrypt and decrypt.

Prints tables and targets (B2 with CURVE >= 0.5 x B2 plaintext); never asserts.
"""
import os
import re
import subprocess
from contextlib import contextmanager


def z85_keys(path):
    """(public, secret) Z85 strings of a certificate file (secret None if absent)."""
    text = open(path).read()
    pub = re.search(r'public-key\s*=\s*"([^"]{40})"', text)
    sec = re.search(r'secret-key\s*=\s*"([^"]{40})"', text)
    return pub.group(1), (sec.group(1) if sec else None)


@contextmanager
def environment(values):
    """Sets os.environ entries for processes started inside the block."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Keys:
    """A broker key, a worker key and a client key, and the role directories."""

    def __init__(self, run, tmp):
        self.dir = os.path.join(tmp, "curve-keys")
        for name in ["broker", "worker", "client"]:
            subprocess.run([os.path.join(run.BIN, "troupe"), "keygen", "--out", self.dir, name], check=True,
                           capture_output=True)
        for role, name in [("workers", "worker"), ("clients", "client")]:
            os.makedirs(os.path.join(tmp, "curve-" + role), exist_ok=True)
            with open(os.path.join(self.dir, name + ".key")) as src, \
                    open(os.path.join(tmp, "curve-" + role, name + ".key"), "w") as dst:
                dst.write(src.read())
        self.tmp = tmp
        self.broker_public, self.broker_secret = z85_keys(self.file("broker", True))
        self.client_public, self.client_secret = z85_keys(self.file("client", True))

    def file(self, name, secret=False):
        return os.path.join(self.dir, name + (".key_secret" if secret else ".key"))

    def broker_args(self):
        return ["--curve-secret", self.file("broker", True), "--workers-keys", os.path.join(self.tmp, "curve-workers"),
                "--clients-keys", os.path.join(self.tmp, "curve-clients")]

    def worker_args(self):
        return ["--curve-secret", self.file("worker", True), "--broker-key", self.file("broker")]

    def floor_server_env(self):
        return {"BENCH_CURVE_SERVER_SECRET": self.broker_secret}

    def client_env(self):
        # The raw load generator (bench_common.hpp) and troupe's own programs
        # (troupe call, used to wait for the worker) both find their keys here.
        return {"BENCH_CURVE_SERVER_KEY": self.broker_public, "BENCH_CURVE_PUBLIC": self.client_public,
                "BENCH_CURVE_SECRET": self.client_secret, "TROUPE_CURVE_SECRET": self.file("client", True),
                "TROUPE_BROKER_KEY": self.file("broker")}


def start(run, keys, kind, curve, tmp):
    tag = "curve-%s-%s" % (kind, "curve" if curve else "plain")
    if not curve:
        return run.System(kind, "tcp", tmp, tag=tag, pin=True)
    env = dict(keys.client_env())
    if kind == "floor":
        env.update(keys.floor_server_env())  # the forwarder reads only the server's
        with environment(env):
            return run.System(kind, "tcp", tmp, tag=tag, pin=True)
    with environment(env):
        return run.System(kind, "tcp", tmp, tag=tag, pin=True, broker_args=keys.broker_args(),
                          worker_args=keys.worker_args())


def frames_table(run, a, results):
    exe = os.path.join(run.BIN, "troupe-bench-curve-frames")
    if not os.path.exists(exe):
        print("\n(troupe-bench-curve-frames not built: no per-frame table)")
        return
    n = 20000 if a.quick else 200000
    out = {}
    for rnd in range(a.rounds):
        for frames in [1, 3, 4]:
            for curve in [False, True]:
                r = subprocess.run([exe, "--frames", str(frames), "--bytes", "30", "--messages", str(n)] +
                                   (["--curve"] if curve else []), capture_output=True, text=True, timeout=300)
                try:
                    out.setdefault((frames, curve), []).append(run.json.loads(r.stdout))
                except ValueError:
                    print("  curve-frames %d %s: FAILED %s" % (frames, curve, (r.stdout + r.stderr)[-200:]))
    results["curve"]["frames"] = {"%d-%s" % k: v for k, v in out.items()}
    rows = []
    for frames in [1, 3, 4]:
        plain = run.med(run.values(out.get((frames, False), []), "cpu_us_per_msg"))
        enc = run.med(run.values(out.get((frames, True), []), "cpu_us_per_msg"))
        tp_plain = run.med(run.values(out.get((frames, False), []), "msgs_per_s"))
        tp_enc = run.med(run.values(out.get((frames, True), []), "msgs_per_s"))
        # One round trip: each frame is encrypted and decrypted once each way.
        rows.append([frames, run.fmt(tp_plain), run.fmt(tp_enc), run.fmt(plain), run.fmt(enc),
                     run.fmt(enc - plain), run.fmt((enc - plain) / (2 * frames))])
    run.table("ZeroMQ alone: a round trip of N frames (30 bytes in all) over tcp, plaintext and CURVE "
              "(%d rounds, median)" % a.rounds,
              ["frames", "msgs/s plain", "msgs/s CURVE", "CPU µs/msg plain", "CPU µs/msg CURVE",
               "CURVE extra µs/msg", "extra µs per frame sent (encrypt + decrypt)"], rows)


def section(run, a, tmp, results):
    out = results.setdefault("curve", {})
    keys = Keys(run, tmp)
    names = [("floor", False), ("floor", True), ("troupe", False), ("troupe", True)]
    label = {n: "%s %s" % (n[0], "CURVE" if n[1] else "plain") for n in names}
    systems = {}
    runs = {n: {"b1": [], "b2": []} for n in names}
    try:
        for n in names:
            systems[n] = start(run, keys, n[0], n[1], tmp)
        for rnd in range(a.rounds):
            for n in names:
                sy = systems[n]
                with environment(keys.client_env() if n[1] else {}):
                    b1 = run.client(sy.endpoint, a.b1_requests, 1, warmup=1000, cpus=sy.client_cpus)
                    b2 = run.measure(sy, a.b2_requests, 1000)
                runs[n]["b1"].append(b1)
                runs[n]["b2"].append(b2)
                print(run.round_line("%s round %d: B1 p50 %s µs; B2" % (
                    label[n], rnd + 1, run.fmt(b1.get("p50_us", float("nan")))), b2), flush=True)
    finally:
        for sy in systems.values():
            sy.stop()
    out["runs"] = {label[n]: r for n, r in runs.items()}
    rows = []
    for metric, b, key in [("B1 p50 (µs)", "b1", "p50_us"), ("B1 p99 (µs)", "b1", "p99_us"),
                           ("B2 throughput (req/s)", "b2", "throughput"), ("B2 p50 (µs)", "b2", "p50_us"),
                           ("B2 broker CPU µs/request", "b2", "broker_cpu_us"),
                           ("B2 worker CPU µs/request", "b2", "worker_cpu_us")]:
        row = [metric]
        for n in names:
            row.append(run.fmt(run.med(run.values(runs[n][b], key))))
        for kind in ["floor", "troupe"]:
            row.append(run.ratio(run.values(runs[(kind, True)][b], key), run.values(runs[(kind, False)][b], key)))
        rows.append(row)
    run.table("CURVE against plaintext, tcp (%d rounds alternating, median; the same keys and machine)" % a.rounds,
              ["metric"] + [label[n] for n in names] + ["floor CURVE/plain", "troupe CURVE/plain"], rows)
    b2_troupe = run.paired(runs[("troupe", True)]["b2"], runs[("troupe", False)]["b2"])
    b2_floor = run.paired(runs[("floor", True)]["b2"], runs[("floor", False)]["b2"])
    b2_vs_floor = run.paired(runs[("troupe", True)]["b2"], runs[("floor", True)]["b2"])
    print("per-round B2 ratios: troupe CURVE/plain %s; floor CURVE/plain %s; troupe CURVE / floor CURVE %s" % (
        " ".join(run.fmt(x) for x in b2_troupe), " ".join(run.fmt(x) for x in b2_floor),
        " ".join(run.fmt(x) for x in b2_vs_floor)))
    if b2_troupe:
        run.target("B2 troupe CURVE / troupe plaintext, tcp (median of per-round ratios)", run.med(b2_troupe), 0.5,
                   True)
    frames_table(run, a, results)
