"""The multiprocessing.Pool case done right: 8 inputs on the `squares` actor.

A pool of 3 C++ worker processes serves them. Nothing is pickled: only the
actor's name, the method's name and the numbers travel. Each worker process
builds its own `squares` instance lazily on its first message, so at most 3
instances are ever built, however many inputs there are.

    /usr/bin/python3 examples/python/squares_pool.py            # starts its own pool
    /usr/bin/python3 examples/python/squares_pool.py --broker tcp://127.0.0.1:5555
"""

from __future__ import annotations

from _pool import parse_args, pool, troupe


def main() -> None:
    opts = parse_args(__doc__.splitlines()[0])
    with pool(opts.broker, opts.processes) as endpoint, troupe.Client(endpoint, timeout=10) as client:
        inputs = list(range(8))
        results = client.map("squares", "square", inputs, window=8)  # order kept
        print(f"square{tuple(inputs)} = {results}")
        workers = [w for w in client.workers() if "squares" in w["actors"]]
        print(f"{len(workers)} worker process(es) host squares, so at most {len(workers)} "
              f"squares instance(s) were built: pids {sorted(w['pid'] for w in workers)}")


if __name__ == "__main__":
    main()
